"""SEGs that are readable although their geometry is written unusually (issue 14,
"refused although readable"): a new FrameOfReferenceUID (pydicom-seg, its issue #48),
frames in another orientation on the reference lattice, PlanePositionSequence in the
Shared Functional Groups, multi-frame (enhanced) sources and irregular slice spacing.

Every SEG here is written by highdicom (an independent writer) or by our writer and then
edited with pydicom the way the foreign writer does it; decodes are compared voxel by
voxel with the labels the SEG was made from.
"""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from AdaptiveBrushDicomLib.core.align import align_to_grid, reorient
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError
from abdicom_testkit.phantom import make_phantom

SAGITTAL = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)


def _series(tmp_path, shape=(10, 34, 36), direction=None, name="ref"):
    grid = Grid(shape, (0.9, 0.8, 2.0), (-10.5, 20.25, 33.0), np.eye(3) if direction is None else direction)
    image, labels, segments = make_phantom(grid)
    create_synthetic_series(image, grid, tmp_path / name, patient_id="AdaptiveBrush_geom")
    return grid, labels, segments, ReferenceSeries.from_folder(tmp_path / name)


def _descriptions(segments):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=s.name,
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for n, s in enumerate(segments, start=1)
    ]


def _numbers(labels, segments):
    """Labels -> SegmentNumbers 1..N (highdicom's LABELMAP pixel values)."""
    lut = np.zeros(max(int(labels.max()), max(s.label for s in segments)) + 1, dtype=np.uint16)
    for n, s in enumerate(segments, start=1):
        lut[s.label] = n
    return lut[labels]


def _highdicom_seg(path, ref, frames, segments, *, seg_type="LABELMAP", grid=None):
    """A highdicom SEG of ``frames`` ((k, j, i) SegmentNumbers on ``grid``, default the
    reference grid) referencing ``ref``'s images; frames on another grid are written with
    explicit plane positions/orientation, as highdicom allows."""
    import highdicom as hd

    kwargs = {}
    if grid is not None:
        iop = list(np.concatenate([grid.direction[:, 0], grid.direction[:, 1]]))
        kwargs = dict(
            plane_orientation=hd.PlaneOrientationSequence(hd.CoordinateSystemNames.PATIENT, iop),
            pixel_measures=hd.PixelMeasuresSequence(
                pixel_spacing=[grid.spacing_ijk[1], grid.spacing_ijk[0]], slice_thickness=grid.spacing_ijk[2],
                spacing_between_slices=grid.spacing_ijk[2]),
            plane_positions=[hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT, list(p))
                             for p in grid.slice_origins()],
        )
    if seg_type == "BINARY":
        pixel = np.stack([frames == n for n in range(1, len(segments) + 1)], axis=-1)
    else:
        pixel = frames.astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=ref.datasets, pixel_array=pixel,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, seg_type),
        segment_descriptions=_descriptions(segments), series_instance_uid=generate_uid(), series_number=5,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="test", manufacturer_model_name="t",
        software_versions="0", device_serial_number="0", omit_empty_frames=True, **kwargs,
    )
    seg.save_as(path)
    return path


def _expected(labels, segments):
    """What a decode of a SEG without our label record gives: SegmentNumbers."""
    return _numbers(labels, segments)


# ------------------------------------------------------------------ Frame of Reference
def _new_frame_of_reference(path):
    """What pydicom-seg 0.4.1 writes: the source's FoR imported, then overwritten with a
    fresh UID (pydicom-seg issue #48)."""
    ds = pydicom.dcmread(path)
    ds.FrameOfReferenceUID = generate_uid()
    ds.save_as(path)
    return str(ds.FrameOfReferenceUID)


@pytest.mark.parametrize("seg_type", ["LABELMAP", "BINARY"])
def test_new_frame_of_reference_same_geometry_decodes_with_note(tmp_path, seg_type):
    grid, labels, segments, ref = _series(tmp_path)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, _numbers(labels, segments), segments, seg_type=seg_type)
    new_for = _new_frame_of_reference(path)
    dec = read_seg(path, reference=ref)
    assert np.array_equal(dec.labelmap.array, _expected(labels, segments))
    notes = [n for n in dec.notes if "FrameOfReferenceUID" in n]
    assert len(notes) == 1 and new_for in notes[0] and ref.frame_of_reference_uid in notes[0]


def test_new_frame_of_reference_within_tolerance_decodes(tmp_path):
    grid, labels, segments, ref = _series(tmp_path)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, _numbers(labels, segments), segments)
    ds = pydicom.dcmread(path)
    ds.FrameOfReferenceUID = generate_uid()
    for fg in ds.PerFrameFunctionalGroupsSequence:  # pydicom-seg prints positions with "%e"
        pos = fg.PlanePositionSequence[0]
        pos.ImagePositionPatient = [f"{float(v) + 0.0004:e}" for v in pos.ImagePositionPatient]
    ds.save_as(path)
    dec = read_seg(path, reference=ref)
    assert np.array_equal(dec.labelmap.array, _expected(labels, segments))
    assert sum("FrameOfReferenceUID" in n for n in dec.notes) == 1


def test_new_frame_of_reference_other_geometry_names_both_uids(tmp_path):
    grid, labels, segments, ref = _series(tmp_path)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, _numbers(labels, segments), segments)
    ds = pydicom.dcmread(path)
    new_for = ds.FrameOfReferenceUID = generate_uid()
    for fg in ds.PerFrameFunctionalGroupsSequence:  # half a voxel off in i
        pos = fg.PlanePositionSequence[0]
        pos.ImagePositionPatient = [float(pos.ImagePositionPatient[0]) + 0.45] + list(pos.ImagePositionPatient[1:])
    ds.save_as(path)
    with pytest.raises(ReferenceMismatchError) as err:
        read_seg(path, reference=ref)
    msg = str(err.value)
    assert new_for in msg and ref.frame_of_reference_uid in msg and "lattice" in msg
    assert "\n" not in msg


# ------------------------------------------------------------------ orientation
def test_sagittal_frames_of_an_axial_series_decode_exactly(tmp_path):
    grid, labels, segments, ref = _series(tmp_path)
    numbers = _numbers(labels, segments)
    sag, sag_grid = reorient(numbers, grid, Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), SAGITTAL))
    assert not np.allclose(sag_grid.direction, grid.direction)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, np.ascontiguousarray(sag), segments, grid=sag_grid)
    ds = pydicom.dcmread(path)
    iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    assert np.allclose([float(v) for v in iop], [0, 1, 0, 0, 0, -1])
    dec = read_seg(path, reference=ref)
    assert dec.labelmap.grid.almost_equal(grid)
    assert np.array_equal(dec.labelmap.array, numbers)


@pytest.mark.parametrize("flip", ["rows", "columns", "both"])
def test_reversed_rows_or_columns_decode_exactly(tmp_path, flip):
    grid, labels, segments, ref = _series(tmp_path)
    numbers = _numbers(labels, segments)
    signs = {"rows": (1, -1, 1), "columns": (-1, 1, 1), "both": (-1, -1, 1)}[flip]
    arr, fgrid = reorient(numbers, grid, Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), np.diag(signs).astype(float)))
    path = _highdicom_seg(tmp_path / "s.dcm", ref, np.ascontiguousarray(arr), segments, grid=fgrid)
    dec = read_seg(path, reference=ref)
    assert np.array_equal(dec.labelmap.array, numbers)
    # and without a reference: the SEG's own (flipped) grid, same voxels in space
    alone = read_seg(path)
    assert np.array_equal(align_to_grid(alone.labelmap.array, alone.labelmap.grid, grid), numbers)


def test_oblique_frames_are_refused_naming_both_orientations(tmp_path):
    grid, labels, segments, ref = _series(tmp_path)
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    fgrid = Grid(grid.shape_kji, grid.spacing_ijk, grid.origin, rot)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, _numbers(labels, segments), segments, grid=fgrid)
    with pytest.raises(ReferenceMismatchError, match="oriented") as err:
        read_seg(path, reference=ref)
    assert "0.955" in str(err.value)  # the SEG's row direction, cos(0.3)


# ------------------------------------------------------------------ shared plane position
def _move_position_to_shared(path):
    ds = pydicom.dcmread(path)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    pos = copy.deepcopy(per_frame[0].PlanePositionSequence)
    for fg in per_frame:
        assert fg.PlanePositionSequence[0].ImagePositionPatient == pos[0].ImagePositionPatient
        del fg.PlanePositionSequence
    ds.SharedFunctionalGroupsSequence[0].PlanePositionSequence = DicomSequence(pos)
    ds.save_as(path)


@pytest.mark.parametrize("seg_type", ["LABELMAP", "BINARY"])
def test_plane_position_in_shared_group_decodes(tmp_path, seg_type):
    grid, labels, segments, ref = _series(tmp_path)
    one = np.zeros_like(labels)
    one[5] = labels[5]  # a single slice: every frame at one position
    path = _highdicom_seg(tmp_path / "s.dcm", ref, _numbers(one, segments), segments, seg_type=seg_type)
    _move_position_to_shared(path)
    expected = _numbers(one, segments)
    alone = read_seg(path)
    assert alone.labelmap.grid.shape_kji == (1,) + grid.shape_kji[1:]
    assert np.array_equal(alone.labelmap.array[0], expected[5])
    assert np.allclose(alone.labelmap.grid.origin, grid.slice_origins()[5])
    dec = read_seg(path, reference=ref)
    assert np.array_equal(dec.labelmap.array, expected)


# ------------------------------------------------------------------ multi-frame source
def _enhanced_ct(tmp_path, shape=(10, 34, 36), modality="CT"):
    """A Legacy Converted Enhanced CT or MR (highdicom) made from a synthetic series: one
    multi-frame file whose frames highdicom stores in descending slice order."""
    import highdicom as hd

    grid = Grid(shape, (0.9, 0.8, 2.0), (-10.5, 20.25, 33.0), np.eye(3))
    image, labels, segments = make_phantom(grid)
    create_synthetic_series(image, grid, tmp_path / "ct", patient_id="AdaptiveBrush_ct", modality=modality)
    # in descending slice order: highdicom 0.28 sorts them so itself, 0.27 keeps the given order
    singles = [pydicom.dcmread(p) for p in sorted((tmp_path / "ct").glob("*.dcm"))][::-1]
    converter = {"CT": hd.legacy.LegacyConvertedEnhancedCTImage, "MR": hd.legacy.LegacyConvertedEnhancedMRImage}
    enh = converter[modality](
        singles, series_instance_uid=generate_uid(), series_number=3, sop_instance_uid=generate_uid(),
        instance_number=1)
    (tmp_path / "enh").mkdir()
    enh.save_as(tmp_path / "enh" / "enhanced.dcm")
    return grid, image, labels, segments, tmp_path / "enh" / "enhanced.dcm"


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_enhanced_reference_file_and_folder(tmp_path, modality):
    grid, image, labels, segments, enh_path = _enhanced_ct(tmp_path, modality=modality)
    for given in (enh_path, enh_path.parent):
        ref = ReferenceSeries.from_folder(given)
        assert ref.is_multiframe and len(ref.datasets) == 1
        assert ref.grid.almost_equal(grid)
        assert ref.frame_numbers != sorted(ref.frame_numbers)  # stored in another order than k
        assert np.array_equal(ref.read_pixels(), image)


def test_seg_of_an_enhanced_ct_decodes_and_exports(tmp_path):
    grid, image, labels, segments, enh_path = _enhanced_ct(tmp_path)
    ref = ReferenceSeries.from_folder(enh_path)
    numbers = _numbers(labels, segments)
    # highdicom's SEG of a multi-frame source: frames in the source's frame order
    src_order = numbers[np.argsort(ref.frame_numbers)]
    path = _highdicom_seg(tmp_path / "hd.dcm", ref, src_order, segments)
    ds = pydicom.dcmread(path)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == ref.series_instance_uid
    for given in (enh_path, enh_path.parent, ref):
        dec = read_seg(path, reference=given)
        assert dec.labelmap.grid.almost_equal(grid)
        assert np.array_equal(dec.labelmap.array, numbers)
    # our writer against the enhanced image: decodes to the original labels
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "ours.dcm")
    ours = pydicom.dcmread(res.path)
    refd = ours.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert [str(i.ReferencedSOPInstanceUID) for i in refd] == ref.sop_instance_uids
    assert np.array_equal(read_seg(res.path, reference=enh_path).labelmap.array, labels)


def test_dcmqi_reads_our_seg_of_an_enhanced_ct(tmp_path):
    from abdicom_testkit.peers import dcmqi_decode, find_tool

    if find_tool("segimage2itkimage") is None:
        pytest.skip("dcmqi not installed")
    grid, image, labels, segments, enh_path = _enhanced_ct(tmp_path)
    ref = ReferenceSeries.from_folder(enh_path)
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "ours.dcm")
    out = dcmqi_decode(res.path, tmp_path / "dcmqi")
    assert out.run.ok, out.run.output[-2000:]
    assert np.array_equal(align_to_grid(out.array, out.grid, grid), _numbers(labels, segments))


# ------------------------------------------------------------------ irregular slice spacing
def _irregular_series(tmp_path, drop=(4,)):
    """A synthetic series with slices deleted: irregular spacing as in a clinical CT with a
    missing slice. Returns (full regular grid, labels on it with the dropped slices empty,
    segments, ReferenceSeries of what is left)."""
    grid = Grid((10, 34, 36), (0.9, 0.8, 1.25), (-10.5, 20.25, 33.0), np.eye(3))
    image, labels, segments = make_phantom(grid)
    create_synthetic_series(image, grid, tmp_path / "irr", patient_id="AdaptiveBrush_irr")
    files = sorted((tmp_path / "irr").glob("*.dcm"))
    for k in drop:
        files[k].unlink()
    labels = labels.copy()
    labels[list(drop)] = 0
    return grid, labels, segments, ReferenceSeries.from_folder(tmp_path / "irr")


def test_irregular_series_grid_keeps_every_slice_position(tmp_path):
    grid, labels, segments, ref = _irregular_series(tmp_path, drop=(4, 7))
    assert not ref.grid.is_regular and ref.grid.shape_kji == (8, 34, 36)
    expected = np.delete(grid.slice_origins(), [4, 7], axis=0)
    assert np.allclose(ref.grid.slice_origins(), expected, atol=1e-4)
    assert np.allclose(ref.grid.lps_to_index(expected)[:, 2], np.arange(8))
    assert ref.grid.regular_cover().almost_equal(grid)
    with pytest.raises(ValueError, match="irregular"):
        ref.grid.ijk_to_lps  # no single matrix exists


def test_export_onto_irregular_series_and_decode(tmp_path):
    from AdaptiveBrushDicomLib.cli.main import main

    grid, labels, segments, ref = _irregular_series(tmp_path)
    lm = LabelMap(labels, grid, segments)
    res = write_seg(lm, ref, tmp_path / "s.dcm")
    ds = pydicom.dcmread(res.path)
    frame_z = sorted(float(fg.PlanePositionSequence[0].ImagePositionPatient[2])
                     for fg in ds.PerFrameFunctionalGroupsSequence)
    series_z = {round(float(d.ImagePositionPatient[2]), 3) for d in ref.datasets}
    assert {round(z, 3) for z in frame_z} <= series_z  # frames only on the series' own slices
    dec = read_seg(res.path, reference=ref)
    assert dec.labelmap.grid.almost_equal(grid)
    assert np.array_equal(dec.labelmap.array, labels)
    assert sum("irregularly spaced" in n for n in dec.notes) == 1
    own = read_seg(res.path, reference=ref, keep_irregular=True)
    assert own.labelmap.grid.almost_equal(ref.grid)
    assert np.array_equal(own.labelmap.array, np.delete(labels, 4, axis=0))
    # the highdicom writer (RLE) places the frames the same way
    rle = write_seg(lm, ref, tmp_path / "rle.dcm", compression="rle")
    assert np.array_equal(read_seg(rle.path, reference=ref).labelmap.array, labels)
    # and the command line, from a .seg.nrrd
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    write_seg_nrrd(lm, tmp_path / "in.seg.nrrd")
    assert main(["export", str(tmp_path / "in.seg.nrrd"), "--reference", str(tmp_path / "irr"),
                 "--out", str(tmp_path / "cli.dcm")]) == 0
    assert main(["decode", str(tmp_path / "cli.dcm"), "--reference", str(tmp_path / "irr"),
                 "--out", str(tmp_path / "cli.seg.nrrd")]) == 0
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    back = read_segmentation(tmp_path / "cli.seg.nrrd")
    assert np.array_equal(back.array, labels) and back.grid.almost_equal(grid)


def test_labels_between_irregular_slices_are_refused(tmp_path, capsys):
    from AdaptiveBrushDicomLib.cli.main import main
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    grid, labels, segments, ref = _irregular_series(tmp_path)
    full = make_phantom(grid)[1]  # labels also on the slice the series lacks
    with pytest.raises(ReferenceMismatchError, match="no image") as err:
        write_seg(LabelMap(full, grid, segments), ref, tmp_path / "s.dcm")
    assert f"{np.count_nonzero(full[4])} labelled voxels" in str(err.value)
    z = grid.slice_origins()[4][2]
    assert f"{z:.2f})" in str(err.value)
    write_seg_nrrd(LabelMap(full, grid, segments), tmp_path / "in.seg.nrrd")
    capsys.readouterr()
    assert main(["export", str(tmp_path / "in.seg.nrrd"), "--reference", str(tmp_path / "irr"),
                 "--out", str(tmp_path / "cli.dcm")]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "no image" in err_lines[0]
    assert not (tmp_path / "cli.dcm").exists()


def test_dcmqi_reads_our_seg_of_an_irregular_series(tmp_path):
    from abdicom_testkit.peers import dcmqi_decode, find_tool

    if find_tool("segimage2itkimage") is None:
        pytest.skip("dcmqi not installed")
    grid, labels, segments, ref = _irregular_series(tmp_path)
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "s.dcm")
    out = dcmqi_decode(res.path, tmp_path / "dcmqi")
    assert out.run.ok, out.run.output[-2000:]
    assert np.array_equal(align_to_grid(out.array, out.grid, grid), _numbers(labels, segments))


def test_varying_spacing_series(tmp_path):
    """Spacing 1.25 then 1.3 mm: no regular grid holds the slices. Export onto the
    series' own slices works (labelmap given on them); decode keeps them exactly on
    request and otherwise says in one line why a volume file cannot hold them."""
    grid = Grid((6, 20, 24), (0.9, 0.8, 1.25), (-10.0, 5.0, 30.0), np.eye(3),
                slice_positions_mm=[0, 1.25, 2.5, 3.8, 5.1, 6.35])
    labels = np.zeros(grid.shape_kji, np.uint8)
    labels[1:5, 4:12, 6:15] = 1
    labels[3, 10:14, 10:20] = 2
    from AdaptiveBrushDicomLib.core.segment import Segment

    segments = [Segment(label=1, name="a"), Segment(label=2, name="b")]
    create_synthetic_series(np.ones(grid.shape_kji, np.int16), grid, tmp_path / "vary", patient_id="v")
    ref = ReferenceSeries.from_folder(tmp_path / "vary")
    assert ref.grid.almost_equal(grid) and ref.grid.regular_cover() is None
    res = write_seg(LabelMap(labels, grid, segments), ref, tmp_path / "s.dcm")
    own = read_seg(res.path, reference=ref, keep_irregular=True)
    assert np.array_equal(own.labelmap.array, labels)
    with pytest.raises(ReferenceMismatchError, match="no regular grid") as err:
        read_seg(res.path, reference=ref)
    assert "\n" not in str(err.value)
    # without a reference the SEG's own frame positions are used, with the same result
    alone = read_seg(res.path, keep_irregular=True)
    assert np.array_equal(align_to_grid(alone.labelmap.array, alone.labelmap.grid, grid), labels)


def test_frames_across_irregular_slices(tmp_path):
    """Sagittal frames of an axial series with a missing slice: their rows sample the
    regular grid that holds every slice; decoded exactly, and refused in words when a
    frame labels the slice the series lacks."""
    grid, labels, segments, ref = _irregular_series(tmp_path)
    numbers = _numbers(labels, segments)
    sag, sag_grid = reorient(numbers, grid, Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), SAGITTAL))
    path = _highdicom_seg(tmp_path / "s.dcm", ref, np.ascontiguousarray(sag), segments, grid=sag_grid)
    dec = read_seg(path, reference=ref)
    assert dec.labelmap.grid.almost_equal(grid)
    assert np.array_equal(dec.labelmap.array, numbers)
    full = _numbers(make_phantom(grid)[1], segments)  # also labels the missing slice
    sag, sag_grid = reorient(full, grid, Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), SAGITTAL))
    path = _highdicom_seg(tmp_path / "t.dcm", ref, np.ascontiguousarray(sag), segments, grid=sag_grid)
    with pytest.raises(ReferenceMismatchError, match="where the reference series has no image") as err:
        read_seg(path, reference=ref)
    assert str(path) in str(err.value)


def test_new_frame_of_reference_with_in_plane_cropped_frames(tmp_path):
    """pydicom-seg's inplane_cropping: frames smaller than the image, offset in-plane, and a
    new FrameOfReferenceUID; still every frame pixel is one reference voxel."""
    grid, labels, segments, ref = _series(tmp_path)
    numbers = _numbers(labels, segments)
    nz = np.argwhere(numbers)
    (_k0, j0, i0), (_k1, j1, i1) = nz.min(axis=0), nz.max(axis=0) + 1
    crop = Grid((grid.shape_kji[0], j1 - j0, i1 - i0), grid.spacing_ijk, tuple(grid.index_to_lps([i0, j0, 0])),
                grid.direction)
    path = _highdicom_seg(tmp_path / "s.dcm", ref, np.ascontiguousarray(numbers[:, j0:j1, i0:i1]), segments,
                          seg_type="BINARY", grid=crop)
    new_for = _new_frame_of_reference(path)
    assert pydicom.dcmread(path).Rows == j1 - j0
    dec = read_seg(path, reference=ref)
    assert np.array_equal(dec.labelmap.array, numbers)
    assert [n for n in dec.notes if new_for in n]
