"""*Compare trials* checked with CrossSegmentationExplorer's REAL code (the module file in
``../shared/third_party/crosssegmentationexplorer``): its volume -> segmentation map, its
structure rows, its layout XML and its segment stepping. CSE's widget needs Qt (.ui files),
so its map builder runs unbound on a plain holder object."""

from __future__ import annotations

import json
import types
import xml.etree.ElementTree as ET

import realdata

TRIALS = ["gold_standard", "trial_001_watershed", "trial_002_watershed", "trial_003_levelset"]


def _cse(rt):
    return rt.modules["CrossSegmentationExplorer"]


def _volumeMap(rt):
    holder = types.SimpleNamespace(_segmentationVolumeMap={})
    _cse(rt).CrossSegmentationExplorerWidget._buildSegmentationVolumeMap(holder)
    return holder._segmentationVolumeMap


def _compare(rt, case, descriptions, **kw):
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    return logic.compareTrials(case.series.series_instance_uid,
                               [realdata.series_uid(case.segs[d]) for d in descriptions], openExplorer=False, **kw)


def test_cse_sees_gold_and_three_trials_by_segment_name(indexed, case):
    rt = indexed
    vol, segs, problems = _compare(rt, case, TRIALS, groupModels=True)
    assert problems == []
    mapped = _volumeMap(rt)[vol.GetID()]
    names = [n.GetName() for n in mapped]
    assert sorted(names) == sorted(TRIALS) and len(set(names)) == 4  # unique: CSE lists them in a set
    logic = _cse(rt).CrossSegmentationExplorerLogic()
    counts, info = logic.prepareSegmentationData({name: [node] for name, node in zip(names, mapped)})
    assert counts == {s: 4 for s in realdata.STRUCTURES}  # rows by segment name, not one "Tissue" row
    assert "Tissue" not in counts
    # names go unescaped into CSE's layout XML (3D + 2D views per segmentation)
    root = ET.fromstring(logic.getLayoutXML(len(names), True, True, True, names))
    labels = [p.text for p in root.iter("property") if p.get("name") == "viewlabel"]
    assert [l for l in labels if l in names] == names
    params = logic.getParameterNode()
    assert params.GetParameter("SegmentationIDs").split(";") == TRIALS
    models = json.loads(params.GetParameter("ModelKeywordMapping"))
    # CSE's model rule: a node belongs to a model when a keyword is a substring of its name
    members = {m: sorted(n for n in names if any(k.lower() in n.lower() for k in kws)) for m, kws in models.items()}
    assert members == {"Gold standard": ["gold_standard"], "watershed": ["trial_001_watershed", "trial_002_watershed"],
                       "levelset": ["trial_003_levelset"]}


def test_cse_steps_through_every_segment_with_a_3d_view(indexed, case):
    """CSE's selectSegment centres the 3D view on the segment (GetSegmentCenterRAS, None
    for an empty segment): the hand-off leaves empty segments out and says so."""
    import standins

    rt = indexed
    rt.slicer.app.layout = standins.LayoutManager(rt.scene, 1)
    vol, segs, problems = _compare(rt, case, ["gold_standard", "coded"])
    assert problems == ["trial_004_coded: segment 'nothing yet' is empty and is left out of the comparison"]
    logic = _cse(rt).CrossSegmentationExplorerLogic()
    params = logic.getParameterNode()
    logic.setDefaultParameters(params)
    for node in _volumeMap(rt)[vol.GetID()]:
        node.CreateDefaultDisplayNodes()
        segmentation = node.GetSegmentation()
        for i in range(segmentation.GetNumberOfSegments()):
            logic.selectSegment(params, segmentation.GetNthSegmentID(i), node)  # raises on an empty segment


def test_cse_finds_our_segs_in_the_database(indexed, case):
    """CSE's own "Load segmentations" path: same study, Modality SEG, ReferencedSeriesSequence
    of the first file; it loads each through Slicer's loadSeriesByUID (ours wins at 0.99)."""
    rt = indexed
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    vol = logic.loadVolumeSeries(case.series.series_instance_uid)
    cse = _cse(rt).CrossSegmentationExplorerLogic()
    cse.loadDicomSeries(case.series.series_instance_uid)
    mapped = _volumeMap(rt)[vol.GetID()]
    assert sorted(n.GetName() for n in mapped) == sorted(TRIALS + ["trial_004_coded"])
    # loading again skips what is loaded (CSE compares DICOM.instanceUIDs with the SOP UID)
    cse.loadDicomSeries(case.series.series_instance_uid)
    assert len(rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode")) == 5


def test_compare_trials_metrics_table(indexed, case):
    """The table *Compare trials* shows beside CSE: the gold standard against each trial,
    computed by the core from the SEG files in the DICOM database."""
    rt = indexed
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    uids = [realdata.series_uid(case.segs[d]) for d in TRIALS]
    columns, rows, why = logic.comparisonTable(case.series.series_instance_uid, uids)
    assert why is None
    from AdaptiveBrushDicomLib.analysis.report import TABLE_COLUMNS

    assert columns == TABLE_COLUMNS
    dice_col = columns.index("dice")
    trials_shown = {row[1] for row in rows}
    assert len(trials_shown) == len(TRIALS) - 1  # every trial once; the gold standard is not a row
    segments_shown = {row[2] for row in rows}
    assert segments_shown == set(realdata.STRUCTURES)
    assert all(0.0 <= float(row[dice_col]) <= 1.0 for row in rows)
    # without a gold standard in the selection: no table, and a sentence saying why
    columns, rows, why = logic.comparisonTable(case.series.series_instance_uid, uids[1:])
    assert (columns, rows) == ((), []) and "gold standard" in why
