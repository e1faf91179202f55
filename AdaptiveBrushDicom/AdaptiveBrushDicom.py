"""AdaptiveBrushDicom: optimization-trial segmentations as DICOM SEG (LABELMAP) in 3D Slicer.

Module, Widget, Logic and Test of the scripted module. The Logic is usable from the Python
console without the GUI::

    logic = slicer.util.getModuleLogic("AdaptiveBrushDicom")
    result = logic.exportSegmentationToDicomSeg(segNode, volumeNode, seriesDescription="watershed trial 3")

Everything that is decided rather than translated lives in the core package
``AdaptiveBrushDicomLib`` (pure Python, tested without Slicer); this file converts between
MRML nodes and core types:

* volume node  <-> (array (k, j, i), ``Grid`` in LPS)   via ``slicer_bridge.grid_from_ijk_to_ras``
* segmentation <-> ``LabelMap``                          via ``slicer_bridge`` import/export plans

Slicer world coordinates are RAS, the core's are LPS (RAS = diag(-1, -1, 1) LPS).
Python packages (highdicom, pydicom >= 3.0.1, ...) are installed on first use, after asking
(:func:`ensureDependencies`), never at import.
"""

import logging
import os
import time

import qt
import vtk

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from AdaptiveBrushDicomLib.slicer import bridge

#
# Dependencies
#


def ensureDependencies(features, requester="AdaptiveBrushDicom"):
    """Make sure the Python packages for ``features`` (keys of ``slicer_bridge.FEATURES``)
    are installed; ask the user before installing. Returns True when they are available.

    Slicer >= 5.12 bundles pydicom 3.0.2 and highdicom 0.27, so usually nothing happens.
    On 5.10 (pydicom 2.4.4, no highdicom) the user is asked once; pydicom is never allowed
    below 3.0.1 (the plan adds ``pydicom>=3.0.1`` to every install).
    """
    plan = bridge.dependency_plan(bridge.installed_versions(), features)
    if not plan.needed:
        return True
    if slicer.app.testingEnabled():
        # never change the Python environment from a test run
        logging.error("AdaptiveBrushDicom: missing Python packages in testing mode: " + " ".join(plan.requirements))
        return False
    try:
        import slicer.packaging as packaging  # Slicer >= 5.12
    except ImportError:
        packaging = None
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        try:
            packaging.pip_ensure(plan.requirements, requester=requester)
        except RuntimeError as exc:  # user declined
            logging.info(f"AdaptiveBrushDicom: installation declined ({exc})")
            return False
    else:  # Slicer 5.10: ask, then slicer.util.pip_install (list form: no shell splitting of ">=")
        if not slicer.util.confirmOkCancelDisplay(plan.message, windowTitle=f"{requester}: install Python packages"):
            return False
        with slicer.util.WaitCursor():
            slicer.util.pip_install(plan.requirements)
        if plan.restart_recommended:
            slicer.util.infoDisplay("pydicom was upgraded. Restart Slicer before loading or exporting DICOM.")
    import importlib

    importlib.invalidate_caches()
    return not bridge.dependency_plan(bridge.installed_versions(), features).needed


#
# AdaptiveBrushDicom
#


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


#
# AdaptiveBrushDicomLogic
#


class AdaptiveBrushDicomLogic(ScriptedLoadableModuleLogic):
    """Node <-> core conversions and the DICOM operations of the module.

    Thin adapter: SEG encoding/decoding, UIDs, migration and the DICOM index are the core's
    (``AdaptiveBrushDicomLib``); the Slicer DICOM database is ``slicer.dicomDatabase``.
    """

    TEMP_NODE_NAME = "__AdaptiveBrushDicom_temp__"

    # ------------------------------------------------------------ volumes
    @staticmethod
    def ijkToRasArray(volumeNode):
        """IJKToRAS (4x4 numpy) of a volume node."""
        m = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASMatrix(m)
        return slicer.util.arrayFromVTKMatrix(m)

    @staticmethod
    def _refuseTransform(node):
        from AdaptiveBrushDicomLib.errors import UserError

        if node.GetParentTransformNode() is not None:
            raise UserError(
                f"{node.GetName()} is under transform {node.GetParentTransformNode().GetName()}; "
                "harden or remove the transform first (DICOM stores untransformed geometry)"
            )

    def volumeToArrayAndGrid(self, volumeNode):
        """(array (k, j, i) copy, Grid in LPS) of a scalar volume node."""
        self._refuseTransform(volumeNode)
        array = slicer.util.arrayFromVolume(volumeNode).copy()
        return array, bridge.grid_from_ijk_to_ras(self.ijkToRasArray(volumeNode), array.shape)

    def referenceSeriesForVolume(self, volumeNode):
        """Core ``ReferenceSeries`` of a volume loaded from the DICOM database (its
        ``DICOM.instanceUIDs`` attribute lists the SOP Instance UIDs in k order)."""
        from AdaptiveBrushDicomLib.errors import UserError
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

        uids = bridge.split_uids(volumeNode.GetAttribute(bridge.ATTR_INSTANCE_UIDS))
        if not uids:
            raise UserError(
                f"volume {volumeNode.GetName()!r} was not loaded from the DICOM database, so a SEG cannot "
                "reference it; use 'Create synthetic DICOM' first, or load the volume from the DICOM browser"
            )
        files = bridge.order_series_files({uid: slicer.dicomDatabase.fileForInstance(uid) for uid in uids}, uids)
        return ReferenceSeries.from_files(files)

    # ------------------------------------------------------------ segmentations
    @staticmethod
    def segmentIds(segmentationNode):
        ids = vtk.vtkStringArray()
        segmentationNode.GetSegmentation().GetSegmentIDs(ids)
        return [ids.GetValue(i) for i in range(ids.GetNumberOfValues())]

    @staticmethod
    def readSegmentRecord(segmentationNode, segmentId):
        """Name, colour (0..1) and known tags of one segment as a ``SlicerSegmentRecord``."""
        segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
        tags = {}
        for name in bridge.TAGS_TO_READ:
            value = vtk.mutable("")
            if segment.GetTag(name, value):
                tags[name] = str(value)
        return bridge.SlicerSegmentRecord(segmentId, segment.GetName(), tuple(segment.GetColor()), tags)

    @staticmethod
    def applySegmentRecord(segment, record):
        """Set name, colour and tags of a vtkSegment from a ``SlicerSegmentRecord``."""
        segment.SetName(record.name)
        segment.SetNameAutoGenerated(False)
        if record.color is not None:
            segment.SetColor(*record.color)
        for key, value in record.tags.items():
            segment.SetTag(key, value)
        for key in record.remove_tags:
            segment.RemoveTag(key)

    @staticmethod
    def _removeTempVolume(node, removeColorNode=False):
        display = node.GetDisplayNode()
        if display is not None:
            colorNode = display.GetColorNode()
            if removeColorNode and colorNode is not None:
                slicer.mrmlScene.RemoveNode(colorNode)
            slicer.mrmlScene.RemoveNode(display)
        slicer.mrmlScene.RemoveNode(node)

    def checkOverlaps(self, segmentationNode, segmentIds, referenceVolumeNode):
        """Raise ``OverlapError`` naming the segments and shared voxel counts.

        Segments in one shared labelmap layer cannot overlap, so masks are only compared
        when the segmentation has several layers (or a non-labelmap source).
        """
        segmentation = segmentationNode.GetSegmentation()
        labelmapName = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
        if segmentation.GetSourceRepresentationName() == labelmapName and segmentation.GetNumberOfLayers() <= 1:
            return
        checker = bridge.OverlapChecker()
        for segmentId in segmentIds:
            mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, referenceVolumeNode)
            checker.add(segmentation.GetSegment(segmentId).GetName(), mask)
        checker.raise_if_overlap()

    def segmentationToLabelMap(self, segmentationNode, referenceVolumeNode=None, segmentIds=None):
        """Core ``LabelMap`` of a segmentation, on the full grid of the reference volume.

        Refuses overlapping segments (a LABELMAP cannot hold them) before
        ``ExportSegmentsToLabelmapNode``, which would silently let later segments win.
        Empty segments are kept; original label values are restored from the
        ``AdaptiveBrushDicom.LabelValue`` tag when present.
        """
        from AdaptiveBrushDicomLib.errors import UserError

        if referenceVolumeNode is None:
            referenceVolumeNode = segmentationNode.GetNodeReference(
                segmentationNode.GetReferenceImageGeometryReferenceRole())
        if referenceVolumeNode is None:
            raise UserError(f"segmentation {segmentationNode.GetName()!r} has no reference volume; select one")
        self._refuseTransform(segmentationNode)
        self._refuseTransform(referenceVolumeNode)
        ids = list(segmentIds) if segmentIds is not None else self.segmentIds(segmentationNode)
        if not ids:
            raise UserError(f"segmentation {segmentationNode.GetName()!r} has no segments")
        self.checkOverlaps(segmentationNode, ids, referenceVolumeNode)
        records = [self.readSegmentRecord(segmentationNode, sid) for sid in ids]
        idArray = vtk.vtkStringArray()
        for sid in ids:
            idArray.InsertNextValue(sid)
        labelNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", self.TEMP_NODE_NAME)
        try:
            if not slicer.modules.segmentations.logic().ExportSegmentsToLabelmapNode(
                    segmentationNode, idArray, labelNode, referenceVolumeNode):
                raise RuntimeError(f"exporting segments of {segmentationNode.GetName()!r} to a labelmap failed")
            exported = slicer.util.arrayFromVolume(labelNode).copy()
            ijkToRas = self.ijkToRasArray(labelNode)
        finally:
            self._removeTempVolume(labelNode, removeColorNode=True)
        return bridge.labelmap_from_export(exported, ijkToRas, records)

    def labelMapToSegmentationNode(self, labelmap, name, referenceVolumeNode=None, segmentationNode=None):
        """Create (or fill) a segmentation node from a core ``LabelMap``.

        Uses ``ImportLabelmapToSegmentationNode(labelNode, segNode, segmentIds)``: pixel value
        n+1 -> ``segmentIds[n]``, so every segment, even an empty one, is created with the
        intended ID. One call per layer (overlapping segments of a BINARY SEG). When the
        reference volume is given, the labels are first moved exactly onto its grid and it
        becomes the segmentation's reference geometry.
        """
        from AdaptiveBrushDicomLib.errors import UserError
        from AdaptiveBrushDicomLib.core.labelmap import LabelMap

        if referenceVolumeNode is not None:
            shape = slicer.util.arrayFromVolume(referenceVolumeNode).shape
            target = bridge.grid_from_ijk_to_ras(self.ijkToRasArray(referenceVolumeNode), shape)
            try:
                array = bridge.conform_array(labelmap.array, labelmap.grid, target)
                labelmap = LabelMap(array, target, labelmap.segments)
            except UserError as exc:
                logging.warning(f"AdaptiveBrushDicom: keeping the SEG's own grid for {name!r}: {exc}")
        plan = bridge.plan_labelmap_import(labelmap)
        if segmentationNode is None:
            segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
            segmentationNode.CreateDefaultDisplayNodes()
        if referenceVolumeNode is not None:
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(referenceVolumeNode)
        segmentationsLogic = slicer.modules.segmentations.logic()
        for layer in plan.layers:
            labelNode = slicer.util.addVolumeFromArray(
                layer.array, plan.ijk_to_ras, self.TEMP_NODE_NAME, nodeClassName="vtkMRMLLabelMapVolumeNode")
            ids = vtk.vtkStringArray()
            for sid in layer.segment_ids:
                ids.InsertNextValue(sid)
            try:
                ok = segmentationsLogic.ImportLabelmapToSegmentationNode(labelNode, segmentationNode, ids)
            finally:
                self._removeTempVolume(labelNode)
            if not ok:
                raise RuntimeError(f"importing labels into segmentation {name!r} failed")
        segmentation = segmentationNode.GetSegmentation()
        for record in plan.records:
            self.applySegmentRecord(segmentation.GetSegment(record.segment_id), record)
        return segmentationNode

    # ------------------------------------------------------------ DICOM database
    @staticmethod
    def _requireDatabase():
        from AdaptiveBrushDicomLib.errors import UserError

        if slicer.dicomDatabase is None or not slicer.dicomDatabase.isOpen:
            raise UserError("the Slicer DICOM database is not open; open the DICOM module once to create it")

    def importFilesToDatabase(self, paths, copy=True):
        """Index files into ``slicer.dicomDatabase`` (copied into the database folder)."""
        import ctk

        self._requireDatabase()
        indexer = ctk.ctkDICOMIndexer()
        indexer.addListOfFiles(slicer.dicomDatabase, [str(p) for p in paths], copy)
        indexer.waitForImportFinished()

    def _newOutputDirectory(self, kind):
        path = os.path.join(slicer.app.temporaryPath, "AdaptiveBrushDicom", kind, time.strftime("%Y%m%d-%H%M%S"))
        n, candidate = 1, path
        while os.path.exists(candidate):
            n += 1
            candidate = f"{path}-{n}"
        os.makedirs(candidate)
        return candidate

    @staticmethod
    def _safeFileName(text):
        keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_")
        return keep[:60] or "segmentation"

    def exportSegmentationToDicomSeg(self, segmentationNode, referenceVolumeNode=None, seriesDescription=None,
                                     seriesNumber=300, compression=None, outputDirectory=None,
                                     contentCreatorName=None, importToDatabase=True, verify=True):
        """Write a LABELMAP DICOM SEG of ``segmentationNode`` referencing the DICOM series of
        the reference volume, verify it by decoding, and add it to the DICOM database.

        Returns the core ``WriteResult`` (``.path``, ``.series_instance_uid``, ...). Raises
        ``UserError`` with a one-line message for user mistakes (no DICOM reference volume,
        overlapping segments, ...).
        """
        from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION
        from AdaptiveBrushDicomLib.errors import UserError

        if not ensureDependencies(["export"]):
            raise UserError("highdicom / pydicom >= 3.0.1 are needed for DICOM SEG export and were not installed")
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
        from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

        if referenceVolumeNode is None:
            referenceVolumeNode = segmentationNode.GetNodeReference(
                segmentationNode.GetReferenceImageGeometryReferenceRole())
        if referenceVolumeNode is None:
            raise UserError(f"segmentation {segmentationNode.GetName()!r} has no reference volume; select one")
        labelmap = self.segmentationToLabelMap(segmentationNode, referenceVolumeNode)
        reference = self.referenceSeriesForVolume(referenceVolumeNode)
        description = seriesDescription or segmentationNode.GetName()
        folder = outputDirectory or self._newOutputDirectory("export")
        base = os.path.join(folder, f"SEG_{int(seriesNumber)}_{self._safeFileName(description)}")
        path, n = base + ".dcm", 1
        while os.path.exists(path):
            n += 1
            path = f"{base}_{n}.dcm"
        result = write_seg(
            labelmap, reference, path,
            compression=compression or DEFAULT_COMPRESSION,
            series_description=description,
            series_number=int(seriesNumber),
            content_creator_name=contentCreatorName,
            source_name=segmentationNode.GetName(),
        )
        for message in result.warnings:
            logging.warning(f"AdaptiveBrushDicom: {message}")
        if verify:
            decoded = read_seg(result.path, reference=reference)
            expected = bridge.conform_array(labelmap.array, labelmap.grid, reference.grid)
            if decoded.labelmap.array.shape != expected.shape or (decoded.labelmap.array != expected).any():
                raise RuntimeError(f"{result.path}: decoding the written SEG does not give back the segmentation")
        if importToDatabase:
            self.importFilesToDatabase([result.path])
        return result

    def createSyntheticDicom(self, volumeNode, patientId=None, studyDescription="AdaptiveBrushDicom",
                             seriesDescription=None, modality="MR", outputDirectory=None, load=True):
        """Write a volume as a DICOM image series (deterministic UIDs), import it into the
        DICOM database and (by default) load it back, so segmentations can reference it.

        Returns the loaded volume node (which has ``DICOM.instanceUIDs``), or the core
        ``SyntheticSeries`` when ``load`` is False.
        """
        from AdaptiveBrushDicomLib.errors import UserError

        if not ensureDependencies(["synthetic"]):
            raise UserError("pydicom >= 3.0.1 is needed to write DICOM and was not installed")
        from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for

        self._requireDatabase()
        array, grid = self.volumeToArrayAndGrid(volumeNode)
        folder = outputDirectory or self._newOutputDirectory("synthetic")
        series = create_synthetic_series(
            array, grid, folder,
            patient_id=patientId or patient_id_for(volumeNode.GetName()),
            modality=modality,
            study_description=studyDescription,
            series_description=seriesDescription or volumeNode.GetName(),
        )
        self.importFilesToDatabase(series.paths)
        if not load:
            return series
        return self.loadVolumeSeries(series.series_instance_uid)

    def loadVolumeSeries(self, seriesInstanceUID):
        """Load (or find, if already loaded) the volume node of a DICOM series."""
        from DICOMLib import DICOMUtils

        node = self.loadedNodeForSeries(seriesInstanceUID)
        if node is not None:
            return node
        DICOMUtils.loadSeriesByUID([seriesInstanceUID])  # returns node IDs (strings)
        return self.loadedNodeForSeries(seriesInstanceUID)

    @staticmethod
    def loadedNodeForSeries(seriesInstanceUID):
        """Data node of the SH item whose "DICOM" UID is the series UID, or None."""
        shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        item = shn.GetItemByUID(slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMUIDName(), seriesInstanceUID)
        return shn.GetItemDataNode(item) if item else None

    def loadSegSeries(self, seriesInstanceUIDs, progressCallback=None):
        """Load SEG series through the DICOM plugins (ours wins for LABELMAP at 0.99);
        already loaded ones are reused. Returns the segmentation nodes."""
        from DICOMLib import DICOMUtils

        self._requireDatabase()
        missing = [uid for uid in seriesInstanceUIDs if self.loadedNodeForSeries(uid) is None]
        if missing:
            DICOMUtils.loadSeriesByUID(missing, progressCallback=progressCallback)
        nodes = [self.loadedNodeForSeries(uid) for uid in seriesInstanceUIDs]
        return [n for n in nodes if n is not None and n.IsA("vtkMRMLSegmentationNode")]

    # ------------------------------------------------------------ core manager
    def manager(self):
        """The core ``DicomManager`` over Slicer's DICOM database (``SlicerDatabaseAdapter``
        around ``slicer.dicomDatabase``). Files are indexed by this Logic (copied from the
        temporary folder), so the manager's own auto-import is off."""
        from AdaptiveBrushDicomLib.store.database import SlicerDatabaseAdapter
        from AdaptiveBrushDicomLib.store.manager import DicomManager

        self._requireDatabase()
        if getattr(self, "_manager", None) is None or self._managerDatabase is not slicer.dicomDatabase:
            self._manager = DicomManager(SlicerDatabaseAdapter(slicer.dicomDatabase), auto_import=False)
            self._managerDatabase = slicer.dicomDatabase
        return self._manager

    def segmentationsForVolume(self, volumeSeriesUID):
        """SEG series referencing an image series (core ``SegSeriesInfo``: ``kind`` gold /
        trial / other, ``trial_number``, ``run_name``...), gold standards first."""
        return self.manager().get_segmentations_for_volume(volumeSeriesUID)

    class _ProgressStream:
        """File-like object for the core migration's progress lines -> callback(text)."""

        def __init__(self, callback):
            self.callback = callback

        def write(self, text):
            text = text.strip("\r\n ")
            if text and self.callback is not None:
                self.callback(text)

        def flush(self):
            pass

        def isatty(self):
            return False

    def migrateResultsFolder(self, folder, volume=None, progressCallback=None, importToDatabase=True):
        """Migrate legacy optimization runs / gold standards under ``folder`` to DICOM in
        place (core ``migrate.migrate_paths``: originals kept, atomic, resumable, every SEG
        verified), then index the written series and SEGs in Slicer's DICOM database.

        ``volume``: source image file or DICOM folder when the run does not name one.
        ``progressCallback(text)`` receives the migration's progress lines.
        Returns the core ``MigrationSummary`` (``to_text()`` is the report).
        """
        from AdaptiveBrushDicomLib.errors import UserError

        if not ensureDependencies(["migrate"]):
            raise UserError("packages needed for migration (highdicom, SimpleITK, slicerio) were not installed")
        from AdaptiveBrushDicomLib.runs.migrate import migrate_paths

        summary = migrate_paths([folder], volume=volume, progress=progressCallback is not None,
                                stream=self._ProgressStream(progressCallback))
        if importToDatabase and not summary.dry_run:
            written = []
            for report in summary.reports:
                dicomFolder = os.path.join(str(report.folder), "dicom")
                for root, _, files in os.walk(dicomFolder):
                    written += [os.path.join(root, f) for f in sorted(files) if f.endswith(".dcm")]
            if written:
                # link, do not copy: the migrated folder is the user's permanent copy
                self.importFilesToDatabase(written, copy=False)
        return summary

    def compareTrials(self, volumeSeriesUID, segSeriesUIDs, openExplorer=True):
        """Load the volume, the gold standard and the chosen trial SEGs, then open
        CrossSegmentationExplorer (when installed) on the volume."""
        volumeNode = self.loadVolumeSeries(volumeSeriesUID)
        segNodes = self.loadSegSeries(list(segSeriesUIDs))
        if openExplorer and hasattr(slicer.modules, "crosssegmentationexplorer"):
            if volumeNode is not None:
                try:  # CSE keeps its volume in the parameter node reference "CurrentVolumeNode"
                    cse = slicer.util.getModuleLogic("CrossSegmentationExplorer")
                    cse.getParameterNode().SetNodeReferenceID("CurrentVolumeNode", volumeNode.GetID())
                except Exception as exc:  # CSE internals may change; selecting the volume by hand still works
                    logging.warning(f"AdaptiveBrushDicom: could not preselect the volume in CrossSegmentationExplorer: {exc}")
            slicer.util.selectModule("CrossSegmentationExplorer")
        elif openExplorer:
            logging.info("CrossSegmentationExplorer is not installed; install it from the Extensions Manager")
        return volumeNode, segNodes


#
# AdaptiveBrushDicomWidget
#


class AdaptiveBrushDicomWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        import ctk

        ScriptedLoadableModuleWidget.setup(self)
        self.logic = AdaptiveBrushDicomLogic()

        # ---- export
        exportBox = ctk.ctkCollapsibleButton()
        exportBox.text = "Export segmentation as DICOM SEG (LABELMAP)"
        self.layout.addWidget(exportBox)
        form = qt.QFormLayout(exportBox)
        self.volumeSelector = self._nodeSelector(["vtkMRMLScalarVolumeNode"], "Reference volume (loaded from DICOM)")
        form.addRow("Reference volume:", self.volumeSelector)
        self.segmentationSelector = self._nodeSelector(["vtkMRMLSegmentationNode"], "Segmentation to export")
        form.addRow("Segmentation:", self.segmentationSelector)
        self.compressionCombo = qt.QComboBox()
        from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression

        for member in Compression:
            self.compressionCombo.addItem(member.cli_name, member.value)
        self.compressionCombo.setCurrentIndex(list(Compression).index(DEFAULT_COMPRESSION))
        self.compressionCombo.toolTip = "Lossless transfer syntax; 'deflate' is the smallest one every tested reader opens"
        form.addRow("Compression:", self.compressionCombo)
        self.descriptionEdit = qt.QLineEdit()
        self.descriptionEdit.placeholderText = "e.g. trial_012_watershed or gold_standard (names group trials in the database and CrossSegmentationExplorer)"
        form.addRow("Series description:", self.descriptionEdit)
        self.seriesNumberSpin = qt.QSpinBox()
        self.seriesNumberSpin.setRange(1, 99999)
        self.seriesNumberSpin.value = 300
        form.addRow("Series number:", self.seriesNumberSpin)
        self.exportButton = qt.QPushButton("Export as DICOM SEG")
        self.exportButton.toolTip = "Write a LABELMAP SEG, verify it, and add it to the DICOM database"
        form.addRow(self.exportButton)
        self.syntheticButton = qt.QPushButton("Create synthetic DICOM from reference volume")
        self.syntheticButton.toolTip = "For volumes not loaded from DICOM: write them as a DICOM series and load it"
        form.addRow(self.syntheticButton)

        # ---- migrate
        migrateBox = ctk.ctkCollapsibleButton()
        migrateBox.text = "Migrate optimization results"
        self.layout.addWidget(migrateBox)
        migrateForm = qt.QFormLayout(migrateBox)
        self.migrateButton = qt.QPushButton("Migrate results folder...")
        self.migrateButton.toolTip = "results.json + .seg.nrrd trials -> DICOM series + SEGs in the DICOM database"
        migrateForm.addRow(self.migrateButton)

        # ---- compare
        compareBox = ctk.ctkCollapsibleButton()
        compareBox.text = "Compare trials"
        self.layout.addWidget(compareBox)
        compareForm = qt.QFormLayout(compareBox)
        self.findTrialsButton = qt.QPushButton("List SEGs of the reference volume")
        compareForm.addRow(self.findTrialsButton)
        self.trialList = qt.QListWidget()
        self.trialList.selectionMode = qt.QAbstractItemView.ExtendedSelection
        compareForm.addRow(self.trialList)
        self.compareButton = qt.QPushButton("Load selected and compare")
        self.compareButton.toolTip = "Loads the volume, the selected SEGs (gold standard and trials) and opens CrossSegmentationExplorer"
        compareForm.addRow(self.compareButton)

        self.layout.addStretch(1)

        self.exportButton.connect("clicked(bool)", self.onExport)
        self.syntheticButton.connect("clicked(bool)", self.onSynthetic)
        self.migrateButton.connect("clicked(bool)", self.onMigrate)
        self.findTrialsButton.connect("clicked(bool)", self.onFindTrials)
        self.compareButton.connect("clicked(bool)", self.onCompare)
        self.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onSegmentationChanged)

    def _nodeSelector(self, classes, toolTip):
        selector = slicer.qMRMLNodeComboBox()
        selector.nodeTypes = classes
        selector.selectNodeUponCreation = False
        selector.addEnabled = False
        selector.removeEnabled = False
        selector.noneEnabled = True
        selector.showHidden = False
        selector.setMRMLScene(slicer.mrmlScene)
        selector.toolTip = toolTip
        return selector

    def onSegmentationChanged(self, node):
        if node is None:
            return
        if not self.descriptionEdit.text:
            self.descriptionEdit.text = node.GetName()
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        if reference is not None and self.volumeSelector.currentNode() is None:
            self.volumeSelector.setCurrentNode(reference)

    def _volumeSeriesUID(self, volumeNode):
        uids = bridge.split_uids(volumeNode.GetAttribute(bridge.ATTR_INSTANCE_UIDS)) if volumeNode else []
        return slicer.dicomDatabase.seriesForFile(slicer.dicomDatabase.fileForInstance(uids[0])) if uids else ""

    def onExport(self):
        segNode = self.segmentationSelector.currentNode()
        volumeNode = self.volumeSelector.currentNode()
        if segNode is None:
            slicer.util.errorDisplay("Select a segmentation to export.")
            return
        with slicer.util.tryWithErrorDisplay("DICOM SEG export failed.", waitCursor=True):
            result = self.logic.exportSegmentationToDicomSeg(
                segNode, volumeNode,
                seriesDescription=self.descriptionEdit.text or segNode.GetName(),
                seriesNumber=self.seriesNumberSpin.value,
                compression=self.compressionCombo.currentData,
            )
        slicer.util.infoDisplay(
            f"Wrote {result.path}\n({result.n_segments} segments, {result.n_frames} frames, "
            f"{result.size_bytes} bytes) and added it to the DICOM database.")

    def onSynthetic(self):
        volumeNode = self.volumeSelector.currentNode()
        if volumeNode is None:
            slicer.util.errorDisplay("Select the reference volume to write as DICOM.")
            return
        with slicer.util.tryWithErrorDisplay("Creating the DICOM series failed.", waitCursor=True):
            loaded = self.logic.createSyntheticDicom(volumeNode)
        if loaded is not None:
            self.volumeSelector.setCurrentNode(loaded)
            segNode = self.segmentationSelector.currentNode()
            if segNode is not None:
                segNode.SetReferenceImageGeometryParameterFromVolumeNode(loaded)

    def onMigrate(self):
        from AdaptiveBrushDicomLib.errors import UserError

        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Optimization results folder")
        if not folder:
            return
        volume = None
        while True:
            # the migration has no cancel hook; it is resumable, so closing Slicer is safe
            progress = slicer.util.createProgressDialog(labelText="Migrating...", maximum=0)
            progress.setCancelButton(None)

            def onProgress(text):
                progress.labelText = text
                slicer.app.processEvents()

            try:
                summary = self.logic.migrateResultsFolder(folder, volume=volume, progressCallback=onProgress)
                break
            except UserError as exc:
                progress.close()
                if volume is None and "source image" in str(exc):
                    volume = qt.QFileDialog.getOpenFileName(
                        slicer.util.mainWindow(), "Source image of the run (image file or a file of its DICOM series)")
                    if volume:
                        if volume.lower().endswith(".dcm"):
                            volume = os.path.dirname(volume)
                        continue
                slicer.util.errorDisplay(f"Migration failed: {exc}")
                return
            finally:
                progress.close()
        report = summary.to_text()
        if summary.exit_code:
            slicer.util.errorDisplay("Migration finished with failures; see details.", detailedText=report)
        else:
            slicer.util.infoDisplay("Migration finished; the series are in the DICOM database.", detailedText=report)

    def onFindTrials(self):
        volumeNode = self.volumeSelector.currentNode()
        self.trialList.clear()
        seriesUID = self._volumeSeriesUID(volumeNode)
        if not seriesUID:
            slicer.util.errorDisplay("Select a reference volume loaded from the DICOM database.")
            return
        with slicer.util.tryWithErrorDisplay("Listing the segmentations failed.", waitCursor=True):
            segs = self.logic.segmentationsForVolume(seriesUID)
        for info in segs:
            text = f"{info.run_name or '(no run)'} / {info.series_description or info.series_instance_uid}"
            item = qt.QListWidgetItem(text)
            item.setData(qt.Qt.UserRole, info.series_instance_uid)
            item.setToolTip(f"{info.kind}; {info.series_instance_uid}")
            self.trialList.addItem(item)
            item.setSelected(info.is_gold)

    def onCompare(self):
        volumeNode = self.volumeSelector.currentNode()
        seriesUID = self._volumeSeriesUID(volumeNode)
        uids = [item.data(qt.Qt.UserRole) for item in self.trialList.selectedItems()]
        if not seriesUID or not uids:
            slicer.util.errorDisplay("List the SEGs of a DICOM reference volume and select the ones to compare.")
            return
        with slicer.util.tryWithErrorDisplay("Loading the trials failed.", waitCursor=True):
            self.logic.compareTrials(seriesUID, uids)

    def cleanup(self):
        self.removeObservers()


#
# AdaptiveBrushDicomTest
#


class AdaptiveBrushDicomTest(ScriptedLoadableModuleTest):
    """In-Slicer round trip; the full self-test is Testing/Slicer/AdaptiveBrushDicomSelfTest.py.

    Run from the Python console: ``import AdaptiveBrushDicom; AdaptiveBrushDicom.AdaptiveBrushDicomTest().runTest()``
    (or the module's "Reload and Test" button in developer mode).
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_segmentation_round_trip_in_scene()

    def test_segmentation_round_trip_in_scene(self):
        """LabelMap -> segmentation node -> LabelMap keeps voxels, labels and empty segments."""
        import numpy as np

        from AdaptiveBrushDicomLib.core.geometry import Grid
        from AdaptiveBrushDicomLib.core.labelmap import LabelMap
        from AdaptiveBrushDicomLib.core.segment import Segment

        self.delayDisplay("Segmentation round trip in the scene")
        grid = Grid((6, 8, 10), (0.8, 0.9, 2.0), (-10.0, 20.0, 5.0), np.diag([1.0, -1.0, -1.0]))
        array = np.zeros(grid.shape_kji, np.int16)
        array[1:3, 2:5, 3:7] = 300
        array[4, 1:4, 1:4] = 2
        segments = [Segment(2, "two", (10, 200, 30)), Segment(300, "three hundred", (250, 10, 10)),
                    Segment(9, "empty", (1, 2, 3))]
        volume = slicer.util.addVolumeFromArray(np.zeros(grid.shape_kji, np.int16), bridge.ijk_to_ras_from_grid(grid), "ref")
        logic = AdaptiveBrushDicomLogic()
        segNode = logic.labelMapToSegmentationNode(LabelMap(array, grid, segments), "seg", referenceVolumeNode=volume)
        self.assertEqual(segNode.GetSegmentation().GetNumberOfSegments(), 3)
        back = logic.segmentationToLabelMap(segNode, volume)
        self.assertTrue(back.grid == grid)
        self.assertTrue((back.array == array).all())
        self.assertEqual([s.name for s in back.segments], ["two", "three hundred", "empty"])
        self.assertEqual([s.label for s in back.segments], [2, 300, 9])
        self.assertEqual([s.color for s in back.segments], [(10, 200, 30), (250, 10, 10), (1, 2, 3)])
        self.delayDisplay("Test passed")
