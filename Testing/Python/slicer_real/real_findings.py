"""Issue 13's findings 1-8, each reproduced on the real Slicer core (these tests failed
before the fixes)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

import realdata
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.slicer import plugin_rules


def _tag(segment, name):
    import vtk

    value = vtk.mutable("")
    return str(value) if segment.GetTag(name, value) else None


def _segments(node):
    s = node.GetSegmentation()
    return [s.GetNthSegment(i) for i in range(s.GetNumberOfSegments())]


def _logic(rt):
    return rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()


def _load(rt, case, *descriptions):
    logic = _logic(rt)
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    nodes, problems = logic.loadSegSeries([realdata.series_uid(case.segs[d]) for d in descriptions])
    assert not problems
    return vol, nodes


# ------------------------------------------------------------------ 1. terminology
def test_1_segments_without_terminology_load_without_terminology_entry(indexed, case):
    _, nodes = _load(indexed, case, "gold_standard", "trial_001_watershed")
    for node in nodes:
        assert [(s.GetName(), _tag(s, "TerminologyEntry")) for s in _segments(node)] == [
            (name, None) for name in realdata.STRUCTURES]


def test_1_slicer_default_tissue_is_not_written_as_chosen(indexed, case, tmp_path):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    rt = indexed
    logic = _logic(rt)
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    seg = rt.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "drawn in Slicer")
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(vol)
    shape = rt.slicer.util.arrayFromVolume(vol).shape
    for name, box in (("left", np.s_[1:3, 2:5, 2:6]), ("right", np.s_[4:6, 8:12, 10:15])):
        sid = seg.GetSegmentation().AddEmptySegment(name, name)
        assert "Tissue" in _tag(seg.GetSegmentation().GetSegment(sid), "TerminologyEntry")  # Slicer's default
        mask = np.zeros(shape, np.uint8)
        mask[box] = 1
        rt.slicer.util.updateSegmentBinaryLabelmapFromArray(mask, seg, sid, vol)
    result = logic.exportSegmentationToDicomSeg(seg, vol, outputDirectory=str(tmp_path))
    decoded = read_seg(result.path, reference=case.reference)
    assert [(s.name, s.terminology) for s in decoded.labelmap.segments] == [("left", None), ("right", None)]
    rt.clear_scene()
    rt.index([result.path])
    logic.loadVolumeSeries(case.series.series_instance_uid)
    (loaded,), _ = logic.loadSegSeries([result.series_instance_uid])
    assert [_tag(s, "TerminologyEntry") for s in _segments(loaded)] == [None, None]


def test_1_warns_when_two_segments_share_type_and_modifier(slicer_env, case, tmp_path, caplog):
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    rt = slicer_env
    a = np.zeros(case.grid.shape_kji, np.int16)
    a[1:3, 2:5, 2:6] = 1
    a[4:6, 8:12, 10:15] = 2
    lm = LabelMap(a, case.grid, [Segment(1, "left lobe", (1, 2, 3), realdata.LIVER),
                                 Segment(2, "right lobe", (4, 5, 6), realdata.LIVER)])
    out = write_seg(lm, case.reference, tmp_path / "lobes.dcm", series_description="lobes")
    rt.index(case.all_files() + [out.path])
    with caplog.at_level(logging.WARNING):
        rt.DICOMUtils.loadSeriesByUID([out.series_instance_uid])
    assert "'left lobe', 'right lobe' share the terminology type 'Liver'" in caplog.text


# ------------------------------------------------------------------ 2. names and IDs
def test_2_node_names_are_sanitized_unique_descriptions(slicer_env, case, tmp_path):
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    rt = slicer_env
    paths = []
    sources = ["trial_001_watershed", "trial_002_watershed", "trial_003_levelset"]  # distinct content -> UIDs
    for n, desc in enumerate(["same trial", "same trial", 'odd <name> & "quotes"; a,b']):
        paths.append(write_seg(case.labelmaps[sources[n]], case.reference, tmp_path / f"s{n}.dcm",
                               series_description=desc, series_number=7).path)
    rt.index(case.all_files() + paths)
    _logic(rt).loadVolumeSeries(case.series.series_instance_uid)
    nodes, problems = _logic(rt).loadSegSeries([realdata.series_uid(p) for p in paths])
    assert not problems
    assert [n.GetName() for n in nodes] == ["same trial", "same trial_2", "odd _name_ _ _quotes_ a_b"]


def test_2_reexport_uses_the_loaded_series_description(indexed, case, tmp_path):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    rt = indexed
    vol, (node,) = _load(rt, case, "trial_001_watershed")
    assert node.GetName() == "trial_001_watershed"  # not "1001: trial_001_watershed"
    node.SetName("renamed by the user")
    shn = rt.slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(rt.scene)
    plugin = rt.slicer.modules.dicomPlugins[plugin_rules.PLUGIN_KEY]()
    (exportable,) = plugin.examineForExport(shn.GetItemByDataNode(node))
    assert exportable.tag("SeriesDescription") == "trial_001_watershed"
    result = _logic(rt).exportSegmentationToDicomSeg(node, vol, seriesNumber=300, outputDirectory=str(tmp_path))
    assert read_seg(result.path).series_description == "trial_001_watershed"


def test_2_segment_ids_unique_across_trial_nodes(indexed, case):
    _, nodes = _load(indexed, case, "gold_standard", "trial_001_watershed", "trial_002_watershed", "trial_003_levelset")
    ids = [n.GetSegmentation().GetNthSegmentID(i) for n in nodes for i in range(n.GetSegmentation().GetNumberOfSegments())]
    assert len(ids) == 12 and len(set(ids)) == 12


# ------------------------------------------------------------------ 4. plugin constructor
def test_4_broken_core_does_not_break_other_plugins(indexed, case, monkeypatch):
    import AdaptiveBrushDicomLib.slicer as package

    rt = indexed
    for name in ("bridge", "naming", "plugin_rules"):
        monkeypatch.delattr(package, name)
        monkeypatch.setitem(sys.modules, f"AdaptiveBrushDicomLib.slicer.{name}", None)  # import fails
    byPlugin, _ = rt.DICOMUtils.getLoadablesFromFileLists(
        [[str(p) for p in case.series.paths], [str(case.segs["gold_standard"])]])
    offered = {type(p).__name__: ls for p, ls in byPlugin.items()}
    assert offered["DICOMLabelMapSegPluginClass"] == []
    assert offered["DICOMScalarVolumePluginClass"]  # the image series still loads


# ------------------------------------------------------------------ 5. Slicer 5.10 pydicom upgrade
def test_5_upgrade_of_imported_pydicom_asks_for_restart(slicer_env, monkeypatch, caplog):
    import pydicom

    from AdaptiveBrushDicomLib.slicer import dependencies as deps

    rt = slicer_env
    module = rt.AdaptiveBrushDicom
    versions = {"pydicom": "2.4.4", "highdicom": None, "SimpleITK": "2.4.0", "slicerio": "1.1"}
    installs = []

    def install(requirements, **kw):
        installs.append(list(requirements))
        versions.update(pydicom="3.0.2", highdicom="0.27.0")

    monkeypatch.setattr(deps, "installed_versions", lambda names=None: dict(versions))
    monkeypatch.setattr(deps, "session_usable", set())  # a fresh session: nothing found usable yet
    monkeypatch.setattr(pydicom, "__version__", "2.4.4")  # what Slicer 5.10's DICOM module imported
    rt.slicer.app.testing = False  # the install path is skipped in testing mode
    if rt.version == "v5.10.0":  # no slicer.packaging: confirm dialog + slicer.util.pip_install
        monkeypatch.setattr(rt.slicer.util, "confirmOkCancelDisplay", lambda *a, **k: True)
        monkeypatch.setattr(rt.slicer.util, "pip_install", install)
    else:
        monkeypatch.setattr(rt.slicer.packaging, "pip_ensure", lambda reqs, **k: install(reqs))
    with caplog.at_level(logging.INFO):
        assert module.ensureDependencies(["load"]) is False
    assert installs == [["pydicom>=3.0.1", "highdicom>=0.27"]]
    assert "Restart Slicer" in caplog.text and "pydicom 2.4.4 (now 3.0.2 installed)" in caplog.text


# ------------------------------------------------------------------ 6. load failures surface
def test_6_compare_reports_a_seg_that_fails_to_decode(slicer_env, case, tmp_path):
    import pydicom

    rt = slicer_env
    broken = tmp_path / "broken.dcm"
    ds = pydicom.dcmread(case.segs["trial_002_watershed"])
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]  # truncated frames
    ds.save_as(broken)
    rt.index(case.all_files()[:-len(case.segs)] + [case.segs["gold_standard"], broken])
    _, segs, problems = _logic(rt).compareTrials(
        case.series.series_instance_uid, [realdata.series_uid(case.segs["gold_standard"]), realdata.series_uid(broken)],
        openExplorer=False)
    assert [s.GetName() for s in segs] == ["gold_standard"]
    assert len(problems) == 1 and problems[0].startswith("broken.dcm: ")


def test_6_a_seg_cut_short_fails_in_one_line_naming_the_file(slicer_env, case, tmp_path):
    """A trial SEG whose copy was interrupted (cut inside its pixel data) is offered by
    examineForImport and its load fails with one line: the file, where it ends, what to do."""
    import pydicom

    rt = slicer_env
    ds = pydicom.dcmread(case.segs["trial_002_watershed"])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian  # the header whole, the cut in PixelData
    full = tmp_path / "full.dcm"
    ds.save_as(full)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(full.read_bytes()[:-2000])
    rt.index(case.all_files()[:-len(case.segs)] + [cut])
    _, problems = _logic(rt).loadSegSeries([realdata.series_uid(cut)])
    assert len(problems) == 1, problems
    (line,) = problems
    assert "\n" not in line and line.startswith("cut.dcm: ") and "Traceback" not in line
    assert str(cut) not in line and line.count("cut.dcm") == 1, line  # the file named once
    assert "the file is incomplete: PixelData (7FE0,0010) ends after " in line
    assert line.endswith("copy it again from its source")


# ------------------------------------------------------------------ 7. compare hand-off
def test_7_compare_loads_with_our_plugin_only_and_reads_the_reference_once(indexed, case, monkeypatch):
    from AdaptiveBrushDicomLib.dicom import reference

    rt = indexed
    logic = _logic(rt)
    logic.loadVolumeSeries(case.series.series_instance_uid)
    examined = []
    for key, cls in rt.slicer.modules.dicomPlugins.items():
        if key != plugin_rules.PLUGIN_KEY:
            monkeypatch.setattr(cls, "examineForImport", lambda self, fl, k=key: examined.append(k) or [])
    reads = []
    original = reference.ReferenceSeries.from_files.__func__
    monkeypatch.setattr(reference.ReferenceSeries, "from_files",
                        classmethod(lambda cls, files, *a, **k: reads.append(len(files)) or original(cls, files, *a, **k)))
    trials = ["gold_standard", "trial_001_watershed", "trial_002_watershed", "trial_003_levelset"]
    _, segs, problems = logic.compareTrials(case.series.series_instance_uid,
                                            [realdata.series_uid(case.segs[t]) for t in trials], openExplorer=False)
    assert [s.GetName() for s in segs] == trials and problems == []
    assert examined == []  # no other plugin examined the trials (5.12's dcmqi plugin reads every referenced image)
    assert reads == [len(case.series.paths)]  # one read of the reference series for the batch


def test_7_compare_sets_cse_parameters_before_its_widget(indexed, case):
    rt = indexed
    cse = rt.modules["CrossSegmentationExplorer"]
    trials = ["gold_standard", "trial_001_watershed", "trial_003_levelset"]
    vol, segs, _ = _logic(rt).compareTrials(case.series.series_instance_uid,
                                            [realdata.series_uid(case.segs[t]) for t in trials],
                                            openExplorer=False, groupModels=True)
    assert not hasattr(rt.slicer.modules, "CrossSegmentationExplorerWidget")  # no widget was created
    node = cse.CrossSegmentationExplorerLogic().getParameterNode()
    assert node.GetNodeReference("CurrentVolumeNode") is vol
    assert node.GetParameter("SegmentationIDs").split(";") == trials
    import json

    assert json.loads(node.GetParameter("ModelKeywordMapping")) == {
        "Gold standard": ["gold_standard"], "watershed": ["trial_001_watershed"], "levelset": ["trial_003_levelset"]}


# ------------------------------------------------------------------ 8. transforms, irregular spacing
def test_8_irregular_series_exports_onto_its_own_slices(slicer_env, tmp_path):
    """A CT series with a missing slice: Slicer's scalar volume plugin loads it as a regular
    slice stack under a non-linear acquisition transform. A segmentation in that stack (under
    the same transform) exports onto the series' own slices and loads back into the stack;
    one outside it gets a message about the irregular series, not about hardening or CLI flags."""
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    rt = slicer_env
    paths, _ = realdata.write_irregular_series(tmp_path / "ct")
    rt.index(paths)
    logic = _logic(rt)
    vol = logic.loadVolumeSeries(realdata.series_uid(paths[0]))
    transform = vol.GetParentTransformNode()
    assert transform is not None and not transform.IsLinear()  # Slicer's acquisition transform
    a = np.zeros(rt.slicer.util.arrayFromVolume(vol).shape, np.uint8)
    a[1:5, 4:9, 4:9] = 1  # slices 1..4: across the missing slice
    seg = logic.labelMapToSegmentationNode(LabelMap(a, logic.volumeGrid(vol), [Segment(1, "lesion", (1, 2, 3))]),
                                           "lesion", referenceVolumeNode=vol)
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError) as err:
        logic.exportSegmentationToDicomSeg(seg, vol, outputDirectory=str(tmp_path / "out"))
    message = str(err.value)
    assert "irregular slice spacing" in message and "not in that volume's slice stack" in message
    assert "--" not in message and "harden" not in message.lower()
    seg.SetAndObserveTransformNodeID(transform.GetID())  # in the volume's slice stack
    result = logic.exportSegmentationToDicomSeg(seg, vol, outputDirectory=str(tmp_path / "out"))
    series = ReferenceSeries.from_files([str(p) for p in paths])
    assert not series.grid.is_regular
    decoded = read_seg(result.path, reference=series, keep_irregular=True)
    assert np.array_equal(decoded.labelmap.array, a)  # slice k = the series' k-th image
    rt.index([result.path])
    rt.scene.RemoveNode(seg)
    (loaded,), problems = logic.loadSegSeries([result.series_instance_uid])
    assert problems == [] and loaded.GetParentTransformNode() is transform
    assert np.array_equal(logic.segmentationToLabelMap(loaded, vol).array, a)


def test_8_segmentation_under_transform_is_refused_not_shifted(indexed, case):
    rt = indexed
    logic = _logic(rt)
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    seg = rt.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "moved")
    transform = rt.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    import vtk

    m = vtk.vtkMatrix4x4()
    m.SetElement(0, 3, 10.0)
    transform.SetMatrixTransformToParent(m)
    seg.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(UserError, match="'moved' is under transform 'shift'"):
        logic.labelMapToSegmentationNode(case.labelmaps["gold_standard"], "moved", referenceVolumeNode=vol,
                                         segmentationNode=seg)
    assert seg.GetSegmentation().GetNumberOfSegments() == 0
