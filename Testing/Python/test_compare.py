"""analysis.compare / matching / loading on real SEG files (ours and dcmqi's) and .seg.nrrd,
checked against metrics computed independently (brute force in LPS through the grid)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from abdicom_testkit.peers import dcmqi_encode, find_tool
from abdicom_testkit.phantom import make_phantom, phantom_grid
from AdaptiveBrushDicomLib.analysis.compare import TrialInput, compare_files, compare_trial, label_boxes
from AdaptiveBrushDicomLib.analysis.loading import Segmentation, read_for_compare
from AdaptiveBrushDicomLib.analysis.matching import MatchMethod, match_segments
from AdaptiveBrushDicomLib.analysis.report import csv_rows, metrics_table_rows, report_text
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Code, Segment, Terminology
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError
from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd
from conftest import corpus_path, rotation
from test_compare_metrics import brute_force

LIVER = Terminology(type=Code("10200004", "SCT", "Liver"))


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Oblique, anisotropic phantom series; gold SEG and four trial SEGs (our writer)."""
    tmp = tmp_path_factory.mktemp("compare")
    grid = phantom_grid(shape=(10, 30, 34), spacing=(0.8, 1.1, 2.5), direction=rotation(0.2, -0.3, 0.5))
    image, labels, segments = make_phantom(grid)
    create_synthetic_series(image, grid, tmp / "ref", patient_id="AdaptiveBrush_compare")
    ref = ReferenceSeries.from_folder(tmp / "ref")
    write_seg(LabelMap(labels, grid, segments), ref, tmp / "gold.dcm", force=True)

    shifted = labels.copy()
    shifted[labels == 4] = 0
    tumor = np.roll(labels == 4, 2, axis=2)
    shifted[tumor & (shifted == 0)] = 4
    edema = np.argwhere(labels == 300)
    shifted[tuple(edema[: len(edema) // 2].T)] = 0  # half the edema missing
    write_seg(LabelMap(shifted, grid, segments), ref, tmp / "trial_001.dcm", force=True)

    renamed = [replace(s, name="tumor" if s.name == "Tumor" else "Whole brain" if s.name == "Brain" else s.name)
               for s in segments]
    write_seg(LabelMap(labels, grid, renamed), ref, tmp / "trial_002.dcm", force=True)

    other = np.where(labels == 4, 99, 0).astype(np.uint16)
    write_seg(LabelMap(other, grid, [Segment(99, "Liver", terminology=LIVER)]), ref, tmp / "trial_003.dcm", force=True)

    no_tumor = np.where(labels == 4, 0, labels)
    write_seg(LabelMap(no_tumor, grid, segments), ref, tmp / "trial_004.dcm", force=True)
    return tmp, grid, labels, segments, shifted, no_tumor


def _by_name(trial):
    return {s.name: s for s in trial.segments}


def test_metrics_equal_brute_force_in_patient_space(case):
    tmp, grid, labels, segments, shifted, _ = case
    report = compare_files(tmp / "gold.dcm", [tmp / "trial_001.dcm"], reference=tmp / "ref", jobs=1)
    (trial,) = report.trials
    assert trial.trial_number == 1
    assert not trial.unmatched_gold and not trial.unmatched_trial
    voxel_ml = np.prod(grid.spacing_ijk) / 1000
    for seg in segments:
        got = _by_name(trial)[seg.name]
        g, t = labels == seg.label, shifted == seg.label
        assert got.matched_by is MatchMethod.NAME
        assert got.volume_gold_ml == pytest.approx(g.sum() * voxel_ml)
        assert got.volume_trial_ml == pytest.approx(t.sum() * voxel_ml)
        if seg.name == "Brain":  # too many surface points for the all-pairs check; overlap only
            assert got.metrics.dice == pytest.approx(2 * (g & t).sum() / (g.sum() + t.sum()))
            continue
        want = brute_force(g, t, grid)
        assert got.metrics.dice == pytest.approx(want["dice"], abs=1e-9), seg.name
        assert got.metrics.jaccard == pytest.approx(want["jaccard"], abs=1e-9), seg.name
        assert got.metrics.hd95_mm == pytest.approx(want["hd95"], abs=1e-4), seg.name
        assert got.metrics.assd_mm == pytest.approx(want["assd"], abs=1e-4), seg.name
    tumor = _by_name(trial)["Tumor"]
    assert tumor.metrics.dice < 1 and tumor.metrics.hd_mm == pytest.approx(2 * 0.8, abs=1e-4)
    edema = 100.0 * ((shifted == 300).sum() / (labels == 300).sum() - 1)
    assert edema < -30 and _by_name(trial)["Edema"].volume_diff_pct == pytest.approx(edema)


def test_matching_by_normalized_name_terminology_and_unmatched(case):
    tmp = case[0]
    report = compare_files(tmp / "gold.dcm", [tmp / "trial_002.dcm", tmp / "trial_003.dcm"], reference=tmp / "ref")
    renamed, other = report.trials
    got = _by_name(renamed)
    assert got["Tumor"].trial_name == "tumor" and got["Tumor"].matched_by is MatchMethod.NAME
    assert got["Brain"].trial_name == "Whole brain" and got["Brain"].matched_by is MatchMethod.TERMINOLOGY
    assert all(s.metrics.dice == 1.0 and s.metrics.hd95_mm == 0.0 for s in renamed.segments)
    # a trial without any matching segment is listed, the other trial is still compared
    assert other.segments == [] and other.mean_dice is None
    assert other.unmatched_trial == ["Liver"] and len(other.unmatched_gold) == 5
    assert report.best is renamed
    rows = metrics_table_rows(report)
    assert rows[-1][2].startswith("no matching segment")
    assert "unmatched trial segments: Liver" in report_text(report)


def test_empty_trial_segment_has_documented_values(case):
    tmp = case[0]
    report = compare_files(tmp / "gold.dcm", [tmp / "trial_004.dcm"], reference=tmp / "ref")
    tumor = _by_name(report.trials[0])["Tumor"]
    assert (tumor.metrics.dice, tumor.metrics.jaccard, tumor.metrics.hd95_mm, tumor.metrics.assd_mm) == (0, 0, None, None)
    assert tumor.metrics.empty.value == "trial_empty"
    assert tumor.volume_trial_ml == 0 and tumor.volume_diff_pct == -100.0
    row = [r for r in csv_rows(report) if r["segment"] == "Tumor"][0]
    assert row["hd95_mm"] is None and row["empty"] == "trial_empty"


def test_parallel_workers_give_the_same_numbers(case):
    tmp = case[0]
    trials = [tmp / f"trial_00{n}.dcm" for n in (1, 2, 4)]
    serial = compare_files(tmp / "gold.dcm", trials, reference=tmp / "ref", jobs=1).to_dict()
    parallel = compare_files(tmp / "gold.dcm", trials, reference=tmp / "ref", jobs=2).to_dict()
    assert json.dumps(serial, sort_keys=True) == json.dumps(parallel, sort_keys=True)


def test_trial_on_flipped_permuted_lattice_equals_original(case, tmp_path):
    _, grid, labels, segments, shifted, _ = case
    gold = Segmentation(tmp_path / "g", LabelMap(labels, grid, segments))
    trial = Segmentation(tmp_path / "t", LabelMap(shifted, grid, segments))
    # same voxels stored with the i axis reversed and i/j swapped: same lattice, other array order
    arr = np.flip(shifted, axis=2).transpose(0, 2, 1)
    d = grid.direction
    flipped_grid = Grid((arr.shape), (grid.spacing_ijk[1], grid.spacing_ijk[0], grid.spacing_ijk[2]),
                        tuple(grid.index_to_lps(np.array([grid.shape_kji[2] - 1, 0, 0]))),
                        np.column_stack([d[:, 1], -d[:, 0], d[:, 2]]))
    other = Segmentation(tmp_path / "f", LabelMap(np.ascontiguousarray(arr), flipped_grid, segments))
    a, b = compare_trial(gold, trial), compare_trial(gold, other)
    assert [s.to_dict() for s in a.segments] == [s.to_dict() for s in b.segments]


def test_off_lattice_trial_refused_unless_resampled(case, tmp_path):
    _, grid, labels, segments, _, _ = case
    gold = Segmentation(tmp_path / "g", LabelMap(labels, grid, segments))
    half = Grid(grid.shape_kji, grid.spacing_ijk, tuple(np.asarray(grid.origin) + 0.4 * grid.direction[:, 0]), grid.direction)
    trial = Segmentation(tmp_path / "t.seg.nrrd", LabelMap(labels, half, segments))
    with pytest.raises(ReferenceMismatchError, match="t.seg.nrrd.*--resample nearest"):
        compare_trial(gold, trial)
    res = compare_trial(gold, trial, resample="nearest")
    assert res.resampled and len(res.segments) == 5
    assert all(s.metrics.dice > 0.5 for s in res.segments)
    assert any("resampled" in n for n in res.notes)


def test_trial_extending_beyond_gold_extent_compares_on_union_grid(tmp_path):
    grid = phantom_grid(shape=(10, 20, 20))
    gold_arr = np.zeros(grid.shape_kji, np.uint8)
    gold_arr[3:6, 5:10, 5:10] = 1
    seg = [Segment(1, "Blob")]
    # gold stored cropped to k 3..5 (as a SEG without empty frames decodes without a reference)
    crop = Grid((3, 20, 20), grid.spacing_ijk, tuple(grid.index_to_lps(np.array([0, 0, 3]))), grid.direction)
    gold = Segmentation(tmp_path / "g", LabelMap(gold_arr[3:6].copy(), crop, seg))
    trial_arr = gold_arr.copy()
    trial_arr[6:8, 5:10, 5:10] = 1  # two slices more than the gold
    res = compare_trial(gold, Segmentation(tmp_path / "t", LabelMap(trial_arr, grid, seg)))
    m = res.segments[0].metrics
    assert m.voxels_gold == 75 and m.voxels_trial == 125
    assert m.dice == pytest.approx(2 * 75 / 200)
    assert m.hd_mm == pytest.approx(2 * grid.spacing_ijk[2])


def test_seg_nrrd_trial_against_seg_gold_and_label_boxes(case, tmp_path):
    tmp, grid, labels, segments, shifted, _ = case
    write_seg_nrrd(LabelMap(shifted, grid, segments), tmp_path / "trial_7.seg.nrrd")
    t = read_for_compare(tmp_path / "trial_7.seg.nrrd")
    assert t.trial_number == 7 and t.series_instance_uid is None
    a = compare_files(tmp / "gold.dcm", [TrialInput(tmp_path / "trial_7.seg.nrrd")], reference=tmp / "ref")
    b = compare_files(tmp / "gold.dcm", [tmp / "trial_001.dcm"], reference=tmp / "ref")
    assert [s.to_dict() for s in a.trials[0].segments] == [s.to_dict() for s in b.trials[0].segments]
    boxes = label_boxes(labels)
    for seg in segments:
        kk, jj, ii = np.nonzero(labels == seg.label)
        box, count = boxes[(0, seg.label)]
        assert count == kk.size
        assert (box[0].start, box[0].stop, box[2].start, box[2].stop) == (kk.min(), kk.max() + 1, ii.min(), ii.max() + 1)


@pytest.mark.skipif(find_tool("itkimage2segimage") is None, reason="dcmqi not installed")
def test_dcmqi_binary_seg_as_gold_matches_its_label_image(tmp_path):
    ct = corpus_path("dcmqi", "ct-3slice")
    spec = json.loads(corpus_path("dcmqi", "seg-example_liver_spine.json").read_text())
    spec["segmentAttributes"] = [[item for group in spec["segmentAttributes"] for item in group]]
    (tmp_path / "meta.json").write_text(json.dumps(spec))
    label_image = corpus_path("dcmqi", "liver_spine_seg.nrrd")
    run = dcmqi_encode([label_image], tmp_path / "meta.json", ct, tmp_path / "bin.dcm", labelmap=False)
    assert run.ok, run.output[-2000:]
    report = compare_files(tmp_path / "bin.dcm", [label_image], reference=ct)
    trial = report.trials[0]
    # the label image has no names or codes: matched by label value, and identical
    assert len(trial.segments) == 2 and {s.matched_by for s in trial.segments} == {MatchMethod.LABEL}
    assert all(s.metrics.dice == 1.0 and s.metrics.hd95_mm == 0.0 for s in trial.segments)


def test_match_segments_rules():
    tissue = Segment(1, "A")
    g = [Segment(1, "Left ventricle", terminology=LIVER), Segment(2, "Right ventricle", terminology=LIVER),
         Segment(3, "Tumor"), Segment(4, "Edema", terminology=Terminology(type=Code("79654002", "SCT", "Edema")))]
    t = [Segment(5, "left_ventricle"), Segment(6, "Other", terminology=LIVER), Segment(3, "Label_3"),
         Segment(4, "Label_4", terminology=Terminology(type=Code("78961009", "SCT", "Spleen"))), tissue]
    res = match_segments(g, t)
    pairs = {(m.gold.name, m.trial.name, m.method) for m in res.matches}
    assert ("Left ventricle", "left_ventricle", MatchMethod.NAME) in pairs
    assert ("Right ventricle", "Other", MatchMethod.TERMINOLOGY) in pairs
    assert ("Tumor", "Label_3", MatchMethod.LABEL) in pairs
    # label 4 on both sides, but Edema vs Spleen codes: evidence against, not matched
    assert [s.name for s in res.unmatched_gold] == ["Edema"]
    assert {s.name for s in res.unmatched_trial} == {"Label_4", "A"}
    assert any("terminologies differ" in n for n in res.notes)
    # two gold segments with one name are ambiguous: neither is matched by that name
    amb = match_segments([Segment(1, "X"), Segment(2, "X")], [Segment(7, "X")])
    assert amb.matches == [] and any("shared by 2 gold" in n for n in amb.notes)


def test_info_lists_voxels_and_volume_per_segment(case, capsys):
    from AdaptiveBrushDicomLib.cli.main import main

    tmp, grid, labels, segments, _, _ = case
    assert main(["info", str(tmp / "gold.dcm"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    by_name = {s["label"]: s for s in info["segments"]}
    for seg in segments:  # includes label 300 (stored under another SegmentNumber)
        count = int((labels == seg.label).sum())
        assert by_name[seg.name]["voxels"] == count
        assert by_name[seg.name]["volume_ml"] == pytest.approx(count * np.prod(grid.spacing_ijk) / 1000)
    assert main(["info", str(tmp / "gold.dcm")]) == 0
    text = capsys.readouterr().out
    assert f"{int((labels == 4).sum()):,} voxels" in text and " mL" in text
    assert main(["info", str(tmp / "gold.dcm"), "--json", "--no-voxels"]) == 0
    assert all(s["voxels"] is None for s in json.loads(capsys.readouterr().out)["segments"])


@pytest.mark.skipif(find_tool("itkimage2segimage") is None, reason="dcmqi not installed")
def test_info_voxels_of_a_dcmqi_binary_seg(tmp_path):
    from AdaptiveBrushDicomLib.analysis.volumes import segment_volumes
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    ct = corpus_path("dcmqi", "ct-3slice")
    spec = json.loads(corpus_path("dcmqi", "seg-example_liver_spine.json").read_text())
    spec["segmentAttributes"] = [[item for group in spec["segmentAttributes"] for item in group]]
    (tmp_path / "meta.json").write_text(json.dumps(spec))
    label_image = corpus_path("dcmqi", "liver_spine_seg.nrrd")
    assert dcmqi_encode([label_image], tmp_path / "meta.json", ct, tmp_path / "bin.dcm", labelmap=False).ok
    truth = read_segmentation(label_image)
    got = {v.number: v for v in segment_volumes(tmp_path / "bin.dcm")}
    for item in spec["segmentAttributes"][0]:
        count = int((truth.array == item["labelID"]).sum())
        assert got[item["labelID"]].voxels == count and got[item["labelID"]].name == item["SegmentLabel"]
        assert got[item["labelID"]].volume_ml == pytest.approx(count * np.prod(truth.grid.spacing_ijk) / 1000)


def test_metrics_table_for_the_slicer_module(case):
    from AdaptiveBrushDicomLib.analysis.report import TABLE_COLUMNS, metrics_table

    tmp, grid, labels, segments, shifted, _ = case
    columns, rows = metrics_table(tmp / "gold.dcm", [tmp / "trial_004.dcm", tmp / "trial_001.dcm"],
                                  reference=tmp / "ref")
    assert columns == TABLE_COLUMNS and all(len(r) == len(columns) for r in rows)
    # trial 1 (only the tumor moved, half the edema gone) ranks before trial 4 (no tumor)
    assert rows[0][:2] == ["1", "trial 1"] and rows[len(segments)][:2] == ["2", "trial 4"]
    tumor = [r for r in rows if r[1] == "trial 1" and r[2] == "Tumor"][0]
    g, t = labels == 4, shifted == 4
    assert tumor[3] == f"{2 * (g & t).sum() / (g.sum() + t.sum()):.3f}"
    empty = [r for r in rows if r[1] == "trial 4" and r[2] == "Tumor"][0]
    assert empty[3] == "0.000" and empty[5] == "-" and empty[9] == "-100.0"
