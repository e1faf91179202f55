"""The AdaptiveBrushDicom module panel: Qt widgets that call ``AdaptiveBrushDicomLogic``.

Kept out of ``AdaptiveBrushDicom.py`` (which imports this class so Slicer finds
``AdaptiveBrushDicomWidget`` there); all behaviour is in the Logic and the core.
"""

import os

import qt

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.slicer import bridge, workflow


def _module():
    import AdaptiveBrushDicom  # the module file (imports this one at its end)

    return AdaptiveBrushDicom


class AdaptiveBrushDicomWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def _box(self, title):
        import ctk

        box = ctk.ctkCollapsibleButton()
        box.text = title
        self.layout.addWidget(box)
        return qt.QFormLayout(box)

    def _button(self, form, text, toolTip, slot):
        button = qt.QPushButton(text)
        button.toolTip = toolTip
        button.connect("clicked(bool)", slot)
        form.addRow(button)
        return button

    def setup(self):
        from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression

        ScriptedLoadableModuleWidget.setup(self)
        self.logic = _module().AdaptiveBrushDicomLogic()
        form = self._box("Export segmentation as DICOM SEG (LABELMAP)")
        self.volumeSelector = self._nodeSelector(["vtkMRMLScalarVolumeNode"], "Reference volume (loaded from DICOM)")
        form.addRow("Reference volume:", self.volumeSelector)
        self.segmentationSelector = self._nodeSelector(["vtkMRMLSegmentationNode"], "Segmentation to export")
        form.addRow("Segmentation:", self.segmentationSelector)
        self.compressionCombo = qt.QComboBox()
        for member in Compression:
            self.compressionCombo.addItem(member.cli_name, member.value)
        self.compressionCombo.setCurrentIndex(list(Compression).index(DEFAULT_COMPRESSION))
        form.addRow("Compression:", self.compressionCombo)
        self.descriptionEdit = qt.QLineEdit()
        self.descriptionEdit.placeholderText = "e.g. trial_012_watershed or gold_standard (groups trials in CrossSegmentationExplorer)"
        form.addRow("Series description:", self.descriptionEdit)
        self.seriesNumberSpin = qt.QSpinBox()
        self.seriesNumberSpin.setRange(1, 99999)
        self.seriesNumberSpin.value = 300
        form.addRow("Series number:", self.seriesNumberSpin)
        self._button(form, "Export as DICOM SEG", "Write a LABELMAP SEG, verify it, add it to the DICOM database", self.onExport)
        self._button(form, "Create synthetic DICOM from reference volume",
                     "For volumes not loaded from DICOM: write them as a DICOM series and load it", self.onSynthetic)
        form = self._box("Migrate optimization results")
        self._button(form, "Migrate results folder...", "results.json + .seg.nrrd trials -> DICOM series + SEGs", self.onMigrate)
        form = self._box("Compare trials")
        self._button(form, "List SEGs of the reference volume", "", self.onFindTrials)
        self.trialList = qt.QListWidget()
        self.trialList.selectionMode = qt.QAbstractItemView.ExtendedSelection
        form.addRow(self.trialList)
        self._button(form, "Load selected and compare",
                     "Load the volume and the selected SEGs and open CrossSegmentationExplorer", self.onCompare)
        self.layout.addStretch(1)
        self.segmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onSegmentationChanged)

    def _nodeSelector(self, classes, toolTip):
        selector = slicer.qMRMLNodeComboBox()
        selector.nodeTypes = classes
        selector.selectNodeUponCreation = False
        selector.addEnabled = selector.removeEnabled = selector.showHidden = False
        selector.noneEnabled = True
        selector.setMRMLScene(slicer.mrmlScene)
        selector.toolTip = toolTip
        return selector

    def onSegmentationChanged(self, node):
        if node is None:
            return
        if not self.descriptionEdit.text:
            self.descriptionEdit.text = _module().AdaptiveBrushDicomLogic.seriesDescriptionForExport(node)
        reference = node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole())
        if reference is not None and self.volumeSelector.currentNode() is None:
            self.volumeSelector.setCurrentNode(reference)

    def _volumeSeriesUID(self, volumeNode):
        uids = bridge.split_uids(volumeNode.GetAttribute(bridge.ATTR_INSTANCE_UIDS)) if volumeNode else []
        return slicer.dicomDatabase.seriesForFile(slicer.dicomDatabase.fileForInstance(uids[0])) if uids else ""

    def onExport(self):
        segNode = self.segmentationSelector.currentNode()
        if segNode is None:
            slicer.util.errorDisplay("Select a segmentation to export.")
            return
        with slicer.util.tryWithErrorDisplay("DICOM SEG export failed.", waitCursor=True):
            result = self.logic.exportSegmentationToDicomSeg(
                segNode, self.volumeSelector.currentNode(), seriesDescription=self.descriptionEdit.text or None,
                seriesNumber=self.seriesNumberSpin.value, compression=self.compressionCombo.currentData)
        slicer.util.infoDisplay(f"Wrote {result.path}\n({result.n_segments} segments, {result.n_frames} frames, "
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
            if self.segmentationSelector.currentNode() is not None:
                self.segmentationSelector.currentNode().SetReferenceImageGeometryParameterFromVolumeNode(loaded)

    def onMigrate(self):
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), "Optimization results folder")
        volume = None
        while folder:
            progress = slicer.util.createProgressDialog(labelText="Migrating...", maximum=0)
            progress.setCancelButton(None)  # no cancel hook; the migration is resumable

            def onProgress(text):
                progress.labelText = text
                slicer.app.processEvents()

            try:
                summary = self.logic.migrateResultsFolder(folder, volume=volume, progressCallback=onProgress)
            except UserError as exc:
                progress.close()
                if volume is None and workflow.missing_source_image(exc):
                    volume = qt.QFileDialog.getOpenFileName(
                        slicer.util.mainWindow(), "Source image of the run (image file or a file of its DICOM series)")
                    if volume:
                        volume = os.path.dirname(volume) if volume.lower().endswith(".dcm") else volume
                        continue
                slicer.util.errorDisplay(f"Migration failed: {workflow.slicer_message(exc)}")
                return
            progress.close()
            show = slicer.util.errorDisplay if summary.exit_code else slicer.util.infoDisplay
            show("Migration finished" + (" with failures; see details." if summary.exit_code else "; the series are in the DICOM database."),
                 detailedText=summary.to_text())
            return

    def onFindTrials(self):
        self.trialList.clear()
        seriesUID = self._volumeSeriesUID(self.volumeSelector.currentNode())
        if not seriesUID:
            slicer.util.errorDisplay("Select a reference volume loaded from the DICOM database.")
            return
        with slicer.util.tryWithErrorDisplay("Listing the segmentations failed.", waitCursor=True):
            segs = self.logic.segmentationsForVolume(seriesUID)
        for info in segs:
            item = qt.QListWidgetItem(f"{info.run_name or '(no run)'} / {info.series_description or info.series_instance_uid}")
            item.setData(qt.Qt.UserRole, info.series_instance_uid)
            item.setToolTip(f"{info.kind}; {info.series_instance_uid}")
            self.trialList.addItem(item)
            item.setSelected(info.is_gold)

    def onCompare(self):
        seriesUID = self._volumeSeriesUID(self.volumeSelector.currentNode())
        uids = [item.data(qt.Qt.UserRole) for item in self.trialList.selectedItems()]
        if not seriesUID or not uids:
            slicer.util.errorDisplay("List the SEGs of a DICOM reference volume and select the ones to compare.")
            return
        group = slicer.util.confirmYesNoDisplay(
            "Group the segmentations in CrossSegmentationExplorer as 'Gold standard' and one model per algorithm? "
            "(This sets its model keywords for this scene.)")
        with slicer.util.tryWithErrorDisplay("Loading the trials failed.", waitCursor=True):
            _, _, problems = self.logic.compareTrials(seriesUID, uids, groupModels=group)
        if problems:
            slicer.util.warningDisplay("Some segmentations were not loaded completely.", detailedText="\n".join(problems))
        with slicer.util.tryWithErrorDisplay("Computing the metrics failed.", waitCursor=True):
            self._showMetrics(*self.logic.comparisonTable(seriesUID, uids))

    def _showMetrics(self, columns, rows, whyNot):
        """The metrics table under the trial list (created on first use)."""
        if not hasattr(self, "metricsTable"):
            self.metricsTable = qt.QTableWidget()
            self.metricsTable.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)
            self.layout.addWidget(self.metricsTable)
        table = self.metricsTable
        table.clear()
        table.setToolTip(whyNot or "gold standard vs each trial; best trial first (docs/compare.md)")
        table.setColumnCount(len(columns) or 1)
        table.setHorizontalHeaderLabels(list(columns) or [whyNot or ""])
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                table.setItem(r, c, qt.QTableWidgetItem(cell))
        table.resizeColumnsToContents()

    def cleanup(self):
        self.removeObservers()
