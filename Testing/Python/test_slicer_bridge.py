"""Tests of ``AdaptiveBrushDicomLib.slicer`` (bridge, segment_records, import_plan,
labelmap_export, plugin_rules, dependencies): the pure logic behind the Slicer glue.

No Slicer here. The two Slicer files themselves are tested on the real Slicer core
(slicer-core wheel) in ``test_slicer_real.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.slicer import bridge as sb
from AdaptiveBrushDicomLib.slicer import import_plan as ip
from AdaptiveBrushDicomLib.slicer import labelmap_export as le
from AdaptiveBrushDicomLib.slicer import segment_records as sr
from AdaptiveBrushDicomLib.slicer import dependencies as deps
from AdaptiveBrushDicomLib.slicer import plugin_rules as rules
from AdaptiveBrushDicomLib.errors import OverlapError, UserError
from AdaptiveBrushDicomLib.core.geometry import GeometryError, Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology

from conftest import rotation


# ----------------------------------------------------------------------------- plugin


def header(sop=SegSopClass.LABELMAP, **kw):
    values = dict(sopClassUID=sop, modality="SEG", seriesDescription="watershed trial 7", seriesNumber="1007",
                  instanceUID="1.2.3.4")
    values.update(kw)
    return rules.SeriesHeader.from_values(values)


@pytest.mark.parametrize("other", [False, True])
def test_labelmap_seg_always_claimed_at_099(other):
    d = rules.decide_import(header(), other_seg_plugin=other)
    assert d.claim and d.confidence == 0.99
    assert d.confidence > 0.95  # Slicer core / QR DICOMSegmentationPlugin
    assert d.name == "watershed trial 7"  # the SeriesNumber is not part of the node name
    assert "LABELMAP" in d.tooltip
    assert d.warning == ""  # a warning makes the browser ask "Load anyway?"


def test_binary_seg_only_without_other_plugin():
    absent = rules.decide_import(header(SegSopClass.SEGMENTATION), other_seg_plugin=False)
    assert absent.claim and absent.confidence == rules.CONFIDENCE_BINARY_FALLBACK
    assert 0.5 < absent.confidence < 0.95
    present = rules.decide_import(header(SegSopClass.SEGMENTATION), other_seg_plugin=True)
    assert not present.claim and present.confidence == 0


@pytest.mark.parametrize(
    "values",
    [
        dict(sop="1.2.840.10008.5.1.4.1.1.4"),  # MR image
        dict(sop="1.2.840.10008.5.1.4.1.1.481.3", modality="RTSTRUCT"),
        dict(sop=SegSopClass.LABELMAP, instanceUID=""),  # broken file
        dict(sop=""),
    ],
)
def test_not_claimed(values):
    sop = values.pop("sop")
    assert not rules.decide_import(header(sop, **values), other_seg_plugin=False).claim


def test_modality_seg_alone_is_not_enough():
    # The dcmqi plugin claims by Modality; we claim by SOP Class only.
    assert not rules.decide_import(header("1.2.840.10008.5.1.4.1.1.7", modality="SEG"), other_seg_plugin=False).claim


def test_loadable_name_variants():
    assert rules.loadable_name("", "") == "Segmentation"
    assert rules.loadable_name("3", "") == "Segmentation"
    assert rules.loadable_name(" ", "gold") == "gold"
    # CSE pastes names into layout XML and joins them with ";" / ","
    assert rules.loadable_name("1", 'a<b>&"c";d,e~f^g') == "a_b_c_d_e_f_g"
    assert rules.loadable_name("1", "1001: trial_001") == "1001_ trial_001"


def test_other_plugin_enabled():
    assert rules.other_seg_plugin_enabled(["DICOMScalarVolumePlugin", "DICOMSegmentationPlugin"])
    assert not rules.other_seg_plugin_enabled(["DICOMSegmentationPlugin"], disabled=["DICOMSegmentationPlugin"])
    assert not rules.other_seg_plugin_enabled(["DICOMScalarVolumePlugin"])


def test_plugin_tags_cover_base_tags():
    # DICOMPlugin.__init__ tags (Slicer Modules/Scripted/DICOMLib/DICOMPlugin.py) + ours
    for key, tag in {"seriesDescription": "0008,103E", "seriesNumber": "0020,0011", "modality": "0008,0060",
                     "instanceUID": "0008,0018", "sopClassUID": "0008,0016", "seriesInstanceUID": "0020,000E"}.items():
        assert rules.DICOM_TAGS[key] == tag


@pytest.fixture(scope="module")
def big_deflated_seg(tmp_path_factory):
    """A Deflated LABELMAP SEG whose pixel data (1.3 MB inflated) is larger than its header."""
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    tmp = tmp_path_factory.mktemp("refs")
    grid = Grid((20, 256, 256), (0.9, 0.9, 2.0), (-100.0, -100.0, 10.0))
    rng = np.random.default_rng(3)
    create_synthetic_series(rng.integers(0, 500, grid.shape_kji, dtype=np.int16), grid, tmp / "ref",
                            patient_id="refs_test")
    ref = ReferenceSeries.from_folder(tmp / "ref")
    labels = rng.integers(0, 3, grid.shape_kji, dtype=np.uint8)  # noise: hardly compressible
    write_seg(LabelMap(labels, grid, [Segment(1, "a"), Segment(2, "b")]), ref, tmp / "seg.dcm")
    return tmp / "seg.dcm", ref


def _pydicom_references(path):
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    item = ds.ReferencedSeriesSequence[0]
    return (item.SeriesInstanceUID, tuple(r.ReferencedSOPInstanceUID for r in item.ReferencedInstanceSequence),
            ds.StudyInstanceUID)


def test_seg_references_walker_and_pydicom_agree(big_deflated_seg, tmp_path):
    """The walker's header-only read gives what pydicom reads from the whole file; an
    Implicit VR copy (which the walker does not read) goes through pydicom."""
    import pydicom

    path, ref = big_deflated_seg
    got = rules.read_seg_references(str(path))
    assert (got.series_instance_uid, got.instance_uids, got.study_instance_uid) == _pydicom_references(path)
    assert got.series_instance_uid == ref.series_instance_uid and len(got.instance_uids) == 20
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    implicit = tmp_path / "implicit.dcm"
    ds.save_as(implicit, enforce_file_format=True)
    from AdaptiveBrushDicomLib.dicom.walker import NotSupported

    with pytest.raises(NotSupported):
        rules._walked_references(str(implicit))
    assert rules.read_seg_references(str(implicit)) == got


def test_seg_references_do_not_inflate_the_pixel_data(big_deflated_seg):
    """Walking a Deflated SEG's header up to its references inflates a small part of the
    dataset (before: the whole 1.3 MB of frames); the full header walk still reaches the pixels."""
    from AdaptiveBrushDicomLib.dicom import walker

    path, _ = big_deflated_seg
    pixel_bytes = 20 * 256 * 256
    early = walker.read_header(path, stop_before=0x0020000E)
    assert 0x00081115 in early.dataset and 0x52009230 not in early.dataset
    # inflated: the header plus at most 64 KiB ahead (a walker that inflates each 64 KiB read
    # of the file completely had 287 KB of this file's 1.3 MB in memory here)
    assert len(early._source.data) < 150_000
    with open(path, "rb") as fh:
        full = walker.read_header(path, fh)
        assert 0x52009230 in full.dataset and len(full._source.data) < full.pixel_offset + 150_000
        full._source.inflate_rest(full.pixel_offset + 12 + pixel_bytes + walker.TRAILING_SLACK)
    assert len(full._source.data) >= full.pixel_offset + pixel_bytes


# ----------------------------------------------------------------------------- geometry


def sitk_ijk_to_ras(image) -> np.ndarray:
    """IJKToRAS computed from SimpleITK's own index->physical mapping (independent of Grid)."""
    o = np.array(image.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, 0.0)))
    m = np.eye(4)
    for axis in range(3):
        idx = [0.0, 0.0, 0.0]
        idx[axis] = 1.0
        m[:3, axis] = np.array(image.TransformContinuousIndexToPhysicalPoint(idx)) - o
    m[:3, 3] = o
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ m


@pytest.mark.parametrize(
    "direction",
    [
        np.eye(3),
        np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], dtype=float),  # sagittal
        np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=float),  # coronal
        rotation(0.3, -0.2, 0.7),  # oblique
        np.diag([1.0, -1.0, -1.0]),  # flipped
    ],
)
def test_grid_matches_sitk(direction):
    sitk = pytest.importorskip("SimpleITK")
    img = sitk.Image(7, 5, 4, sitk.sitkUInt8)  # size (i, j, k)
    img.SetSpacing((0.7, 0.9, 2.5))
    img.SetOrigin((-12.5, 30.25, 4.0))
    img.SetDirection(tuple(direction.reshape(-1)))
    arr = sitk.GetArrayFromImage(img)
    assert arr.shape == (4, 5, 7)  # (k, j, i), like slicer.util.arrayFromVolume
    m = sitk_ijk_to_ras(img)
    g = sb.grid_from_ijk_to_ras(m, arr.shape)
    assert g == Grid.from_sitk(img)
    assert np.allclose(sb.ijk_to_ras_from_grid(g), m)
    # a voxel (k, j, i) lands at the same RAS point both ways
    k, j, i = 3, 2, 6
    lps = np.array(img.TransformIndexToPhysicalPoint((i, j, k)))
    ras = m @ np.array([i, j, k, 1.0])
    assert np.allclose(ras[:3], lps * [-1, -1, 1])


def test_grid_from_ijk_to_ras_rejects_bad_input():
    with pytest.raises(GeometryError):
        sb.grid_from_ijk_to_ras(np.eye(3), (2, 2, 2))
    with pytest.raises(GeometryError):
        sb.grid_from_ijk_to_ras(np.eye(4), (2, 2))


def reversed_k(grid: Grid) -> Grid:
    """The same voxels with the slice order reversed (as Slicer does for right-handed IJK)."""
    d = grid.direction.copy()
    d[:, 2] *= -1
    last = grid.index_to_lps(np.array([0, 0, grid.shape_kji[0] - 1]))
    return Grid(grid.shape_kji, grid.spacing_ijk, tuple(last), d)


def test_conform_identity_flip_offset_and_permutation():
    rng = np.random.default_rng(1)
    g = Grid((6, 5, 4), (0.8, 1.1, 3.0), (10.0, -5.0, 2.0), rotation(0.1, 0.2, 0.3))
    a = rng.integers(0, 4, size=g.shape_kji).astype(np.int16)
    assert np.array_equal(sb.conform_array(a, g, g), a)
    # reversed slice order
    r = reversed_k(g)
    ar = sb.conform_array(a, g, r)
    assert np.array_equal(ar, a[::-1])
    assert np.array_equal(sb.conform_array(ar, r, g), a)
    # the same points: check voxel centres
    assert np.allclose(g.index_to_lps(np.array([1, 2, 0])), r.index_to_lps(np.array([1, 2, 5])))
    # smaller extent inside a larger grid (seg.nrrd cropped to its content)
    big = Grid((10, 9, 8), g.spacing_ijk, tuple(g.index_to_lps(np.array([-2, -1, -3]))), g.direction)
    ab = sb.conform_array(a, g, big)
    assert ab.shape == big.shape_kji and np.array_equal(ab[3:9, 1:6, 2:6], a) and ab.sum() == a.sum()
    # axis permutation: swap i and j
    d = g.direction[:, [1, 0, 2]]
    p = Grid((6, 4, 5), (g.spacing_ijk[1], g.spacing_ijk[0], g.spacing_ijk[2]), g.origin, d)
    ap = sb.conform_array(a, g, p)
    assert np.array_equal(ap, np.transpose(a, (0, 2, 1)))


def test_conform_4d_layers():
    g = Grid((3, 4, 5), (1, 1, 1), (0, 0, 0))
    a = np.arange(2 * 60).reshape(2, 3, 4, 5) % 3
    out = sb.conform_array(a, g, reversed_k(g))
    assert np.array_equal(out, a[:, ::-1])


def test_conform_refuses_loss_and_resampling():
    g = Grid((4, 4, 4), (1, 1, 1), (0, 0, 0))
    a = np.zeros(g.shape_kji, np.uint8)
    a[0, 0, 0] = 1
    shifted = Grid((4, 4, 4), (1, 1, 1), (1, 0, 0))  # voxel i=0 of a falls outside
    with pytest.raises(UserError):  # labelled voxel would be cut off
        sb.conform_array(a, g, shifted)
    a2 = np.zeros(g.shape_kji, np.uint8)
    a2[1, 1, 1] = 1
    assert sb.conform_array(a2, g, shifted)[1, 1, 0] == 1
    with pytest.raises(UserError):  # half a voxel off the lattice
        sb.conform_array(a2, g, Grid((4, 4, 4), (1, 1, 1), (0.5, 0, 0)))
    with pytest.raises(UserError):  # other spacing: would need resampling
        sb.conform_array(a2, g, Grid((4, 4, 4), (2, 1, 1), (0, 0, 0)))


# ----------------------------------------------------------------------------- segments


def test_colour_conversions_round_trip():
    for rgb in [(0, 0, 0), (255, 128, 1), (17, 34, 251)]:
        f = sr.color_to_slicer(rgb)
        assert all(0.0 <= c <= 1.0 for c in f)
        assert sr.color_from_slicer(f) == rgb
    assert sr.color_to_slicer(None) is None
    assert sr.color_from_slicer((1.2, -0.1, 0.5)) == (255, 0, 128)


def test_record_round_trip_without_terminology():
    s = Segment(label=300, name="tumour core", color=(200, 10, 30), description="hand corrected",
                algorithm_type=AlgorithmType.AUTOMATIC, algorithm_name="watershed", algorithm_version="2.1",
                algorithm_parameters={"sigma": 1.5, "levels": [1, 2]}, segment_id="Segment_9",
                extra={"tags": {"Segmentation.Status": "completed"}})
    r = sr.segment_to_record(s)
    assert r.segment_id == "Segment_9" and r.name == "tumour core"
    assert r.remove_tags == [sr.TAG_TERMINOLOGY]  # drop Slicer's default "Tissue" entry
    assert r.tags[sr.TAG_ALGORITHM_TYPE] == "AUTOMATIC"
    assert r.tags[sr.TAG_LABEL_VALUE] == "300"
    assert r.tags["Segmentation.Status"] == "completed"
    back = sr.segment_from_record(r, 300)
    assert back == s


def test_record_bad_algorithm_type():
    r = sr.SlicerSegmentRecord("s", "x", (0.5, 0.5, 0.5), {sr.TAG_ALGORITHM_TYPE: "GUESSED"})
    with pytest.raises(UserError, match="MANUAL, SEMIAUTOMATIC or AUTOMATIC"):
        sr.segment_from_record(r, 1)


def test_record_terminology_round_trip():
    t = Terminology(
        category=Code("123037004", "SCT", "Anatomical Structure"),
        type=Code("10200004", "SCT", "Liver"),
        anatomic_region=Code("818981001", "SCT", "Abdomen"),
    )
    s = Segment(label=1, name="liver", color=(221, 130, 101), terminology=t)
    r = sr.segment_to_record(s)
    entry = r.tags[sr.TAG_TERMINOLOGY]
    assert entry.count("~") == 6 and "SCT^10200004^Liver" in entry
    assert sr.segment_from_record(r, 1).terminology == t


# ----------------------------------------------------------------------------- import plan


def make_labelmap() -> LabelMap:
    g = Grid((3, 4, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    a = np.zeros(g.shape_kji, np.int32)
    a[0, :2, :2] = 300
    a[1, 1:3, 1:4] = 7
    a[2, 3, 4] = 1000  # undescribed label
    segs = [
        Segment(label=7, name="seven", color=(1, 2, 3)),
        Segment(label=42, name="empty one"),  # no voxels
        Segment(label=300, name="three hundred"),
    ]
    return LabelMap(a, g, segs)


def test_import_plan_contiguous_keeps_empty_segments():
    lm = make_labelmap()
    plan = ip.plan_labelmap_import(lm)
    assert len(plan.layers) == 1
    layer = plan.layers[0]
    assert layer.segment_ids == ["Segment_7", "Segment_42", "Segment_300", "Segment_1000"]
    assert layer.array.dtype == np.uint8  # never int64 (refused by updateVolumeFromArray)
    # pixel value n+1 -> ids[n]
    for n, sid in enumerate(layer.segment_ids):
        rec = layer.records[n]
        assert rec.segment_id == sid
        original = int(rec.tags[sr.TAG_LABEL_VALUE])
        assert np.array_equal(layer.array == n + 1, lm.array == original)
    assert layer.records[1].name == "empty one" and not np.any(layer.array == 2)
    assert layer.records[3].name == "Label 1000"
    assert np.allclose(plan.ijk_to_ras, lm.grid.ijk_to_ras)


def test_import_plan_keep_values_has_gaps():
    g = Grid((2, 2, 2), (1, 1, 1), (0, 0, 0))
    a = np.zeros(g.shape_kji, np.int16)
    a[0, 0, 0] = 3
    a[1, 1, 1] = 300
    lm = LabelMap(a, g, [Segment(3, "a"), Segment(300, "b"), Segment(5, "empty")])
    layer = ip.plan_labelmap_import(lm, keep_values=True).layers[0]
    assert len(layer.segment_ids) == 300
    assert layer.segment_ids[2] == "Segment_3" and layer.segment_ids[299] == "Segment_300"
    assert layer.segment_ids[4] == "Segment_5"
    assert layer.segment_ids.count("") == 297
    assert layer.array.dtype == np.uint16 and layer.array[1, 1, 1] == 300


def test_import_plan_layers_and_duplicate_ids():
    g = Grid((2, 2, 2), (1, 1, 1), (0, 0, 0))
    a = np.zeros((2,) + g.shape_kji, np.uint8)
    a[0, 0] = 1
    a[1, :, 0] = 1  # overlaps layer 0
    segs = [Segment(1, "A", segment_id="X"), Segment(1, "B", layer=1, segment_id="X")]
    plan = ip.plan_labelmap_import(LabelMap(a, g, segs))
    assert [l.segment_ids for l in plan.layers] == [["X"], ["X_2"]]
    assert [r.name for r in plan.records] == ["A", "B"]


def test_import_plan_many_segments_dtype():
    g = Grid((1, 20, 20), (1, 1, 1), (0, 0, 0))
    a = np.arange(1, 401).reshape(g.shape_kji)
    lm = LabelMap(a, g, [Segment(v, f"s{v}") for v in range(1, 401)])
    layer = ip.plan_labelmap_import(lm).layers[0]
    assert layer.array.dtype == np.uint16 and layer.array.max() == 400 and len(layer.segment_ids) == 400


def _renumber_by_passes(array, labels):
    """The plan's former renumbering (one comparison pass per segment): the reference."""
    out = np.zeros(array.shape, dtype=ip.smallest_label_dtype(len(labels)))
    for n, label in enumerate(labels, start=1):
        out[array == label] = n
    return out


@pytest.mark.parametrize("case", ["identity", "identity_int16", "gaps", "duplicates", "label_zero", "negative",
                                  "huge", "subset", "empty"])
def test_renumber_and_values_present_match_brute_force(case):
    """The fast paths (no pass / lookup table / per-label fallback) give exactly what one
    comparison pass per segment and ``np.unique`` give."""
    rng = np.random.default_rng(7)
    shape = (4, 9, 11)
    labels, array = {
        "identity": ([1, 2, 3], rng.integers(0, 4, shape).astype(np.uint8)),
        "identity_int16": ([1, 2, 3, 4], rng.integers(0, 5, shape).astype(np.int16)),
        "gaps": ([7, 300, 42], rng.choice([0, 7, 300, 1000], shape).astype(np.uint16)),
        "duplicates": ([5, 9, 5], rng.choice([0, 5, 9], shape).astype(np.uint8)),
        "label_zero": ([0, 2], rng.choice([0, 2, 3], shape).astype(np.uint8)),
        "negative": ([-3, 4], rng.choice([-3, 0, 4, 6], shape).astype(np.int16)),
        "huge": ([5_000_000, 1], rng.choice([0, 1, 5_000_000], shape).astype(np.int32)),
        "subset": ([1, 2, 3, 4, 5], rng.choice([0, 2, 4], shape).astype(np.uint8)),
        "empty": ([1, 2], np.zeros((0, 3, 3), np.uint8)),
    }[case]
    got = ip.renumber(array, labels)
    want = _renumber_by_passes(array, labels)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert ip.renumber(array, labels, ip.value_range(array)).tolist() == want.tolist()
    present = {int(v) for v in np.unique(array)} - {0}
    assert ip.values_present(array, set(labels)) == sorted(present - set(labels))


def test_import_plan_does_not_copy_labels_already_1_to_n():
    """Labels 1..N in segment order in the dtype Slicer gets: the plan hands over the
    labelmap's own array (``addVolumeFromArray`` deep-copies it)."""
    g = Grid((3, 4, 5), (1, 1, 1), (0, 0, 0))
    a = np.random.default_rng(1).integers(0, 4, g.shape_kji).astype(np.uint8)
    lm = LabelMap(a, g, [Segment(1, "a"), Segment(2, "b"), Segment(3, "c"), Segment(4, "empty")])
    layer = ip.plan_labelmap_import(lm, id_prefix="segabc").layers[0]
    assert layer.array is lm.array or np.shares_memory(layer.array, lm.array)
    assert layer.segment_ids == ["segabc_1", "segabc_2", "segabc_3", "segabc_4"]


# ----------------------------------------------------------------------------- export


def test_overlap_checker_names_segments_and_counts():
    c = le.OverlapChecker()
    a = np.zeros((2, 3, 3), bool)
    a[0] = True
    b = np.zeros_like(a)
    b[0, 0] = True
    b[1] = True
    empty = np.zeros_like(a)
    c.add("liver", a)
    c.add("empty", empty)
    c.add("tumour", b)
    assert c.overlaps == [le.Overlap("liver", "tumour", 3)]
    assert c.voxel_counts == {"liver": 9, "empty": 0, "tumour": 12}
    with pytest.raises(OverlapError, match="'liver' and 'tumour' share 3 voxels"):
        c.raise_if_overlap()
    ok = le.OverlapChecker()
    ok.add("a", a)
    ok.add("e", empty)
    ok.raise_if_overlap()


def test_labelmap_from_export_restores_label_values():
    lm = make_labelmap()
    plan = ip.plan_labelmap_import(lm)
    layer = plan.layers[0]
    # ExportSegmentsToLabelmapNode with the same ID order writes n+1 == the plan's array
    out = le.labelmap_from_export(layer.array.astype(np.int16), plan.ijk_to_ras, layer.records)
    assert out.grid == lm.grid
    assert np.array_equal(out.array, lm.array)
    assert [s.label for s in out.segments] == [7, 42, 300, 1000]
    assert [s.name for s in out.segments] == ["seven", "empty one", "three hundred", "Label 1000"]
    assert out.segments[0].color == (1, 2, 3)


def test_labelmap_from_export_without_label_tags_numbers_segments():
    g = Grid((1, 2, 2), (1, 1, 1), (0, 0, 0))
    exported = np.array([[[0, 1], [2, 2]]], np.int16)
    recs = [sr.SlicerSegmentRecord("a", "A", (1, 0, 0)), sr.SlicerSegmentRecord("b", "B", (0, 1, 0),
                                                                              {sr.TAG_LABEL_VALUE: "5"})]
    out = le.labelmap_from_export(exported, g.ijk_to_ras, recs)
    assert [s.label for s in out.segments] == [1, 2]  # one tag missing -> n+1 for all
    assert np.array_equal(out.array, exported)
    with pytest.raises(UserError):
        le.labelmap_from_export(exported + 5, g.ijk_to_ras, recs)


# ----------------------------------------------------------------------------- dependencies


def test_dependency_plan_nothing_missing():
    plan = deps.dependency_plan({"pydicom": "3.0.2", "highdicom": "0.27.0"}, ["load", "export"])
    assert not plan.needed and plan.message == ""


def test_dependency_plan_slicer_510():
    # Slicer 5.10 bundles pydicom 2.4.4 and no highdicom
    plan = deps.dependency_plan({"pydicom": "2.4.4", "highdicom": None}, ["load"])
    assert plan.requirements == ["pydicom>=3.0.1", "highdicom>=0.27"]
    assert plan.missing == ["highdicom"] and plan.outdated == ["pydicom 2.4.4 (< 3.0.1)"]
    assert plan.restart_recommended and "restart" in plan.message


def test_dependency_plan_never_downgrades_pydicom():
    plan = deps.dependency_plan({"pydicom": "3.1.0", "highdicom": "0.27.0", "SimpleITK": "2.4.0", "slicerio": None,
                                 "filelock": "3.12.2"}, ["migrate"])
    assert plan.requirements == ["slicerio>=1.1", "pydicom>=3.0.1"]
    assert not plan.restart_recommended
    for r in plan.requirements:
        assert "==" not in r and "<" not in r


def test_dependency_plan_unknown_feature():
    with pytest.raises(ValueError):
        deps.dependency_plan({}, ["fly"])


def test_ensure_checks_usable_features_once_per_session():
    """A feature found usable is not checked again (package metadata is read once per Slicer
    session, not on every SEG load); a missing package is checked again every time."""
    calls = []
    state = {"pydicom": "3.0.2", "highdicom": None}

    def versions():
        calls.append(dict(state))
        return dict(state)

    usable: set[str] = set()
    kw = dict(install=lambda plan: False, notify=lambda text: None, testing=True, versions=versions, usable=usable)
    assert deps.ensure(["load"], **kw) is False and deps.ensure(["load"], **kw) is False
    assert len(calls) == 2 and usable == set()  # missing: asked again, nothing remembered
    state["highdicom"] = "0.27.0"
    assert deps.ensure(["load"], **kw) is True and usable == {"load"}
    assert deps.ensure(["load"], **kw) is True and len(calls) == 3  # remembered: no metadata read
    assert deps.ensure(["migrate"], **kw) is False and len(calls) == 4  # another feature is checked
    assert deps.ensure(["load"], install=kw["install"], notify=kw["notify"], versions=versions) is True
    assert len(calls) == 5  # without ``usable`` every call checks


def test_versions():
    assert deps.parse_version("3.0.2rc1") == (3, 0, 2)
    assert deps.parse_version("2.0.0.post1") == (2, 0, 0) and deps.parse_version("not a version") == ()
    assert deps.version_at_least("3.0.1", "3.0.1") and deps.version_at_least("3.1", "3.0.1")
    assert not deps.version_at_least("2.4.4", "3.0.1")
    assert deps.version_at_least("0.27", "0.27.0")
    v = deps.installed_versions(["numpy", "surely-not-installed-xyz"])
    assert v["numpy"] and v["surely-not-installed-xyz"] is None


def test_uid_helpers():
    assert sb.split_uids(" 1.2  1.3 ") == ["1.2", "1.3"] and sb.split_uids(None) == []
    assert sb.order_series_files({"a": "/x/a", "b": "/x/b"}, ["b", "a"]) == ["/x/b", "/x/a"]
    with pytest.raises(UserError, match="not in the DICOM database"):
        sb.order_series_files({"a": ""}, ["a"])


@pytest.mark.parametrize("reverse", [False, True])
def test_series_slices_round_trip(reverse):
    """Slicer's slice stack of an irregular series <-> the series' own slices, by index."""
    from AdaptiveBrushDicomLib.core.segment import Segment

    d = np.eye(3)
    series = Grid((4, 5, 6), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0), d, slice_positions_mm=(0.0, 2.5, 7.5, 10.0))
    if reverse:  # Slicer reversed the slice order (left-handed stack): origin at the last image
        stack = Grid((4, 5, 6), (1.0, 1.0, 10.0 / 3), (0.0, 0.0, 10.0), np.diag([1.0, 1.0, -1.0]))
    else:
        stack = Grid((4, 5, 6), (1.0, 1.0, 10.0 / 3), (0.0, 0.0, 0.0), d)
    a = np.zeros((4, 5, 6), np.uint8)
    a[0, 1, 1] = 1
    a[2, 2, 3] = 2
    on_series = sb.to_series_slices(LabelMap(a, stack, [Segment(1, "x"), Segment(2, "y")]), series)
    assert on_series.grid is series
    assert np.array_equal(on_series.array, a[::-1] if reverse else a)
    back = sb.from_series_slices(on_series, stack)
    assert np.array_equal(back.array, a) and back.grid is stack
    other = Grid((4, 5, 6), (1.0, 1.0, 2.5), (0.0, 0.0, 1.0), d)  # not the stack of this series
    with pytest.raises(UserError, match="not the volume Slicer loaded"):
        sb.to_series_slices(LabelMap(a, other, []), series)
