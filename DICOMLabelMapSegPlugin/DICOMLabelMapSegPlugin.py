"""DICOM browser plugin for Label Map Segmentation Storage (DICOM SEG LABELMAP, 66.7).

Hidden scripted module: at module discovery it stores :class:`DICOMLabelMapSegPluginClass`
in ``slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]``; the DICOM module creates an
instance of every registered class (Slicer Modules/Scripted/DICOMLib/DICOMUtils.py
``getLoadablesFromFileLists``) -- outside any try/except, so the constructor does nothing
that can fail: the core package is imported on first use, and a failing import only
disables this plugin (examine offers nothing, load/export report the reason).

Thin glue: which files to claim, names and IDs are decided by
``AdaptiveBrushDicomLib.slicer`` (``plugin_rules``, ``naming``, ``bridge``); decoding is
``AdaptiveBrushDicomLib.dicom.seg.read``; export goes through
``AdaptiveBrushDicom.AdaptiveBrushDicomLogic``.

Coordinates: arrays are (k, j, i); the core works in LPS, Slicer nodes in RAS (the bridge
converts IJKToRAS <-> Grid).
"""

import logging
import os

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin

#: Tags queried through slicer.dicomDatabase.fileValue (DICOM.py pre-caches plugin.tags);
#: the same as AdaptiveBrushDicomLib.slicer.plugin_rules.DICOM_TAGS (a test checks), kept
#: here so that constructing the plugin imports nothing.
TAGS = {
    "sopClassUID": "0008,0016", "instanceUID": "0008,0018", "modality": "0008,0060",
    "seriesDescription": "0008,103E", "seriesInstanceUID": "0020,000E", "seriesNumber": "0020,0011",
    "studyInstanceUID": "0020,000D", "frameOfReferenceUID": "0020,0052", "patientID": "0010,0020",
    "segmentationType": "0062,0001",
}
SEG_MODALITY = "SEG"


def _core():
    """The core modules the plugin uses (imported on first use)."""
    from AdaptiveBrushDicomLib.slicer import bridge, naming, plugin_rules

    return bridge, naming, plugin_rules


class DICOMLabelMapSegPluginClass(DICOMPlugin):
    """Loads LABELMAP SEG (and BINARY SEG when no dcmqi plugin is available) through the
    AdaptiveBrushDicom core, and exports segmentations as LABELMAP SEG.

    Attributes set by callers (AdaptiveBrushDicomLogic.loadSegSeries):
    ``onlyPlugin`` -- this batch runs with no other SEG plugin, so BINARY SEG is claimed too.
    After ``load`` fails, ``loadable.loadError`` holds the one-line reason.
    """

    def __init__(self):
        super().__init__()
        self.loadType = "DICOM SEG (LABELMAP)"
        self.tags.update(TAGS)
        self.onlyPlugin = False
        self._referenceCache = {}  # referenced series UID -> ReferenceSeries (one batch)

    # ------------------------------------------------------------------ import
    def _otherSegPluginEnabled(self):
        _, _, rules = _core()
        if self.onlyPlugin:
            return False
        registered = list(getattr(slicer.modules, "dicomPlugins", {}).keys())
        try:
            from DICOMLib import DICOMUtils

            enabled = DICOMUtils.getDefaultPluginClassNames()
        except Exception:  # settings unavailable (e.g. no application)
            enabled = registered
        return rules.other_seg_plugin_enabled(registered, [k for k in registered if k not in enabled])

    def examineForImport(self, fileLists):
        """One loadable per claimed SEG file, cached per file list. Overridden entirely
        (the base class of Slicer <= 5.10 has no ``examineFiles``)."""
        try:
            _core()
        except Exception as exc:  # broken installation: this plugin offers nothing, others work
            logging.error(f"DICOMLabelMapSegPlugin disabled: cannot import AdaptiveBrushDicomLib ({exc})")
            return []
        otherPlugin = self._otherSegPluginEnabled()
        loadables = []
        for files in fileLists:
            cached = self.getCachedLoadables(files)
            if cached is None:
                cached = [l for l in (self._examineFile(path, otherPlugin) for path in files) if l is not None]
                self.cacheLoadables(files, cached)
            loadables += cached
        return loadables

    def _examineFile(self, path, otherPlugin):
        bridge, _, rules = _core()
        db = slicer.dicomDatabase
        # cheap pre-check on the cached modality, then the SOP class decides
        if db.fileValue(path, TAGS["modality"]) != SEG_MODALITY:
            return None
        header = rules.SeriesHeader.from_values({key: db.fileValue(path, tag) for key, tag in TAGS.items()})
        decision = rules.decide_import(header, other_seg_plugin=otherPlugin)
        if not decision.claim:
            return None
        loadable = DICOMLoadable()
        loadable.files = [path]
        loadable.name = decision.name
        loadable.tooltip = decision.tooltip
        loadable.warning = decision.warning
        loadable.selected = True
        loadable.confidence = decision.confidence
        loadable.uid = header.sop_instance_uid
        try:
            refs = rules.read_seg_references(path)
        except Exception as exc:  # unreadable header: still offer it, load() reports
            logging.warning(f"DICOMLabelMapSegPlugin: cannot read references of {path}: {exc}")
            return loadable
        loadable.referencedSeriesUID = refs.series_instance_uid
        loadable.referencedInstanceUIDs = list(refs.instance_uids)
        if refs.series_instance_uid and not refs.instance_uids:  # file lists no instances
            loadable.referencedInstanceUIDs = list(db.instancesForSeries(refs.series_instance_uid))
        return loadable

    def examine(self, fileLists):
        # DICOMUtils calls examine() when examineForImport() returned []: nothing more to find
        return []

    @staticmethod
    def _loadedNodeForSeries(seriesUID):
        """Data node of the SH item whose "DICOM" UID is ``seriesUID`` (None if not loaded)."""
        if not seriesUID:
            return None
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        itemID = shn.GetItemByUID(slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName(), seriesUID)
        return shn.GetItemDataNode(itemID) if itemID else None

    def _referenceSeries(self, seriesUID):
        """Core ReferenceSeries of the referenced series' database files (cached for the
        batch), or None when the files are not in the database or not usable."""
        if not seriesUID:
            return None
        if seriesUID not in self._referenceCache:
            from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

            files = [f for f in slicer.dicomDatabase.filesForSeries(seriesUID) if f and os.path.isfile(f)]
            reference = None
            if files:
                try:
                    reference = ReferenceSeries.from_files(files)
                except Exception as exc:
                    logging.warning(f"DICOMLabelMapSegPlugin: referenced series {seriesUID} not usable: {exc}")
            self._referenceCache[seriesUID] = reference
        return self._referenceCache[seriesUID]

    def load(self, loadable):
        """Decode the SEG with the core and create a segmentation node. Returns the node, or
        False with ``loadable.loadError`` set (DICOMUtils only logs exceptions)."""
        try:
            return self._load(loadable)
        except Exception as exc:
            from AdaptiveBrushDicomLib.errors import UserError

            if isinstance(exc, UserError):  # its message names the file it is about, or the SEG
                named = exc.path or loadable.files[0]
                loadable.loadError = f"{os.path.basename(named)}: {exc.message}"
            else:
                loadable.loadError = f"{os.path.basename(loadable.files[0])}: {type(exc).__name__}: {exc}"
            logging.error(f"DICOMLabelMapSegPlugin: could not load {loadable.name!r}: {loadable.loadError}",
                          exc_info=not isinstance(exc, UserError))
            return False

    def _load(self, loadable):
        import AdaptiveBrushDicom

        if not AdaptiveBrushDicom.ensureDependencies(["load"]):
            raise RuntimeError("the Python packages needed to decode DICOM SEG are not available")
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

        bridge, naming, _ = _core()
        path = loadable.files[0]
        seriesUID = getattr(loadable, "referencedSeriesUID", None)
        reference = self._referenceSeries(seriesUID)
        volumeNode = self._loadedNodeForSeries(seriesUID)
        if volumeNode is not None and not volumeNode.IsA("vtkMRMLScalarVolumeNode"):
            volumeNode = None
        logic = AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
        # an irregularly spaced series: Slicer's volume is a slice stack (one slice per image,
        # true positions through its acquisition transform); decode onto the series' own slices
        # and put them into that stack, under the same transform
        stack = reference is not None and not reference.grid.is_regular and volumeNode is not None
        try:
            decoded = read_seg(path, reference=reference, keep_irregular=stack)
        except Exception as exc:
            from AdaptiveBrushDicomLib.errors import IncompleteFileError

            if reference is None or isinstance(exc, IncompleteFileError):  # a file cut short: no retry helps
                raise
            logging.warning(f"DICOMLabelMapSegPlugin: decoding against the referenced series failed ({exc}); "
                            "decoding with the SEG's own geometry")
            decoded, stack = read_seg(path), False
        for note in decoded.notes:
            logging.info(f"DICOMLabelMapSegPlugin: {os.path.basename(path)}: {note}")
        labelmap = decoded.labelmap
        if stack:
            labelmap = bridge.from_series_slices(labelmap, logic.volumeGrid(volumeNode))
        if volumeNode is None:
            volumeNode = self._loadedNodeForSeries(decoded.referenced_series_uid)
            volumeNode = volumeNode if volumeNode is not None and volumeNode.IsA("vtkMRMLScalarVolumeNode") else None
        existing = [n.GetName() for n in slicer.util.getNodesByClass("vtkMRMLSegmentationNode")]
        segNode = logic.labelMapToSegmentationNode(
            labelmap, naming.unique_name(loadable.name, existing), referenceVolumeNode=volumeNode,
            segmentIdPrefix=naming.segment_id_prefix(decoded.sop_instance_uid))
        if stack and volumeNode.GetParentTransformNode() is not None:
            segNode.SetAndObserveTransformNodeID(volumeNode.GetParentTransformNode().GetID())
        segNode.SetAttribute(bridge.ATTR_INSTANCE_UIDS, decoded.sop_instance_uid)
        self.addSeriesInSubjectHierarchy(loadable, segNode)
        for warning in logic.structureWarnings(segNode):
            logging.warning(f"DICOMLabelMapSegPlugin: {segNode.GetName()}: {warning}")
        return segNode

    # ------------------------------------------------------------------ export
    def examineForExport(self, subjectHierarchyItemID):
        """Offer LABELMAP SEG export for a segmentation whose reference volume was loaded
        from the DICOM database (needs its ``DICOM.instanceUIDs``)."""
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        node = shn.GetItemDataNode(subjectHierarchyItemID)
        if node is None or not node.IsA("vtkMRMLSegmentationNode"):
            return []
        volume = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        if volume is None or not volume.GetAttribute("DICOM.instanceUIDs"):
            return []
        try:
            import AdaptiveBrushDicom

            description = AdaptiveBrushDicom.AdaptiveBrushDicomLogic.seriesDescriptionForExport(node)
        except Exception as exc:
            logging.error(f"DICOMLabelMapSegPlugin export disabled: {exc}")
            return []
        exportable = slicer.qSlicerDICOMExportable()
        exportable.name = self.loadType
        exportable.tooltip = "DICOM SEG, Label Map Segmentation Storage (Supplement 243), lossless"
        exportable.subjectHierarchyItemID = subjectHierarchyItemID
        exportable.pluginClass = self.__module__  # == registration key "DICOMLabelMapSegPlugin"
        exportable.confidence = 0.9  # below Slicer's own SEG exporter (1.0): users pick us explicitly
        exportable.setTag("Modality", "SEG")
        exportable.setTag("SeriesDescription", description)
        exportable.setTag("SeriesNumber", "300")
        exportable.setTag("ContentCreatorName", "")
        return [exportable]

    def export(self, exportables):
        """Write one LABELMAP SEG per exportable into ``exportable.directory``. Returns "" or
        an error message (shown by the export dialog). Indexing into the database is the
        export dialog's job ("Export to DICOM database" indexes the folder; "Export to
        folder" must leave the database alone), so nothing is imported here."""
        try:
            import AdaptiveBrushDicom
            from AdaptiveBrushDicomLib.errors import UserError
        except Exception as exc:
            return f"DICOM SEG (LABELMAP) export is not available: {exc}"
        logic = AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        for exportable in exportables:
            segNode = shn.GetItemDataNode(exportable.subjectHierarchyItemID)
            try:
                number = int(exportable.tag("SeriesNumber") or 300)
            except ValueError:
                return f"SeriesNumber must be an integer, got {exportable.tag('SeriesNumber')!r}"
            try:
                logic.exportSegmentationToDicomSeg(
                    segNode,
                    seriesDescription=exportable.tag("SeriesDescription") or None,
                    seriesNumber=number,
                    outputDirectory=exportable.directory,
                    contentCreatorName=exportable.tag("ContentCreatorName") or None,
                    importToDatabase=False,
                )
            except UserError as exc:
                return str(exc)
            except Exception as exc:
                logging.exception("DICOMLabelMapSegPlugin export failed")
                return f"DICOM SEG (LABELMAP) export failed: {exc}"
        return ""


class DICOMLabelMapSegPlugin:
    """Hidden module whose only job is to register the plugin class."""

    def __init__(self, parent):
        parent.title = "DICOM LABELMAP Segmentation Plugin"
        parent.categories = ["Developer Tools.DICOM Plugins"]
        parent.contributors = ["AdaptiveBrushDicom contributors"]
        parent.helpText = (
            "Loads DICOM Label Map Segmentation Storage objects (SEG LABELMAP, Supplement 243) "
            "from the DICOM browser and exports segmentations as LABELMAP SEG. "
            "No module panel; see the AdaptiveBrushDicom module."
        )
        parent.acknowledgementText = "Part of the AdaptiveBrushDicom extension."
        parent.dependencies = ["DICOM"]
        parent.hidden = True
        try:
            slicer.modules.dicomPlugins
        except AttributeError:
            slicer.modules.dicomPlugins = {}
        slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"] = DICOMLabelMapSegPluginClass
