"""DICOM browser plugin for Label Map Segmentation Storage (DICOM SEG LABELMAP, 66.7).

Hidden scripted module: at module discovery it stores :class:`DICOMLabelMapSegPluginClass`
in ``slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]``; the DICOM module creates an
instance of every registered class (Slicer Modules/Scripted/DICOMLib/DICOMUtils.py
``getLoadablesFromFileLists``).

Thin glue: which files to claim, with what confidence and name, is decided by
``AdaptiveBrushDicomLib.slicer.bridge``; decoding is ``AdaptiveBrushDicomLib.dicom.seg.read``;
export goes through ``AdaptiveBrushDicom.AdaptiveBrushDicomLogic``.

Coordinates: arrays are (k, j, i); the core works in LPS, Slicer nodes in RAS (the bridge
converts IJKToRAS <-> Grid).
"""

import logging
import os

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin


def _bridge():
    from AdaptiveBrushDicomLib.slicer import bridge as slicer_bridge

    return slicer_bridge


class DICOMLabelMapSegPluginClass(DICOMPlugin):
    """Loads LABELMAP SEG (and BINARY SEG when no dcmqi plugin is available) through the
    AdaptiveBrushDicom core, and exports segmentations as LABELMAP SEG."""

    def __init__(self):
        super().__init__()
        self.loadType = "DICOM SEG (LABELMAP)"
        # every tag queried through slicer.dicomDatabase.fileValue, so that the DICOM module
        # pre-caches them (DICOM.py adds plugin.tags.values() to tagsToPrecache)
        self.tags.update(_bridge().DICOM_TAGS)

    # ------------------------------------------------------------------ import
    def _headerForFile(self, path):
        bridge = _bridge()
        db = slicer.dicomDatabase
        values = {key: db.fileValue(path, tag) for key, tag in self.tags.items() if key in bridge.DICOM_TAGS}
        return bridge.SeriesHeader.from_values(values)

    def _otherSegPluginEnabled(self):
        bridge = _bridge()
        registered = list(getattr(slicer.modules, "dicomPlugins", {}).keys())
        try:
            from DICOMLib import DICOMUtils

            enabled = DICOMUtils.getDefaultPluginClassNames()
            disabled = [k for k in registered if k not in enabled]
        except Exception:  # settings unavailable (e.g. no application)
            disabled = []
        return bridge.other_seg_plugin_enabled(registered, disabled)

    def examineForImport(self, fileLists):
        """One loadable per claimed SEG file. Overridden entirely (the base class of Slicer
        <= 5.10 has no ``examineFiles``); results are cached per file list."""
        bridge = _bridge()
        otherPlugin = self._otherSegPluginEnabled()
        loadables = []
        for files in fileLists:
            cached = self.getCachedLoadables(files)
            if cached is not None:
                loadables += cached
                continue
            found = []
            for path in files:
                # one cached lookup per file; only SEG files get the full header
                if slicer.dicomDatabase.fileValue(path, self.tags["sopClassUID"]) not in bridge.SEG_SOP_CLASS_UIDS:
                    continue
                decision = bridge.decide_import(self._headerForFile(path), other_seg_plugin=otherPlugin)
                if not decision.claim:
                    continue
                loadable = DICOMLoadable()
                loadable.files = [path]
                loadable.name = decision.name
                loadable.tooltip = decision.tooltip
                loadable.warning = decision.warning
                loadable.selected = True
                loadable.confidence = decision.confidence
                loadable.uid = slicer.dicomDatabase.fileValue(path, self.tags["instanceUID"])
                try:
                    refs = bridge.read_seg_references(path)
                except Exception as exc:  # unreadable header: still offer it, load() reports
                    logging.warning(f"DICOMLabelMapSegPlugin: cannot read references of {path}: {exc}")
                    refs = None
                if refs is not None:
                    loadable.referencedSeriesUID = refs.series_instance_uid
                    loadable.referencedInstanceUIDs = list(refs.instance_uids)
                    if refs.series_instance_uid and not refs.instance_uids:
                        # file lists no instances: take them from the database
                        loadable.referencedInstanceUIDs = list(
                            slicer.dicomDatabase.instancesForSeries(refs.series_instance_uid))
                found.append(loadable)
            self.cacheLoadables(files, found)
            loadables += found
        return loadables

    def examine(self, fileLists):
        # DICOMUtils calls examine() when examineForImport() returned []: nothing more to find
        return []

    def _referencedVolumeNode(self, referencedSeriesUID):
        """Loaded volume of the referenced series: SH item whose "DICOM" UID is that series."""
        if not referencedSeriesUID:
            return None
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        itemID = shn.GetItemByUID(slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName(), referencedSeriesUID)
        if not itemID:
            return None
        node = shn.GetItemDataNode(itemID)
        if node is not None and node.IsA("vtkMRMLScalarVolumeNode"):
            return node
        return None

    def _referenceSeries(self, referencedSeriesUID):
        """Core ReferenceSeries from the database files of the referenced series, or None."""
        if not referencedSeriesUID:
            return None
        files = [f for f in slicer.dicomDatabase.filesForSeries(referencedSeriesUID) if f and os.path.isfile(f)]
        if not files:
            return None
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

        try:
            return ReferenceSeries.from_files(files)
        except Exception as exc:
            logging.warning(f"DICOMLabelMapSegPlugin: referenced series {referencedSeriesUID} not usable: {exc}")
            return None

    def load(self, loadable):
        """Decode the SEG with the core and create a segmentation node. Returns the node."""
        import AdaptiveBrushDicom

        if not AdaptiveBrushDicom.ensureDependencies(["load"]):
            return False
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

        bridge = _bridge()
        path = loadable.files[0]
        referencedSeriesUID = getattr(loadable, "referencedSeriesUID", None)
        reference = self._referenceSeries(referencedSeriesUID)
        try:
            decoded = read_seg(path, reference=reference)
        except Exception as exc:
            if reference is None:
                raise
            logging.warning(f"DICOMLabelMapSegPlugin: decoding against the referenced series failed ({exc}); "
                            "decoding with the SEG's own geometry")
            decoded = read_seg(path)
        for note in decoded.notes:
            logging.info(f"DICOMLabelMapSegPlugin: {os.path.basename(path)}: {note}")

        volumeNode = self._referencedVolumeNode(referencedSeriesUID or decoded.referenced_series_uid)
        logic = AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
        segNode = logic.labelMapToSegmentationNode(decoded.labelmap, loadable.name, referenceVolumeNode=volumeNode)
        segNode.SetAttribute(bridge.ATTR_INSTANCE_UIDS, decoded.sop_instance_uid)
        self.addSeriesInSubjectHierarchy(loadable, segNode)
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
        if volume is None or not volume.GetAttribute(_bridge().ATTR_INSTANCE_UIDS):
            return []
        exportable = slicer.qSlicerDICOMExportable()
        exportable.name = self.loadType
        exportable.tooltip = "DICOM SEG, Label Map Segmentation Storage (Supplement 243), lossless"
        exportable.subjectHierarchyItemID = subjectHierarchyItemID
        exportable.pluginClass = self.__module__  # == registration key "DICOMLabelMapSegPlugin"
        exportable.confidence = 0.9  # below Slicer's own SEG exporter (1.0): users pick us explicitly
        exportable.setTag("Modality", "SEG")
        exportable.setTag("SeriesDescription", node.GetName())
        exportable.setTag("SeriesNumber", "300")
        exportable.setTag("ContentCreatorName", "")
        return [exportable]

    def export(self, exportables):
        """Write one LABELMAP SEG per exportable into ``exportable.directory`` and add it to the
        DICOM database. Returns "" or an error message (shown by the export dialog)."""
        import AdaptiveBrushDicom
        from AdaptiveBrushDicomLib.errors import UserError

        if not AdaptiveBrushDicom.ensureDependencies(["export"]):
            return "Python packages needed for DICOM SEG export were not installed."
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
                    seriesDescription=exportable.tag("SeriesDescription") or segNode.GetName(),
                    seriesNumber=number,
                    outputDirectory=exportable.directory,
                    contentCreatorName=exportable.tag("ContentCreatorName") or None,
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
