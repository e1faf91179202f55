"""DICOMLabelMapSegPlugin through Slicer's real DICOMUtils, next to Slicer's own scalar volume
plugin and (5.12+) SEG plugin, on real MRML nodes; and the Logic's export / synthetic paths."""

from __future__ import annotations


import numpy as np
import pytest

import realdata
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.slicer import bridge, plugin_rules


def _loadables(rt, files):
    byPlugin, _ = rt.DICOMUtils.getLoadablesFromFileLists([[str(f) for f in files]])
    rt.DICOMUtils.selectHighestConfidenceLoadables(byPlugin)
    return {type(p).__name__: ls for p, ls in byPlugin.items()}


def _segNodes(rt):
    return list(rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode"))


def _tag(segment, name):
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(name, value) else None


def test_registration_and_precached_tags(slicer_env):
    rt = slicer_env
    cls = rt.slicer.modules.dicomPlugins[plugin_rules.PLUGIN_KEY]
    plugin = cls()
    assert isinstance(plugin, rt.modules["DICOMLabelMapSegPlugin"].DICOMPlugin)  # Slicer's real base class
    for key, tag in plugin_rules.DICOM_TAGS.items():  # DICOM.py pre-caches plugin.tags.values()
        assert plugin.tags[key] == tag
    assert rt.DICOMLabelMapSegPlugin.TAGS == plugin_rules.DICOM_TAGS


def test_plugin_selection_for_seg_and_image_series(indexed, case):
    rt = indexed
    seg = _loadables(rt, [case.segs["coded"]])
    selected = [(name, l.confidence) for name, ls in seg.items() for l in ls if l.selected]
    assert selected == [("DICOMLabelMapSegPluginClass", plugin_rules.CONFIDENCE_LABELMAP)]
    if rt.version != "v5.10.0":  # Slicer's own dcmqi-based SEG plugin offers 0.95 and loses
        assert [l.confidence for l in seg["DICOMSegmentationPluginClass"]] == [0.95]
    ours = seg["DICOMLabelMapSegPluginClass"][0]
    assert ours.name == "trial_004_coded" and "series 1004" in ours.tooltip
    assert sorted(ours.referencedInstanceUIDs) == sorted(case.series.sop_instance_uids)
    image = _loadables(rt, case.series.paths)
    assert image["DICOMLabelMapSegPluginClass"] == []
    assert [l.selected for l in image["DICOMScalarVolumePluginClass"]][0]


@pytest.mark.parametrize("direction", ["left-handed", "oblique"])
def test_load_round_trip_on_loaded_volume(slicer_env, tmp_path, direction):
    rt = slicer_env
    from conftest import rotation

    d = np.diag([1.0, 1.0, -1.0]) if direction == "left-handed" else rotation(0.2, -0.1, 0.3)
    case = realdata.make_case(tmp_path / "c", d)
    rt.index(case.all_files())
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    segUID = realdata.series_uid(case.segs["coded"])
    rt.DICOMUtils.loadSeriesByUID([segUID])
    (seg,) = _segNodes(rt)
    assert seg.GetName() == "trial_004_coded"
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is vol
    assert not rt.slicer.util.getNodesByClass("vtkMRMLLabelMapVolumeNode")  # no temporary nodes left
    segmentation = seg.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == ["liver", "tumour", "nothing yet"]  # empty segment kept
    liver = segmentation.GetNthSegment(0)
    assert "SCT^10200004^Liver" in _tag(liver, "TerminologyEntry")
    back = logic.segmentationToLabelMap(seg, vol)
    _, volGrid = logic.volumeToArrayAndGrid(vol)
    assert np.array_equal(back.array, bridge.conform_array(case.labelmaps["coded"].array, case.grid, volGrid))
    assert [(s.label, s.name, s.color) for s in back.segments] == [
        (1, "liver", (200, 100, 50)), (300, "tumour", (10, 220, 40)), (7, "nothing yet", (1, 2, 3))]
    assert back.segments[0].algorithm_parameters == {"level": 3}


@pytest.mark.parametrize("order", [("scalar", "seg", "ours"), ("ours", "scalar", "seg")])
def test_seg_and_volume_in_one_batch(slicer_env, case, order):
    """DICOM browser: volume and SEG selected together. ``loadLoadables`` loads in plugin
    registration order, so with ours first the SEG is created before its volume exists."""
    rt = slicer_env
    plugins = rt.slicer.modules.dicomPlugins
    reordered = {k: plugins[k] for k in
                 [{"scalar": "DICOMScalarVolumePlugin", "seg": "DICOMSegmentationPlugin",
                   "ours": plugin_rules.PLUGIN_KEY}[o] for o in order] if k in plugins}
    plugins.clear()
    plugins.update(reordered)
    rt.index(case.all_files())
    segUID = realdata.series_uid(case.segs["trial_001_watershed"])
    rt.DICOMUtils.loadSeriesByUID([segUID, case.series.series_instance_uid])
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    vol = logic.loadedNodeForSeries(case.series.series_instance_uid)
    (seg,) = _segNodes(rt)
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is vol
    back = logic.segmentationToLabelMap(seg, vol)
    _, volGrid = logic.volumeToArrayAndGrid(vol)
    assert np.array_equal(back.array, bridge.conform_array(case.labelmaps["trial_001_watershed"].array, case.grid, volGrid))


def test_seg_loaded_before_volume_links_later(indexed, case):
    rt = indexed
    rt.DICOMUtils.loadSeriesByUID([realdata.series_uid(case.segs["gold_standard"])])
    (seg,) = _segNodes(rt)
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is None
    rt.DICOMUtils.loadSeriesByUID([case.series.series_instance_uid])
    vol = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic.loadedNodeForSeries(case.series.series_instance_uid)
    # vtkMRMLSegmentationNode::OnSubjectHierarchyUIDAdded links it through DICOM.ReferencedInstanceUIDs
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is vol


def test_export_dialog_path_writes_only_to_the_folder(indexed, case, tmp_path):
    """Finding 3: export() must leave indexing to the export dialog."""
    rt = indexed
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    seg = logic.labelMapToSegmentationNode(case.labelmaps["coded"], "edited in Slicer", referenceVolumeNode=vol)
    shn = rt.slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(rt.scene)
    item = shn.CreateItem(shn.GetSceneItemID(), seg)
    plugin = rt.slicer.modules.dicomPlugins[plugin_rules.PLUGIN_KEY]()
    (exportable,) = plugin.examineForExport(item)
    assert exportable.pluginClass == plugin_rules.PLUGIN_KEY
    assert exportable.tag("SeriesDescription") == "edited in Slicer"
    exportable.directory = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    exportable.setTag("SeriesNumber", "12")
    before = set(rt.db.allFiles())
    assert plugin.export([exportable]) == ""
    (written,) = list((tmp_path / "out").glob("SEG_12_*.dcm"))
    assert set(rt.db.allFiles()) == before, "export() indexed the file itself"
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    decoded = read_seg(written, reference=case.reference)
    assert decoded.sop_class_uid == SegSopClass.LABELMAP and decoded.series_description == "edited in Slicer"
    expected = bridge.conform_array(case.labelmaps["coded"].array, case.grid, case.reference.grid)
    assert np.array_equal(decoded.labelmap.array, expected)
    exportable.setTag("SeriesNumber", "twelve")
    assert "SeriesNumber" in plugin.export([exportable])


def test_export_refuses_overlap_and_non_dicom_volume(indexed, case, tmp_path):
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.errors import OverlapError, UserError

    rt = indexed
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    _, grid = logic.volumeToArrayAndGrid(vol)
    a = np.zeros((2,) + grid.shape_kji, np.uint8)
    a[0, 1:3, 1:3, 1:3] = 1
    a[1, 1:4, 1:4, 1:4] = 1  # shares 8 voxels with layer 0
    seg = logic.labelMapToSegmentationNode(
        LabelMap(a, grid, [Segment(1, "A", (1, 1, 1)), Segment(1, "B", (2, 2, 2), layer=1)]), "overlapping",
        referenceVolumeNode=vol)
    assert seg.GetSegmentation().GetNumberOfLayers() == 2
    with pytest.raises(OverlapError, match="'A' and 'B' share 8 voxels"):
        logic.exportSegmentationToDicomSeg(seg, vol, outputDirectory=str(tmp_path))
    plain = rt.slicer.util.addVolumeFromArray(np.zeros(grid.shape_kji, np.int16), bridge.ijk_to_ras_from_grid(grid), "plain")
    seg2 = logic.labelMapToSegmentationNode(case.labelmaps["coded"], "s", referenceVolumeNode=plain)
    with pytest.raises(UserError, match="not loaded from the DICOM database"):
        logic.exportSegmentationToDicomSeg(seg2, plain, outputDirectory=str(tmp_path))


def test_binary_seg_with_overlap_loads_as_layers(slicer_env, case, tmp_path):
    """A highdicom BINARY SEG with overlapping segments; our plugin takes it only when no
    dcmqi plugin is enabled (Slicer 5.10 without QuantitativeReporting)."""
    import highdicom as hd
    import pydicom

    rt = slicer_env
    sources = [pydicom.dcmread(p) for p in case.reference.paths]
    cat = hd.sr.CodedConcept("123037004", "SCT", "Anatomical Structure")
    typ = hd.sr.CodedConcept("10200004", "SCT", "Liver")
    desc = [hd.seg.SegmentDescription(n, name, cat, typ, hd.seg.SegmentAlgorithmTypeValues.MANUAL)
            for n, name in ((1, "liver"), (2, "margin"))]
    a = np.zeros(case.grid.shape_kji + (2,), np.uint8)
    a[1:4, 2:6, 3:8, 0] = 1
    a[2:5, 3:7, 4:9, 1] = 1
    binary = hd.seg.Segmentation(
        source_images=sources, pixel_array=a, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=desc, series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="t", manufacturer_model_name="t", software_versions="0",
        device_serial_number="0", series_description="binary overlap")
    binary.save_as(tmp_path / "binary.dcm")
    rt.index(case.all_files() + [tmp_path / "binary.dcm"])
    offered = _loadables(rt, [tmp_path / "binary.dcm"])["DICOMLabelMapSegPluginClass"]
    if rt.version != "v5.10.0":
        assert offered == []  # left to Slicer's DICOMSegmentationPlugin
        return
    assert offered[0].confidence == plugin_rules.CONFIDENCE_BINARY_FALLBACK
    rt.DICOMUtils.loadSeriesByUID([case.series.series_instance_uid])
    rt.DICOMUtils.loadSeriesByUID([realdata.series_uid(tmp_path / "binary.dcm")])
    (seg,) = _segNodes(rt)
    assert seg.GetSegmentation().GetNumberOfLayers() == 2
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    masks = [rt.slicer.util.arrayFromSegmentBinaryLabelmap(seg, sid, None) for sid in logic.segmentIds(seg)]
    assert [int(m.sum()) for m in masks] == [int(a[..., 0].sum()), int(a[..., 1].sum())]


def test_dcmqi_written_labelmap_segs_from_corpus(slicer_env):
    """LABELMAP SEGs written by dcmqi (Background item, one with PixelPaddingValue 5)."""
    from conftest import corpus_path

    rt = slicer_env
    files = [corpus_path("dcmqi", n) for n in ("sparse-labelmap-noppv.dcm", "sparse-labelmap-ppv5.dcm")]
    rt.index(files)
    masks = []
    for f in files:
        rt.DICOMUtils.loadSeriesByUID([realdata.series_uid(f)])
        seg = _segNodes(rt)[-1]
        segmentation = seg.GetSegmentation()
        assert [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())] == ["Liver"]
        # referenced series not loaded: the segment keeps the SEG's own geometry
        masks.append(rt.slicer.util.arrayFromSegmentInternalBinaryLabelmap(seg, segmentation.GetNthSegmentID(0)).copy())
    assert masks[0].sum() > 0 and np.array_equal(masks[0], masks[1])  # padding value 5 is background


def test_synthetic_dicom_from_plain_volume(slicer_env, case, tmp_path):
    rt = slicer_env
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    plain = rt.slicer.util.addVolumeFromArray(case.image, bridge.ijk_to_ras_from_grid(case.grid), "plain volume")
    loaded = logic.createSyntheticDicom(plain, outputDirectory=str(tmp_path / "syn"))
    assert loaded.GetAttribute("DICOM.instanceUIDs")
    array, grid = logic.volumeToArrayAndGrid(loaded)
    assert np.array_equal(array, bridge.conform_array(case.image, case.grid, grid))
