"""In-Slicer self-test of the AdaptiveBrushDicom extension (needs a running 3D Slicer).

Builds a volume, writes it as a DICOM series, segments it, exports the segmentation as a
LABELMAP DICOM SEG into the DICOM database, clears the scene, loads volume and SEG back
through Slicer's DICOM machinery (``DICOMUtils.loadSeriesByUID``, which lets every
registered plugin examine the files and picks the highest confidence) and compares voxels
and segment metadata. Everything happens in a temporary DICOM database; the user's
database is restored afterwards.

Run it
------
* ctest, in a build tree of the extension: ``ctest -R py_AdaptiveBrushDicomSelfTest -V``
  (registered in ``Testing/Slicer/CMakeLists.txt`` with ``slicer_add_python_unittest``).
* Any installed Slicer with the extension installed::

      Slicer --no-main-window --python-script Testing/Slicer/AdaptiveBrushDicomSelfTest.py

  (exit code 0 = passed). Or, in the Python console:
  ``exec(open("/path/to/AdaptiveBrushDicomSelfTest.py").read())``.
"""

import logging
import unittest

import numpy as np
import vtk

import slicer
from DICOMLib import DICOMUtils

import AdaptiveBrushDicom
from AdaptiveBrushDicomLib.slicer import bridge, plugin_rules
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology

LIVER = Terminology(category=Code("123037004", "SCT", "Anatomical Structure"), type=Code("10200004", "SCT", "Liver"))
TUMOUR = Terminology(category=Code("49755003", "SCT", "Morphologically Altered Structure"),
                     type=Code("108369006", "SCT", "Neoplasm"))


def _rotation(ax, ay, az):
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


class AdaptiveBrushDicomSelfTest(unittest.TestCase):
    """Round trip volume -> DICOM -> segmentation -> LABELMAP SEG -> DICOM browser -> segmentation."""

    def setUp(self):
        slicer.mrmlScene.Clear()
        self.originalDatabaseDir = DICOMUtils.openTemporaryDatabase()
        self.logic = AdaptiveBrushDicom.AdaptiveBrushDicomLogic()

    def tearDown(self):
        slicer.mrmlScene.Clear()
        DICOMUtils.closeTemporaryDatabase(self.originalDatabaseDir)

    # ------------------------------------------------------------------ helpers
    def _segmentationNodes(self):
        return list(slicer.util.getNodesByClass("vtkMRMLSegmentationNode"))

    def _makeCase(self, direction):
        grid = Grid((12, 20, 24), (0.9, 0.8, 2.5), (-30.0, 12.0, 45.0), direction)
        image = (np.arange(np.prod(grid.shape_kji)).reshape(grid.shape_kji) % 251).astype(np.int16)
        labels = np.zeros(grid.shape_kji, np.int32)
        labels[2:8, 4:12, 5:15] = 1
        labels[9, 10:16, 12:20] = 300  # label above 255
        segments = [
            Segment(1, "liver", (200, 100, 50), LIVER, algorithm_type=AlgorithmType.AUTOMATIC,
                    algorithm_name="watershed", algorithm_parameters={"level": 3}),
            Segment(300, "tumour", (10, 220, 40), TUMOUR, algorithm_type=AlgorithmType.AUTOMATIC,
                    algorithm_name="watershed"),
            Segment(7, "not drawn yet", (1, 2, 3), LIVER, algorithm_type=AlgorithmType.MANUAL),  # empty
        ]
        return grid, image, LabelMap(labels, grid, segments)

    def _roundTrip(self, direction):
        grid, image, labelmap = self._makeCase(direction)
        plain = slicer.util.addVolumeFromArray(image, bridge.ijk_to_ras_from_grid(grid), "source image")

        # 1. volume -> DICOM series in the database, loaded back by Slicer's scalar volume plugin
        volume = self.logic.createSyntheticDicom(plain, patientId="ABD_SELFTEST")
        self.assertIsNotNone(volume, "synthetic series did not load")
        self.assertTrue(volume.GetAttribute("DICOM.instanceUIDs"))
        volumeSeriesUID = slicer.dicomDatabase.seriesForFile(
            slicer.dicomDatabase.fileForInstance(volume.GetAttribute("DICOM.instanceUIDs").split()[0]))
        volumeArray, volumeGrid = self.logic.volumeToArrayAndGrid(volume)
        # same voxels, possibly in another axis order: exact re-indexing (raises otherwise)
        expected = bridge.conform_array(labelmap.array, grid, volumeGrid)
        np.testing.assert_array_equal(volumeArray, bridge.conform_array(image, grid, volumeGrid))

        # 2. segmentation on it, exported as LABELMAP SEG into the database
        segNode = self.logic.labelMapToSegmentationNode(labelmap, "trial_001_watershed", referenceVolumeNode=volume)
        self.assertEqual(segNode.GetSegmentation().GetNumberOfSegments(), 3)
        result = self.logic.exportSegmentationToDicomSeg(segNode, volume, seriesDescription="trial_001_watershed",
                                                         seriesNumber=1001)
        self.assertTrue(result.is_labelmap)
        self.assertEqual(slicer.dicomDatabase.fileValue(
            slicer.dicomDatabase.fileForInstance(result.sop_instance_uid), "0008,0016"), plugin_rules.SegSopClass.LABELMAP)

        # 3. plugin choice: ours is selected, nothing else for that series
        files = slicer.dicomDatabase.filesForSeries(result.series_instance_uid)
        loadablesByPlugin, _ = DICOMUtils.getLoadablesFromFileLists([files])
        DICOMUtils.selectHighestConfidenceLoadables(loadablesByPlugin)
        selected = [(type(p).__name__, l.confidence) for p, ls in loadablesByPlugin.items() for l in ls if l.selected]
        self.assertEqual(selected, [("DICOMLabelMapSegPluginClass", plugin_rules.CONFIDENCE_LABELMAP)])

        # 4. clear the scene, load volume + SEG from the database
        slicer.mrmlScene.Clear()
        DICOMUtils.loadSeriesByUID([volumeSeriesUID])
        volume = self.logic.loadedNodeForSeries(volumeSeriesUID)
        DICOMUtils.loadSeriesByUID([result.series_instance_uid])
        segNodes = self._segmentationNodes()
        self.assertEqual(len(segNodes), 1, "SEG loaded more than once (plugin confidence tie?)")
        loaded = segNodes[0]
        self.assertEqual(loaded.GetName(), "trial_001_watershed")  # the SeriesDescription
        self.assertEqual(loaded.GetAttribute("DICOM.instanceUIDs"), result.sop_instance_uid)
        self.assertIs(loaded.GetNodeReference(loaded.GetReferenceImageGeometryReferenceRole()), volume)
        self.assertEqual(len(slicer.util.getNodesByClass("vtkMRMLLabelMapVolumeNode")), 0, "temporary node left")

        # 5. voxels and metadata
        back = self.logic.segmentationToLabelMap(loaded, volume)
        np.testing.assert_array_equal(back.array, expected)
        self.assertEqual([(s.label, s.name, s.color) for s in back.segments],
                         [(1, "liver", (200, 100, 50)), (300, "tumour", (10, 220, 40)),
                          (7, "not drawn yet", (1, 2, 3))])
        self.assertEqual(back.segments[0].terminology.type, LIVER.type)
        self.assertEqual(back.segments[1].terminology.type, TUMOUR.type)
        self.assertEqual(back.segments[0].algorithm_name, "watershed")
        segment = loaded.GetSegmentation().GetSegment(back.segments[0].segment_id)
        tag = vtk.mutable("")
        self.assertTrue(segment.GetTag(segment.GetTerminologyEntryTagName(), tag))
        self.assertIn("SCT^10200004^Liver", str(tag))
        return volumeSeriesUID, result

    # ------------------------------------------------------------------ tests
    def test_plugin_registered(self):
        plugins = slicer.modules.dicomPlugins
        self.assertIn("DICOMLabelMapSegPlugin", plugins)
        plugin = plugins["DICOMLabelMapSegPlugin"]()
        for tag in plugin_rules.DICOM_TAGS.values():  # DICOM.py pre-caches plugin.tags.values() at startup
            self.assertIn(tag, plugin.tags.values())

    def test_round_trip_axial(self):
        self._roundTrip(np.eye(3))

    def test_round_trip_oblique_left_handed_slices(self):
        # oblique, with k = -(row x column): the DICOM slices are sorted along row x column,
        # so the loaded volume's slice order is the reverse of the source grid's
        direction = _rotation(0.2, -0.1, 0.3)
        direction[:, 2] *= -1
        self._roundTrip(direction)

    def test_seg_loaded_before_volume_links_later(self):
        volumeSeriesUID, result = self._roundTrip(np.eye(3))
        slicer.mrmlScene.Clear()
        DICOMUtils.loadSeriesByUID([result.series_instance_uid])
        segNode = self._segmentationNodes()[0]
        self.assertIsNone(segNode.GetNodeReference(segNode.GetReferenceImageGeometryReferenceRole()))
        DICOMUtils.loadSeriesByUID([volumeSeriesUID])
        volume = self.logic.loadedNodeForSeries(volumeSeriesUID)
        # vtkMRMLSegmentationNode::OnSubjectHierarchyUIDAdded links it through DICOM.ReferencedInstanceUIDs
        self.assertIs(segNode.GetNodeReference(segNode.GetReferenceImageGeometryReferenceRole()), volume)

    def test_overlap_is_refused(self):
        grid, image, _ = self._makeCase(np.eye(3))
        plain = slicer.util.addVolumeFromArray(image, bridge.ijk_to_ras_from_grid(grid), "source image")
        volume = self.logic.createSyntheticDicom(plain, patientId="ABD_SELFTEST_OVERLAP")
        segNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "overlap")
        segNode.CreateDefaultDisplayNodes()
        segNode.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        shape = slicer.util.arrayFromVolume(volume).shape
        for name, box in (("A", np.s_[2:6, 2:6, 2:6]), ("B", np.s_[4:8, 4:8, 4:8])):
            sid = segNode.GetSegmentation().AddEmptySegment(name, name)
            mask = np.zeros(shape, np.uint8)
            mask[box] = 1
            slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segNode, sid, volume)
        from AdaptiveBrushDicomLib.errors import OverlapError

        if segNode.GetSegmentation().GetNumberOfLayers() < 2:
            self.skipTest("Slicer resolved the overlap while setting the masks; nothing to refuse")
        with self.assertRaises(OverlapError) as ctx:
            self.logic.exportSegmentationToDicomSeg(segNode, volume)
        self.assertIn("'A' and 'B' share 8 voxels", str(ctx.exception))

    def test_compare_trials_opens_explorer(self):
        volumeSeriesUID, result = self._roundTrip(np.eye(3))
        slicer.mrmlScene.Clear()
        infos = self.logic.segmentationsForVolume(volumeSeriesUID)
        self.assertIn(result.series_instance_uid, [i.series_instance_uid for i in infos])
        volume, segs, problems = self.logic.compareTrials(
            volumeSeriesUID, [result.series_instance_uid], openExplorer=hasattr(slicer.modules, "crosssegmentationexplorer"))
        self.assertEqual(len(segs), 1)
        self.assertEqual(problems, ["trial_001_watershed: segment 'not drawn yet' is empty and is left out of the comparison"])
        self.assertIs(segs[0].GetNodeReference(segs[0].GetReferenceImageGeometryReferenceRole()), volume)


def runSelfTest():
    """Run the tests; returns True when they all passed."""
    suite = unittest.TestLoader().loadTestsFromTestCase(AdaptiveBrushDicomSelfTest)
    return unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()


if __name__ == "__main__":
    ok = runSelfTest()
    logging.info("AdaptiveBrushDicomSelfTest " + ("passed" if ok else "FAILED"))
    slicer.util.exit(0 if ok else 1)
