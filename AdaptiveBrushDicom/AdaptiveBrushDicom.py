"""AdaptiveBrushDicom: optimization-trial segmentations as DICOM SEG (LABELMAP) in 3D Slicer.

Module, Widget, Logic and Test. Glue only: what is decided rather than translated is in
``AdaptiveBrushDicomLib.slicer`` (``bridge``: node <-> core geometry; ``segment_records``,
``import_plan``, ``labelmap_export``, ``naming``, ``cse``, ``workflow``, ``dependencies``),
tested without Slicer; the MRML side of the node conversions is in
``AdaptiveBrushDicomNodes/segmentations.py``. Slicer world coordinates are RAS, the core's LPS; arrays are
(k, j, i). Python packages are installed on first use after asking
(:func:`ensureDependencies`), never at import. Console use::

    logic = slicer.util.getModuleLogic("AdaptiveBrushDicom")
    result = logic.exportSegmentationToDicomSeg(segNode, volumeNode, seriesDescription="watershed trial 3")
"""

import importlib
import logging
import sys

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic, ScriptedLoadableModuleTest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.slicer import bridge, cse, naming, workflow
from AdaptiveBrushDicomLib.slicer import dependencies as deps
from AdaptiveBrushDicomLib.slicer.plugin_rules import PLUGIN_KEY
from AdaptiveBrushDicomNodes.segmentations import SegmentationNodeConversions


def ensureDependencies(features, requester="AdaptiveBrushDicom"):
    """True when the Python packages for ``features`` (``dependencies.FEATURES``) are usable
    now; installs missing ones after asking (``dependencies.ensure``: Slicer >= 5.12 bundles
    them; on 5.10 an upgrade of the already imported pydicom asks for a restart instead).
    Features found usable are not checked again in this session (``dependencies.session_usable``)."""

    def install(plan):
        try:
            import slicer.packaging as packaging  # Slicer >= 5.12
        except ImportError:
            packaging = None
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            try:
                packaging.pip_ensure(plan.requirements, requester=requester)
            except RuntimeError as exc:  # declined
                logging.info(f"AdaptiveBrushDicom: installation declined ({exc})")
                return False
            return True
        # Slicer 5.10: ask, then slicer.util.pip_install (list form: no shell splitting of ">=")
        if not slicer.util.confirmOkCancelDisplay(plan.message, windowTitle=f"{requester}: install Python packages"):
            return False
        with slicer.util.WaitCursor():
            slicer.util.pip_install(plan.requirements)
        return True

    return deps.ensure(features, install=install, testing=slicer.app.testingEnabled(), usable=deps.session_usable,
                       notify=lambda text: slicer.util.infoDisplay(text, windowTitle=requester))


class AdaptiveBrushDicom(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "AdaptiveBrush DICOM"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["DICOM", "Segmentations"]
        self.parent.contributors = ["AdaptiveBrushDicom contributors"]
        self.parent.helpText = (
            "Store segmentations of optimization trials and gold standards as DICOM SEG with "
            "LABELMAP encoding (Label Map Segmentation Storage, Supplement 243), load them from the "
            "DICOM browser and compare trials with CrossSegmentationExplorer."
        )
        self.parent.acknowledgementText = "Builds on highdicom, pydicom and 3D Slicer's DICOM and Segmentations modules."


class AdaptiveBrushDicomLogic(ScriptedLoadableModuleLogic, SegmentationNodeConversions):
    """The DICOM operations of the module (SEG encoding and decoding, UIDs, migration and the
    index are the core's; the database is ``slicer.dicomDatabase``) and, inherited from
    ``AdaptiveBrushDicomNodes.segmentations``, the node <-> core conversions."""

    def referenceSeriesForVolume(self, volumeNode):
        """Core ``ReferenceSeries`` of a volume loaded from the DICOM database (its
        ``DICOM.instanceUIDs`` attribute lists the SOP Instance UIDs in k order).

        Raises
        ------
        UserError
            The volume was not loaded from the DICOM database, or an instance is missing there.
        """
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

        uids = bridge.split_uids(volumeNode.GetAttribute(bridge.ATTR_INSTANCE_UIDS))
        if not uids:
            raise UserError(
                f"volume {volumeNode.GetName()!r} was not loaded from the DICOM database, so a SEG cannot "
                "reference it; use 'Create synthetic DICOM' first, or load the volume from the DICOM browser")
        files = bridge.order_series_files({uid: slicer.dicomDatabase.fileForInstance(uid) for uid in uids}, uids)
        return ReferenceSeries.from_files(files)

    @staticmethod
    def seriesDescriptionForExport(segmentationNode):
        """SeriesDescription the node was loaded with (SH ``DICOM.SeriesDescription``), else its
        name; sanitized (``naming.export_series_description``)."""
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        item = shn.GetItemByDataNode(segmentationNode)
        loaded = shn.GetItemAttribute(item, naming.SH_SERIES_DESCRIPTION) if item else ""
        return naming.export_series_description({naming.SH_SERIES_DESCRIPTION: loaded}, segmentationNode.GetName())

    @staticmethod
    def _requireDatabase():
        if slicer.dicomDatabase is None or not slicer.dicomDatabase.isOpen:
            raise UserError("the Slicer DICOM database is not open; open the DICOM module once to create it")

    def importFilesToDatabase(self, paths, copy=True):
        """Index files into ``slicer.dicomDatabase`` (copied into the database folder)."""
        import ctk

        self._requireDatabase()
        indexer = ctk.ctkDICOMIndexer()
        indexer.addListOfFiles(slicer.dicomDatabase, [str(p) for p in paths], copy)
        indexer.waitForImportFinished()

    def exportSegmentationToDicomSeg(self, segmentationNode, referenceVolumeNode=None, seriesDescription=None,
                                     seriesNumber=300, compression=None, outputDirectory=None,
                                     contentCreatorName=None, importToDatabase=True, verify=True):
        """Write a LABELMAP DICOM SEG of ``segmentationNode`` referencing the DICOM series of the
        reference volume, verify it by decoding, and (``importToDatabase``) index it.
        Returns the core ``WriteResult``.

        Raises
        ------
        UserError
            Packages missing, overlapping segments, no reference volume, a grid the series
            cannot hold, an existing output (one line, in Slicer terms).
        """
        from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION

        if not ensureDependencies(["export"]):
            raise UserError("highdicom / pydicom >= 3.0.1 are needed for DICOM SEG export and were not installed")
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
        from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

        referenceVolumeNode = self._referenceVolume(segmentationNode, referenceVolumeNode)
        labelmap = self.segmentationToLabelMap(segmentationNode, referenceVolumeNode)
        reference = self.referenceSeriesForVolume(referenceVolumeNode)
        description = naming.sanitize_node_name(seriesDescription) if seriesDescription else \
            self.seriesDescriptionForExport(segmentationNode)
        folder = outputDirectory or workflow.new_output_directory(slicer.app.temporaryPath, "export")
        path = workflow.unused_path(folder, f"SEG_{int(seriesNumber)}_{naming.safe_file_name(description)}")
        try:
            if not reference.grid.is_regular:  # Slicer's slice stack of an irregular series -> its own slices
                labelmap = bridge.to_series_slices(labelmap, reference.grid)
            expected = bridge.conform_array(labelmap.array, labelmap.grid, reference.grid)
        except UserError as exc:
            raise UserError(workflow.slicer_message(exc)) from None
        result = write_seg(labelmap, reference, str(path), compression=compression or DEFAULT_COMPRESSION,
                           series_description=description, series_number=int(seriesNumber),
                           content_creator_name=contentCreatorName, source_name=segmentationNode.GetName())
        for message in list(result.warnings) + self.structureWarnings(segmentationNode):
            logging.warning(f"AdaptiveBrushDicom: {message}")
        if verify:
            decoded = read_seg(result.path, reference=reference, keep_irregular=True).labelmap.array
            workflow.verify_written_seg(result.path, expected, decoded)
        if importToDatabase:
            self.importFilesToDatabase([result.path])
        return result

    def createSyntheticDicom(self, volumeNode, patientId=None, studyDescription="AdaptiveBrushDicom",
                             seriesDescription=None, modality="MR", outputDirectory=None, load=True):
        """Write a volume as a DICOM image series (deterministic UIDs), index it and (by
        default) load it back, so segmentations can reference it. Returns the loaded volume
        node, or the core ``SyntheticSeries`` when ``load`` is False.

        Raises
        ------
        UserError
            pydicom missing, the DICOM database not open, or the volume under a transform.
        """
        if not ensureDependencies(["synthetic"]):
            raise UserError("pydicom >= 3.0.1 is needed to write DICOM and was not installed")
        from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for

        self._requireDatabase()
        array, grid = self.volumeToArrayAndGrid(volumeNode)
        folder = outputDirectory or workflow.new_output_directory(slicer.app.temporaryPath, "synthetic")
        series = create_synthetic_series(
            array, grid, folder, patient_id=patientId or patient_id_for(volumeNode.GetName()), modality=modality,
            study_description=studyDescription, series_description=seriesDescription or volumeNode.GetName())
        self.importFilesToDatabase(series.paths)
        return self.loadVolumeSeries(series.series_instance_uid) if load else series

    def loadVolumeSeries(self, seriesInstanceUID):
        """Load (or find, if already loaded) the volume node of a DICOM series."""
        from DICOMLib import DICOMUtils

        if self.loadedNodeForSeries(seriesInstanceUID) is None:
            DICOMUtils.loadSeriesByUID([seriesInstanceUID])  # returns node IDs (strings)
        return self.loadedNodeForSeries(seriesInstanceUID)

    @staticmethod
    def loadedNodeForSeries(seriesInstanceUID):
        """Data node of the SH item whose "DICOM" UID is the series UID, or None."""
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        item = shn.GetItemByUID(slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName(), seriesInstanceUID)
        return shn.GetItemDataNode(item) if item else None

    def loadSegSeries(self, seriesInstanceUIDs, progressCallback=None, dropEmptySegments=False):
        """Load SEG series with only this extension's plugin, in one batch (one plugin
        instance: the referenced series is read once). Already loaded ones are reused.
        Returns ``(segmentation nodes, problems)``; ``problems`` are one-line messages for
        series that failed (``DICOMUtils`` only logs plugin exceptions) and, with
        ``dropEmptySegments``, for empty segments removed (CrossSegmentationExplorer cannot
        centre on an empty segment)."""
        from DICOMLib import DICOMUtils

        self._requireDatabase()
        problems = []
        missing = [uid for uid in seriesInstanceUIDs if self.loadedNodeForSeries(uid) is None]
        if missing:
            plugin = slicer.modules.dicomPlugins[PLUGIN_KEY]()
            plugin.onlyPlugin = True
            fileLists = [slicer.dicomDatabase.filesForSeries(uid) for uid in missing]
            loadablesByPlugin, _ = DICOMUtils.getLoadablesFromFileLists(
                fileLists, [PLUGIN_KEY], progressCallback=progressCallback, pluginInstances={PLUGIN_KEY: plugin})
            DICOMUtils.selectHighestConfidenceLoadables(loadablesByPlugin)
            DICOMUtils.loadLoadables(loadablesByPlugin, progressCallback=progressCallback)
            loadables = loadablesByPlugin.get(plugin, [])
            problems += [getattr(l, "loadError", f"{l.name}: could not be loaded") for l in loadables if not l.loadSuccess]
            offered = {slicer.dicomDatabase.seriesForFile(l.files[0]) for l in loadables}
            problems += [f"series {uid}: no DICOM SEG this extension can load" for uid in missing if uid not in offered]
        nodes = [n for n in map(self.loadedNodeForSeries, seriesInstanceUIDs) if n is not None and n.IsA("vtkMRMLSegmentationNode")]
        if dropEmptySegments:
            for node in nodes:
                problems += self._removeEmptySegments(node)
        return nodes, problems

    def _removeEmptySegments(self, segmentationNode):
        notes = []
        for sid in self.segmentIds(segmentationNode):
            if not slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, sid).any():
                name = segmentationNode.GetSegmentation().GetSegment(sid).GetName()
                segmentationNode.GetSegmentation().RemoveSegment(sid)
                notes.append(f"{segmentationNode.GetName()}: segment {name!r} is empty and is left out of the comparison")
        return notes

    def manager(self):
        """The core ``DicomManager`` over Slicer's DICOM database (files are indexed by this
        Logic, so the manager's own auto-import is off)."""
        from AdaptiveBrushDicomLib.slicer.ctk_database import SlicerDatabaseAdapter
        from AdaptiveBrushDicomLib.store.manager import DicomManager

        self._requireDatabase()
        if getattr(self, "_managerDatabase", None) is not slicer.dicomDatabase:
            self._manager = DicomManager(SlicerDatabaseAdapter(slicer.dicomDatabase), auto_import=False)
            self._managerDatabase = slicer.dicomDatabase
        return self._manager

    def segmentationsForVolume(self, volumeSeriesUID):
        """SEG series referencing an image series (core ``SegSeriesInfo``), gold standards first."""
        return self.manager().get_segmentations_for_volume(volumeSeriesUID)

    def migrateResultsFolder(self, folder, volume=None, progressCallback=None, importToDatabase=True):
        """Migrate legacy optimization runs / gold standards under ``folder`` to DICOM in place
        (core ``migrate_paths``: originals kept, atomic, resumable, every SEG verified), then
        index the written files by link (the migrated folder is the user's permanent copy).

        Raises
        ------
        UserError
            Packages missing, or what the migration refuses (names the folder and what to do).
        """
        if not ensureDependencies(["migrate"]):
            raise UserError("packages needed for migration (highdicom, SimpleITK, slicerio) were not installed")
        from AdaptiveBrushDicomLib.runs.migrate import migrate_paths

        summary = migrate_paths([folder], volume=volume, progress=progressCallback is not None,
                                stream=workflow.ProgressStream(progressCallback))
        if importToDatabase and not summary.dry_run:
            written = workflow.written_dicom_files(r.folder for r in summary.reports)
            if written:
                self.importFilesToDatabase(written, copy=False)
        return summary

    def compareTrials(self, volumeSeriesUID, segSeriesUIDs, openExplorer=True, groupModels=False):
        """Load the volume and the chosen SEGs, hand them to CrossSegmentationExplorer
        (volume, checked segmentations and, with ``groupModels``, gold-vs-algorithm models
        on its parameter node before its widget exists) and open it when installed.
        Returns ``(volume node, segmentation nodes, problems)``.

        Raises
        ------
        UserError
            The image series does not load from the DICOM database.
        """
        volumeNode = self.loadVolumeSeries(volumeSeriesUID)
        if volumeNode is None:
            raise UserError(f"the image series {volumeSeriesUID} could not be loaded from the DICOM database")
        segNodes, problems = self.loadSegSeries(list(segSeriesUIDs), dropEmptySegments=True)
        mapping = None
        if groupModels:
            infos = {i.series_instance_uid: i for i in self.segmentationsForVolume(volumeSeriesUID)}
            names = {uid: n.GetName() for uid in segSeriesUIDs if (n := self.loadedNodeForSeries(uid)) is not None}
            mapping = cse.keyword_mapping(cse.trials_for(list(segSeriesUIDs), names, infos))
        self.prepareCrossSegmentationExplorer(volumeNode, segNodes, mapping)
        if openExplorer and hasattr(slicer.modules, "crosssegmentationexplorer") and slicer.util.mainWindow():
            slicer.util.selectModule(cse.MODULE_NAME)
        elif openExplorer:
            logging.info("CrossSegmentationExplorer is not installed (Extensions Manager) or there is no main window")
        return volumeNode, segNodes, problems

    def comparisonTable(self, volumeSeriesUID, segSeriesUIDs):
        """Dice/HD95/... of the selected gold standard against each selected trial (core:
        ``slicer.cse.comparison_table``). Returns ``(columns, rows, whyNot)``."""
        infos = {i.series_instance_uid: i for i in self.segmentationsForVolume(volumeSeriesUID)}
        firstFile = lambda uid: (slicer.dicomDatabase.filesForSeries(uid) or [None])[0]  # noqa: E731
        return cse.comparison_table(list(segSeriesUIDs), infos, firstFile)

    @staticmethod
    def prepareCrossSegmentationExplorer(volumeNode, segmentationNodes, keywordMapping=None):
        """Put the hand-off on CSE's parameter node (created through CSE's own logic class,
        which does not create its widget). Returns the node, or None when CSE is absent."""
        try:
            module = sys.modules.get(cse.MODULE_NAME) or importlib.import_module(cse.MODULE_NAME)
        except ImportError:
            return None
        node = module.CrossSegmentationExplorerLogic().getParameterNode()
        node.SetNodeReferenceID(cse.REF_CURRENT_VOLUME, volumeNode.GetID())
        for key, value in cse.parameters([n.GetName() for n in segmentationNodes], keywordMapping).items():
            node.SetParameter(key, value)
        return node


class AdaptiveBrushDicomTest(ScriptedLoadableModuleTest):
    """"Reload and Test": a scene round trip. The full self-test (DICOM database, plugins,
    CrossSegmentationExplorer) is Testing/Slicer/AdaptiveBrushDicomSelfTest.py."""

    def runTest(self):
        slicer.mrmlScene.Clear()
        self.test_segmentation_round_trip_in_scene()

    def test_segmentation_round_trip_in_scene(self):
        """LabelMap -> segmentation node -> LabelMap keeps voxels, labels and empty segments."""
        import numpy as np

        from AdaptiveBrushDicomLib.core.geometry import Grid
        from AdaptiveBrushDicomLib.core.labelmap import LabelMap
        from AdaptiveBrushDicomLib.core.segment import Segment

        grid = Grid((6, 8, 10), (0.8, 0.9, 2.0), (-10.0, 20.0, 5.0), np.diag([1.0, -1.0, -1.0]))
        array = np.zeros(grid.shape_kji, np.int16)
        array[1:3, 2:5, 3:7], array[4, 1:4, 1:4] = 300, 2
        segments = [Segment(2, "two", (10, 200, 30)), Segment(300, "three hundred", (250, 10, 10)), Segment(9, "empty", (1, 2, 3))]
        volume = slicer.util.addVolumeFromArray(np.zeros(grid.shape_kji, np.int16), bridge.ijk_to_ras_from_grid(grid), "ref")
        logic = AdaptiveBrushDicomLogic()
        back = logic.segmentationToLabelMap(
            logic.labelMapToSegmentationNode(LabelMap(array, grid, segments), "seg", referenceVolumeNode=volume), volume)
        self.assertTrue(back.grid == grid and (back.array == array).all())
        self.assertEqual([(s.label, s.name, s.color) for s in back.segments],
                         [(2, "two", (10, 200, 30)), (300, "three hundred", (250, 10, 10)), (9, "empty", (1, 2, 3))])
        self.delayDisplay("Test passed")


# The panel (Qt widgets only) lives in a package next to this file; Slicer finds the class here.
from AdaptiveBrushDicomGUI.widget import AdaptiveBrushDicomWidget  # noqa: E402,F401
