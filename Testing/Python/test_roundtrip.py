""".seg.nrrd -> SEG -> labelmap on the reference grid: voxel-exact, every attribute kept.

Covers axial / sagittal / coronal / oblique grids, flipped axes, empty slices (omitted
frames), label values > 255, empty segments, cropped segmentations, every transfer
syntax, BINARY fallback for overlaps, and refusals.
"""

import numpy as np
import pydicom
import pytest

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.core.align import align_to_grid
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.errors import OutputExistsError, OverlapError, ReferenceMismatchError, UserError
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from abdicom_testkit.phantom import make_phantom
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.core.segment import Segment, Terminology
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

from conftest import rotation

DIRECTIONS = {
    "axial": np.eye(3),
    "sagittal": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),
    "coronal": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
    "oblique": rotation(0.3, -0.2, 0.5),
}


def _attrs(segments):
    # a segment without terminology is written with the documented default, Tissue / Tissue
    return sorted(((s.label, s.name, s.color, s.terminology or Terminology(), s.layer) for s in segments), key=str)


def _make(tmp_path, direction, shape=(10, 34, 36)):
    grid = Grid(shape, (0.9, 0.8, 2.0), (-10.5, 20.25, 33.0), direction)
    image, labels, segments = make_phantom(grid)
    create_synthetic_series(image, grid, tmp_path / "ref", patient_id="AdaptiveBrush_rt")
    return grid, labels, segments, ReferenceSeries.from_folder(tmp_path / "ref")


def _roundtrip(tmp_path, lm: LabelMap, ref: ReferenceSeries, compression=Compression.DEFLATE, name="seg"):
    nrrd = tmp_path / f"{name}.seg.nrrd"
    write_seg_nrrd(lm, nrrd)
    src = read_segmentation(nrrd)
    assert np.array_equal(src.array, lm.array)
    out = tmp_path / f"{name}.dcm"
    res = write_seg(src, ref, out, compression=compression)
    decoded = read_seg(out, reference=ref)
    return res, decoded, src


@pytest.mark.parametrize("orientation", list(DIRECTIONS))
def test_orientations_voxel_exact(tmp_path, orientation):
    grid, labels, segments, ref = _make(tmp_path, DIRECTIONS[orientation])
    assert ref.grid.almost_equal(grid)
    res, dec, _ = _roundtrip(tmp_path, LabelMap(labels, grid, segments), ref)
    assert res.sop_class_uid == SegSopClass.LABELMAP
    assert dec.labelmap.grid.almost_equal(grid)
    assert np.array_equal(dec.labelmap.array, labels)
    assert _attrs(dec.labelmap.segments) == _attrs(segments)


@pytest.mark.parametrize("compression", list(Compression))
def test_every_transfer_syntax_voxel_exact(tmp_path, compression):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    res, dec, _ = _roundtrip(tmp_path, LabelMap(labels, grid, segments), ref, compression)
    ds = pydicom.dcmread(res.path)
    assert ds.file_meta.TransferSyntaxUID == compression.uid
    assert np.array_equal(dec.labelmap.array, labels)
    assert dec.transfer_syntax_uid == compression.uid


def test_empty_slices_are_omitted_and_restored(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    labels = labels.copy()
    labels[:3] = 0
    labels[6] = 0
    res, dec, _ = _roundtrip(tmp_path, LabelMap(labels, grid, segments), ref)
    assert res.n_frames == grid.shape_kji[0] - 4
    assert np.array_equal(dec.labelmap.array, labels)


def test_labels_above_255_and_empty_segments(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    labels = labels.astype(np.uint16)
    labels[labels == 4] = 1000
    for s in segments:
        if s.label == 4:
            s.label = 1000
    segments.append(Segment(label=77, name="Empty one", color=(1, 2, 3)))
    lm = LabelMap(labels, grid, segments)
    assert 300 in np.unique(labels) and 1000 in np.unique(labels)
    res, dec, _ = _roundtrip(tmp_path, lm, ref)
    assert np.array_equal(dec.labelmap.array, labels)
    assert _attrs(dec.labelmap.segments) == _attrs(segments)
    ds = pydicom.dcmread(res.path)
    numbers = [int(i.SegmentNumber) for i in ds.SegmentSequence]
    assert numbers[-len(segments):] == list(range(1, len(segments) + 1))  # contiguous from 1
    assert "Empty one" in [s.name for s in dec.labelmap.segments]


def test_more_than_255_segments(tmp_path):
    grid = Grid((4, 20, 20), (1, 1, 1), (0, 0, 0))
    labels = np.arange(4 * 20 * 20).reshape(grid.shape_kji) % 300 + 1
    segments = [Segment(label=v, name=f"s{v}") for v in range(1, 301)]
    create_synthetic_series(labels.astype(np.int16), grid, tmp_path / "ref", patient_id="p")
    ref = ReferenceSeries.from_folder(tmp_path / "ref")
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "many.dcm")
    ds = pydicom.dcmread(res.path)
    assert ds.BitsAllocated == 16
    assert np.array_equal(read_seg(res.path, reference=ref).labelmap.array, labels)


def test_cropped_segmentation_is_padded(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, DIRECTIONS["oblique"])
    nz = np.argwhere(labels)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    crop = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    cgrid = Grid(crop.shape, grid.spacing_ijk, tuple(grid.index_to_lps(lo[::-1])), grid.direction)
    res, dec, _ = _roundtrip(tmp_path, LabelMap(crop, cgrid, segments), ref)
    assert np.array_equal(dec.labelmap.array, labels)


def test_flipped_axes_same_voxels_in_space(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    # the segmentation is stored with i and k reversed (e.g. an RAS-oriented nrrd)
    flipped = labels[::-1, :, ::-1].copy()
    fdir = np.diag([-1.0, 1.0, -1.0])
    fgrid = Grid(grid.shape_kji, grid.spacing_ijk, tuple(grid.index_to_lps([grid.shape_kji[2] - 1, 0, grid.shape_kji[0] - 1])), fdir)
    res, dec, _ = _roundtrip(tmp_path, LabelMap(flipped, fgrid, segments), ref)
    assert np.array_equal(dec.labelmap.array, labels)
    # and back onto the flipped grid: identical to the input
    assert np.array_equal(align_to_grid(dec.labelmap.array, ref.grid, fgrid), flipped)


def test_overlap_refused_then_binary(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    layer2 = np.zeros_like(labels)
    layer2[labels == 1] = 1  # "Whole head" overlaps every structure inside the brain
    layered = np.stack([labels, layer2])
    segs = segments + [Segment(label=1, name="Whole brain", color=(9, 9, 9), layer=1)]
    lm = LabelMap(layered, grid, segs)
    with pytest.raises(OverlapError, match="'Brain' and 'Whole brain' share"):
        write_seg(lm, ref, tmp_path / "o.dcm")
    assert not (tmp_path / "o.dcm").exists()
    res = write_seg(lm, ref, tmp_path / "o.dcm", allow_binary=True)
    assert res.binary_fallback and res.sop_class_uid == SegSopClass.SEGMENTATION
    dec = read_seg(res.path, reference=ref)
    assert dec.labelmap.n_layers == 2
    for s in segs:
        got = [d for d in dec.labelmap.segments if d.name == s.name][0]
        assert np.array_equal(dec.labelmap.mask(got), lm.mask(s)), s.name


def test_refusals(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    lm = LabelMap(labels, grid, segments)
    write_seg(lm, ref, tmp_path / "a.dcm")
    with pytest.raises(OutputExistsError):
        write_seg(lm, ref, tmp_path / "a.dcm")
    off = Grid(grid.shape_kji, grid.spacing_ijk, tuple(np.add(grid.origin, (0.4, 0, 0))), grid.direction)
    with pytest.raises(ReferenceMismatchError, match="resample nearest"):
        write_seg(LabelMap(labels, off, segments), ref, tmp_path / "b.dcm")
    with pytest.raises(UserError, match="no segment description"):
        write_seg(LabelMap(labels, grid, segments[:2]), ref, tmp_path / "c.dcm")
    # a SEG decoded against another series is refused
    other = tmp_path / "other"
    create_synthetic_series(np.ones(grid.shape_kji, np.int16), grid, other, patient_id="q")
    with pytest.raises(ReferenceMismatchError, match="references series"):
        read_seg(tmp_path / "a.dcm", reference=ReferenceSeries.from_folder(other))


def test_decode_without_reference_derives_grid(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, DIRECTIONS["sagittal"])
    labels = labels.copy()
    labels[0] = 0
    labels[-1] = 0
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "a.dcm")
    dec = read_seg(res.path)
    assert any("cannot be known" in n for n in dec.notes)
    # the derived grid covers first..last stored frame, on the same lattice
    off = grid.lattice_offset_kji(dec.labelmap.grid)
    assert off is not None and off[0] == 1
    assert np.array_equal(align_to_grid(dec.labelmap.array, dec.labelmap.grid, grid), labels)


def test_gold_standards_from_corpus(tmp_path, corpus):
    for name in ("MRBrainTumor1_tumor", "idc_mri_t2_lesion"):
        gold = read_segmentation(corpus / "adaptivebrush-gold" / name / "gold.seg.nrrd")
        assert gold.array.any()
        image = np.zeros(gold.grid.shape_kji, dtype=np.int16)
        ref_dir = tmp_path / name
        create_synthetic_series(image, gold.grid, ref_dir, patient_id=f"AdaptiveBrush_{name}")
        ref = ReferenceSeries.from_folder(ref_dir)
        res = write_seg(gold, ref, tmp_path / f"{name}.dcm")
        dec = read_seg(res.path, reference=ref)
        assert np.array_equal(dec.labelmap.array, align_to_grid(gold.array, gold.grid, ref.grid))
        assert [s.name for s in dec.labelmap.segments] == [s.name for s in gold.segments]
        assert [s.color for s in dec.labelmap.segments] == [s.color for s in gold.segments]
        assert [s.terminology for s in dec.labelmap.segments] == [s.terminology for s in gold.segments]  # no terminology stays none (unset flag)


def test_left_handed_source_grid(tmp_path):
    """An image whose k axis is reversed (det < 0): the series is read back right-handed,
    and the segmentation made on the original grid still lands on the same voxels."""
    lh = Grid((8, 34, 36), (0.9, 0.8, 2.0), (0.0, 0.0, 40.0), np.diag([1.0, 1.0, -1.0]))
    image, labels, segments = make_phantom(lh)
    create_synthetic_series(image, lh, tmp_path / "ref", patient_id="p")
    ref = ReferenceSeries.from_folder(tmp_path / "ref")
    assert np.linalg.det(ref.grid.direction) > 0
    assert np.allclose(ref.grid.origin, lh.index_to_lps([0, 0, lh.shape_kji[0] - 1]))
    res, dec, _ = _roundtrip(tmp_path, LabelMap(labels, lh, segments), ref)
    assert np.array_equal(align_to_grid(dec.labelmap.array, ref.grid, lh), labels)


def test_slicer_only_fields_survive(tmp_path):
    """Context names, segment status and other tags: .seg.nrrd -> SEG -> .seg.nrrd."""
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    segments[0].extra = {"status": "completed", "tags": {"Reviewer": "AB"}, "nameAutoGenerated": False}
    segments[0].terminology = Terminology(
        segments[0].terminology.category, segments[0].terminology.type,
        context_name="Segmentation category and type - 3D Slicer General Anatomy list")
    res, dec, src = _roundtrip(tmp_path, LabelMap(labels, grid, segments), ref)
    out = tmp_path / "back.seg.nrrd"
    write_seg_nrrd(dec.labelmap, out)
    back = read_segmentation(out)
    s0 = [s for s in back.segments if s.label == segments[0].label][0]
    assert s0.terminology.context_name == "Segmentation category and type - 3D Slicer General Anatomy list"
    assert s0.extra["status"] == "completed"
    assert s0.extra["tags"]["Reviewer"] == "AB"
    assert s0.segment_id == segments[0].segment_id
    import slicerio

    raw = slicerio.read_segmentation(str(out))
    entry = [s for s in raw["segments"] if s["labelValue"] == segments[0].label][0]
    assert entry["terminology"]["contextName"].endswith("General Anatomy list")
    assert entry["status"] == "completed"


def test_uids_depend_on_voxels_and_segment_metadata(tmp_path):
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    a = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "a.dcm")
    b = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "b.dcm")
    assert (a.series_instance_uid, a.sop_instance_uid) == (b.series_instance_uid, b.sop_instance_uid)
    renamed = [Segment(**{**s.__dict__, "name": s.name + " (edited)"}) for s in segments]
    c = write_seg(LabelMap(labels, grid, renamed), ref, tmp_path / "c.dcm")
    assert c.sop_instance_uid != a.sop_instance_uid


def test_layers_without_overlap_are_one_labelmap(tmp_path):
    """Two layers that share a label value but no voxel: one LABELMAP SEG (not BINARY),
    the second segment relabelled to a free value, every segment's voxels kept."""
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    layers = np.zeros((2,) + grid.shape_kji, np.uint8)
    layers[0, 1:4, 5:15, 5:15] = 1
    layers[0, 1:4, 20:25, 5:15] = 2
    layers[1, 6:9, 5:15, 5:15] = 1  # same value as layer 0's "A", other voxels
    segs = [Segment(1, "A", layer=0), Segment(2, "B", layer=0), Segment(1, "C", layer=1)]
    lm = LabelMap(layers, grid, segs)
    res = write_seg(lm, ref, tmp_path / "flat.dcm")
    assert res.sop_class_uid == SegSopClass.LABELMAP and not res.binary_fallback and res.n_segments == 3
    dec = read_seg(res.path, reference=ref).labelmap
    assert dec.n_layers == 1
    by_name = {s.name: s for s in dec.segments}
    assert (by_name["A"].label, by_name["B"].label, by_name["C"].label) == (1, 2, 3)
    for s in segs:
        assert np.array_equal(dec.mask(by_name[s.name]), lm.mask(s)), s.name


def test_label_checks_name_the_input(tmp_path):
    """Duplicate labels, labels < 1 and a labelmap without segments are refused with the
    input's name, before anything is written."""
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    one = (labels == 1).astype(np.uint8)
    cases = [
        ([Segment(1, "A"), Segment(1, "B")], "several segments use label value\\(s\\) \\[1\\]"),
        ([Segment(1, "A"), Segment(0, "zero")], "segment label values must be >= 1, got \\[0\\]"),
        ([], "label value\\(s\\) \\[1\\] have no segment description"),
    ]
    for segs, message in cases:
        with pytest.raises(UserError, match=f"trial_7.seg.nrrd: ({message})"):
            write_seg(LabelMap(one, grid, segs), ref, tmp_path / "x.dcm", source_name="trial_7.seg.nrrd")
        assert not (tmp_path / "x.dcm").exists()
    with pytest.raises(UserError, match="trial_7.seg.nrrd: no segments to write"):
        write_seg(LabelMap(np.zeros_like(one), grid, []), ref, tmp_path / "x.dcm", source_name="trial_7.seg.nrrd")


@pytest.mark.parametrize("compression", [Compression.DEFLATE, Compression.RLE])  # fast writer, highdicom
def test_long_terminology_context_name_is_refused(tmp_path, compression):
    """A terminology context name over LO's 64 characters (our private (0071,xx01)) is one
    line naming the segment, on both writers, and nothing is written; 64 characters are
    written and read back."""
    grid, labels, segments, ref = _make(tmp_path, np.eye(3))
    one = (labels == 1).astype(np.uint8)
    for n, ok in ((65, False), (64, True)):
        name = "C" * n
        seg = Segment(1, "Brain", terminology=Terminology(context_name=name))
        out = tmp_path / f"ctx{n}_{compression.name}.dcm"
        if ok:
            write_seg(LabelMap(one, grid, [seg]), ref, out, compression=compression)
            (got,) = read_seg(out, reference=ref).labelmap.segments
            assert got.terminology is not None and got.terminology.context_name == name
            continue
        with pytest.raises(UserError, match=f"segment 'Brain': terminology context name '{name}' is longer than 64"):
            write_seg(LabelMap(one, grid, [seg]), ref, out, compression=compression)
        assert not out.exists() and not list(tmp_path.glob(f".{out.name}*"))
