"""The fast LABELMAP writer (seg_fast) writes what the highdicom path writes.

Each case writes the same labelmap twice, once through highdicom (``seg_fast.ENABLED =
False``: the reference implementation) and once through the fast path, then compares
the two files element by element, recursively into every sequence (file meta included),
except the values highdicom makes up per call: dates/times (DA, TM, DT) and the random
DimensionOrganizationUID. Both files must also decode voxel-exactly.

Cases: axial / sagittal / coronal / oblique / flipped grids, empty slices at both ends
and in the middle, label values > 255, > 255 segments (16-bit pixels), odd frame sizes
(padded pixel data), Explicit VR LE and Deflated, segments differing only in their
algorithm parameters (the cached path), MANUAL segments with parameters, private
terminology context names, content_datetime, and a template reused across writes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest

from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.dicom.seg.write import SegWriter, write_seg
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

from conftest import rotation

DIRECTIONS = {
    "axial": np.eye(3),
    "sagittal": np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float),
    "coronal": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
    "oblique": rotation(0.3, -0.2, 0.5),
    "flipped": np.diag([-1.0, 1.0, -1.0]) @ np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], float),
}

SKIP_VRS = {"DA", "TM", "DT"}
SKIP_KEYWORDS = {"DimensionOrganizationUID"}


def _series(tmp_path: Path, direction, shape=(9, 20, 22), name="ref") -> ReferenceSeries:
    grid = Grid(shape, (0.9, 0.8, 2.0), (-10.5, 20.25, 33.0), direction)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 500, size=shape).astype(np.int16)
    create_synthetic_series(image, grid, tmp_path / name, patient_id="AdaptiveBrush_fast")
    return ReferenceSeries.from_folder(tmp_path / name)


def _blobs(shape, labels, empty=(0, 4), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(shape, dtype=np.uint16 if max(labels) > 255 else np.uint8)
    nk, nj, ni = shape
    for v in labels:
        k0, j0, i0 = rng.integers(0, nk), rng.integers(0, max(nj - 4, 1)), rng.integers(0, max(ni - 4, 1))
        dk, dj, di = rng.integers(1, 4), rng.integers(2, 6), rng.integers(2, 6)
        box = out[k0:k0 + dk, j0:j0 + dj, i0:i0 + di]
        box[box == 0] = v
    for k in empty:
        if k < 0:
            k += nk
        out[k] = 0
    return out


def _segments(labels, params=None, algorithm_type=AlgorithmType.SEMIAUTOMATIC, name="watershed"):
    out = []
    for n, v in enumerate(labels):
        out.append(Segment(
            label=int(v), name=f"Structure {v}", color=((40 * n) % 256, 90, 200),
            terminology=Terminology(type=Code("10200004", "SCT", "Liver")) if n % 2 else None,
            algorithm_type=algorithm_type, algorithm_name=name, algorithm_parameters=params,
            segment_id=f"Segment_{v}",
        ))
    return out


def _both(tmp_path, lm, ref, compression=Compression.DEFLATE, tag="x", expect_fast=True, **kw):
    slow_path, fast_path = tmp_path / f"{tag}_hd.dcm", tmp_path / f"{tag}_fast.dcm"
    old = seg_fast.ENABLED
    try:
        seg_fast.ENABLED = False
        slow = write_seg(lm, ref, slow_path, compression=compression, **kw)
        seg_fast.ENABLED = True
        fast = write_seg(lm, ref, fast_path, compression=compression, **kw)
    finally:
        seg_fast.ENABLED = old
    assert slow.writer is SegWriter.HIGHDICOM
    # the fast path falls back to highdicom on any failure: make sure it did not here,
    # or every comparison below would compare highdicom with itself
    if expect_fast and seg_fast.supported(compression.uid, False):
        assert fast.writer is SegWriter.FAST, "fast path fell back to highdicom"
    return slow, fast


def _diff(a, b, where="", out=None) -> list[str]:
    """Differences between two pydicom datasets (recursive), ignoring dates and made-up UIDs."""
    out = [] if out is None else out
    tags = sorted(set(a.keys()) | set(b.keys()))
    for tag in tags:
        ea, eb = a.get(tag), b.get(tag)
        name = f"{where}/{(ea or eb).keyword or tag}"
        if ea is None or eb is None:
            out.append(f"{name}: only in {'fast' if ea is None else 'highdicom'}")
            continue
        if ea.VR in SKIP_VRS or ea.keyword in SKIP_KEYWORDS:
            continue
        if ea.VR != eb.VR:
            out.append(f"{name}: VR {ea.VR} != {eb.VR}")
        if ea.VR == "SQ":
            if len(ea.value) != len(eb.value):
                out.append(f"{name}: {len(ea.value)} != {len(eb.value)} items")
                continue
            for n, (ia, ib) in enumerate(zip(ea.value, eb.value)):
                _diff(ia, ib, f"{name}[{n}]", out)
        elif ea.value != eb.value:
            va, vb = ea.value, eb.value
            if isinstance(va, bytes):
                va, vb = f"{len(va)} bytes", f"{len(vb)} bytes"
            out.append(f"{name}: {va!r} != {vb!r}")
    return out


def _assert_equivalent(slow, fast, lm, ref):
    a, b = pydicom.dcmread(slow.path), pydicom.dcmread(fast.path)
    n = int(a.NumberOfFrames) * a.Rows * a.Columns * a.BitsAllocated // 8
    if n % 2:
        # the trailing pad byte of odd-length pixel data: highdicom 0.28 writes b"0"
        # (ASCII 0x30, image.py `self.PixelData += b'0'`); PS3.5 8.1.1 asks for a NULL
        # byte, which the fast path writes. Compare the pixels, not the pad.
        assert len(a.PixelData) == len(b.PixelData) == n + 1
        assert b.PixelData[-1:] == b"\x00"
        a.PixelData, b.PixelData = a.PixelData[:n], b.PixelData[:n]
    # Known, intended differences: the fast writer builds its header with pydicom alone
    # (dicom/seg/fast_header.py), so the file meta names pydicom's implementation and the
    # last ContributingEquipment item is this software, not highdicom.
    if fast.writer is SegWriter.FAST:
        for ds in (a, b):
            for kw in ("FileMetaInformationGroupLength", "ImplementationClassUID", "ImplementationVersionName"):
                if kw in ds.file_meta:
                    del ds.file_meta[kw]
        fast_equipment = b.ContributingEquipmentSequence[-1]
        assert fast_equipment.Manufacturer == "AdaptiveBrushDicom"
        assert fast_equipment.PurposeOfReferenceCodeSequence[0].CodeValue == "109102"  # Processing Equipment
        assert a.ContributingEquipmentSequence[-1].ManufacturerModelName == "highdicom"
        del a.ContributingEquipmentSequence[-1]
        del b.ContributingEquipmentSequence[-1]
    diffs = _diff(a.file_meta, b.file_meta, "meta") + _diff(a, b)
    assert not diffs, "\n".join(diffs[:30])
    assert (slow.sop_class_uid, slow.transfer_syntax_uid, slow.series_instance_uid, slow.sop_instance_uid,
            slow.n_frames, slow.n_segments, slow.warnings) == \
           (fast.sop_class_uid, fast.transfer_syntax_uid, fast.series_instance_uid, fast.sop_instance_uid,
            fast.n_frames, fast.n_segments, fast.warnings)
    for res in (slow, fast):
        decoded = read_seg(res.path, reference=ref)
        assert np.array_equal(decoded.labelmap.array, lm.array)
        assert sorted(s.label for s in decoded.labelmap.segments) == sorted(s.label for s in lm.segments)


@pytest.mark.parametrize("orientation", list(DIRECTIONS))
@pytest.mark.parametrize("compression", [Compression.DEFLATE, Compression.EXPLICIT])
def test_same_dataset_as_highdicom(tmp_path, orientation, compression):
    ref = _series(tmp_path, DIRECTIONS[orientation])
    labels = [1, 2, 3, 4, 5]
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels, empty=(0, 4, -1)), ref.grid, _segments(labels, {"level": 0.5}))
    slow, fast = _both(tmp_path, lm, ref, compression)
    assert fast.n_frames < ref.grid.shape_kji[0]  # empty frames omitted
    _assert_equivalent(slow, fast, lm, ref)


def test_labels_above_255_odd_frames_and_datetime(tmp_path):
    ref = _series(tmp_path, np.eye(3), shape=(7, 15, 17))  # odd rows x cols x frames
    labels = [2, 300, 7]
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels, empty=(3,)), ref.grid,
                  _segments(labels, None, AlgorithmType.MANUAL, name=None))
    slow, fast = _both(tmp_path, lm, ref, content_datetime=datetime(2025, 3, 4, 5, 6, 7),
                       series_description="trial 7", series_number=1007, content_description="run x trial 7",
                       content_label="TRIAL_007")
    _assert_equivalent(slow, fast, lm, ref)
    a, b = pydicom.dcmread(slow.path), pydicom.dcmread(fast.path)
    for kw in ("ContentDate", "ContentTime", "SeriesDate", "SeriesTime", "InstanceCreationDate"):
        assert a.get(kw) == b.get(kw)


def test_more_than_255_segments_16_bit(tmp_path):
    ref = _series(tmp_path, DIRECTIONS["coronal"], shape=(6, 24, 26))
    labels = list(range(1, 301))
    arr = np.zeros(ref.grid.shape_kji, dtype=np.uint16)
    arr.reshape(-1)[: 300 * 3] = np.repeat(np.arange(1, 301), 3)
    arr[-1] = 0
    lm = LabelMap(arr, ref.grid, _segments(labels))
    slow, fast = _both(tmp_path, lm, ref)
    assert pydicom.dcmread(fast.path).BitsAllocated == 16
    _assert_equivalent(slow, fast, lm, ref)


def test_manual_with_parameters_and_private_contexts(tmp_path):
    ref = _series(tmp_path, np.eye(3))
    labels = [1, 2]
    segs = _segments(labels, {"radius": 3}, AlgorithmType.MANUAL, name=None)
    segs[1] = Segment(label=2, name="Ctx", color=(1, 2, 3),
                      terminology=Terminology(type=Code("4147007", "SCT", "Mass"), context_name="My list",
                                              anatomic_context_name="My anatomy"))
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels), ref.grid, segs)
    slow, fast = _both(tmp_path, lm, ref)
    _assert_equivalent(slow, fast, lm, ref)


def test_template_reused_across_trials(tmp_path):
    """Trials on one series: differing voxels, parameters and names; one template."""
    ref = _series(tmp_path, DIRECTIONS["oblique"])
    for trial in range(3):
        labels = [1, 2, 3]
        lm = LabelMap(_blobs(ref.grid.shape_kji, labels, empty=(trial,), seed=trial), ref.grid,
                      _segments(labels, {"trial": trial, "threshold": 0.1 * trial}))
        slow, fast = _both(tmp_path, lm, ref, tag=f"t{trial}", series_description=f"trial {trial}")
        _assert_equivalent(slow, fast, lm, ref)
    key = seg_fast.TemplateCache.key
    keys = {k for k in seg_fast.TEMPLATES._entries if k[0] == ref.series_instance_uid}
    assert len(keys) == 1, keys
    assert key  # the key function is public API of the cache


def test_template_is_not_edited_by_writes(tmp_path):
    """A write copies what it changes: the cached template's bytes stay as built."""
    ref = _series(tmp_path, DIRECTIONS["axial"])
    lm = LabelMap(_blobs(ref.grid.shape_kji, [1, 2]), ref.grid, _segments([1, 2]))
    write_seg(lm, ref, tmp_path / "a.dcm", content_datetime=datetime(2020, 1, 2, 3, 4, 5))
    tpl = next(v for k, v in seg_fast.TEMPLATES._entries.items() if k[0] == ref.series_instance_uid)
    def dates(seq):
        return [str(item.get("ContributionDateTime")) for item in seq.value]

    before = (dict(tpl.elements), dict(tpl.items), dates(tpl.contributing))
    write_seg(lm, ref, tmp_path / "b.dcm", content_datetime=datetime(2024, 6, 7, 8, 9, 10))
    after = (dict(tpl.elements), dict(tpl.items), dates(tpl.contributing))
    assert before == after
    with pytest.raises(TypeError):
        tpl.items[0] = b""  # read-only mapping
    # and the two writes carry their own dates
    a, b = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "b.dcm")
    def written(ds):
        return [str(i.ContributionDateTime) for i in ds.ContributingEquipmentSequence if "ContributionDateTime" in i]

    assert written(a) and all(d.startswith("20200102") for d in written(a))
    assert written(b) and all(d.startswith("20240607") for d in written(b))


@pytest.mark.parametrize("broken", ["removed", "signature", "layout"])
def test_broken_private_api_falls_back_to_highdicom(tmp_path, monkeypatch, broken):
    """An API of pydicom the fast path relies on disappears or changes in a new release, or
    the template layout changes: the export still succeeds, through highdicom, voxel-exact.
    (The fast path no longer uses any highdicom API. It looks up
    ``pydicom.charset.convert_encodings`` and ``pydicom.filebase.DicomBytesIO`` when it
    runs, while pydicom's own modules keep the functions they imported, so breaking these
    breaks only the fast path.)"""
    import pydicom.charset
    import pydicom.filebase

    def changed(*args, **kwargs):
        raise TypeError("got an unexpected keyword argument (simulated API change)")

    def layout(*args, **kwargs):
        raise KeyError("PerFrameFunctionalGroupsSequence (simulated template layout change)")

    ref = _series(tmp_path, DIRECTIONS["oblique"])
    lm = LabelMap(_blobs(ref.grid.shape_kji, [1, 2, 300]), ref.grid, _segments([1, 2, 300], {"t": 1}))
    seg_fast.TEMPLATES.clear()
    if broken == "removed":  # the helper is gone: ImportError inside the fast path
        monkeypatch.delattr(pydicom.charset, "convert_encodings")
    elif broken == "signature":
        monkeypatch.setattr(pydicom.filebase, "DicomBytesIO", changed)
    else:
        from AdaptiveBrushDicomLib.dicom.seg import fast_template

        monkeypatch.setattr(fast_template, "_build_template", layout)
    res = write_seg(lm, ref, tmp_path / "fallback.dcm")
    assert res.writer is SegWriter.HIGHDICOM
    back = read_seg(tmp_path / "fallback.dcm", reference=ref).labelmap
    np.testing.assert_array_equal(back.array, lm.array)
    assert [s.label for s in back.segments] == [1, 2, 300]
    monkeypatch.undo()
    seg_fast.TEMPLATES.clear()
    res2 = write_seg(lm, ref, tmp_path / "fast.dcm")
    assert res2.writer is SegWriter.FAST


# ---------------------------------------------------------------- abdicom info start-up
def test_info_pure_reader_equals_pydicom(tmp_path):
    """seg_info's pydicom-free reader gives what the pydicom reader gives."""
    from AdaptiveBrushDicomLib.dicom.seg import info as S

    ref = _series(tmp_path, DIRECTIONS["oblique"])
    labels = [1, 2, 300]
    segs = _segments(labels, {"k": "v", "n": 1.5})
    segs[0] = Segment(label=1, name="Region", color=(10, 20, 30),
                      terminology=Terminology(type=Code("10200004", "SCT", "Liver"),
                                              anatomic_region=Code("10200004", "SCT", "Liver"),
                                              anatomic_region_modifier=Code("7771000", "SCT", "Left")),
                      description="with a description")
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels), ref.grid, segs)
    paths = []
    for comp in (Compression.DEFLATE, Compression.EXPLICIT, Compression.RLE):
        slow, fast = _both(tmp_path, lm, ref, comp, tag=comp.cli_name)
        paths += [slow.path, fast.path]
    for p in paths:
        assert S._seg_info_pure(Path(p)) == S._seg_info_pydicom(Path(p))
        assert S.seg_info(p) == S._seg_info_pydicom(Path(p))


def test_info_colour_conversion_equals_numpy():
    from AdaptiveBrushDicomLib.dicom.seg import info as S
    from AdaptiveBrushDicomLib.core.colors import dicom_lab_to_rgb, rgb_to_dicom_lab

    rng = np.random.default_rng(0)
    rgb = np.concatenate([rng.integers(0, 256, size=(20000, 3)), np.repeat(np.arange(256)[:, None], 3, axis=1)])
    labs = np.concatenate([rgb_to_dicom_lab(rgb), rng.integers(0, 65536, size=(20000, 3))])
    want = dicom_lab_to_rgb(labs)
    got = np.array([S._lab_to_rgb([int(v) for v in lab]) for lab in labs])
    assert np.array_equal(got, want)


def test_parallel_deflate_of_large_pixel_data(tmp_path, monkeypatch):
    """Pixel data > 1 MB is deflated in parts by threads: still one valid stream."""
    monkeypatch.setattr(seg_fast, "DEFLATE_THREADS", 3)
    ref = _series(tmp_path, np.eye(3), shape=(13, 301, 299))
    labels = [1, 2, 3]
    arr = np.zeros(ref.grid.shape_kji, dtype=np.uint8)
    arr[1:12, 20:280, 30:250] = 1
    arr[3:9, 100:150, 60:200] = 2
    arr[5, 5:9, 5:9] = 3
    lm = LabelMap(arr, ref.grid, _segments(labels))
    slow, fast = _both(tmp_path, lm, ref)
    _assert_equivalent(slow, fast, lm, ref)


def test_non_ascii_text_goes_through_highdicom(tmp_path):
    """Non-ASCII segment or series text needs the dataset's SpecificCharacterSet (UTF-8,
    set by finalize_dataset): the fast path hands such SEGs to the highdicom path."""
    ref = _series(tmp_path, np.eye(3))
    labels = [1, 2]
    segs = _segments(labels)
    segs[1] = Segment(label=2, name="Région ü", color=(1, 2, 3), description="déjà vu",
                      algorithm_type=AlgorithmType.MANUAL)
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels), ref.grid, segs)
    slow, fast = _both(tmp_path, lm, ref, expect_fast=False)
    assert fast.writer is SegWriter.HIGHDICOM
    _assert_equivalent(slow, fast, lm, ref)
    ds = pydicom.dcmread(fast.path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert any(str(i.SegmentLabel) == "Région ü" for i in ds.SegmentSequence)
    ascii_segs = _segments(labels)
    lm2 = LabelMap(lm.array, ref.grid, ascii_segs)
    slow, fast = _both(tmp_path, lm2, ref, tag="desc", series_description="Série 1", expect_fast=False)
    _assert_equivalent(slow, fast, lm2, ref)


# ------------------------------------------------------- segment items without highdicom
def _varied_segments():
    return [
        Segment(label=1, name="Liver", color=(200, 90, 40), description="line one\r\nline two",
                terminology=Terminology(category=Code("123037004", "SCT", "Anatomical Structure"),
                                        type=Code("10200004", "SCT", "Liver"),
                                        type_modifier=Code("7771000", "SCT", "Left"),
                                        anatomic_region=Code("818981001", "SCT", "Abdomen"),
                                        anatomic_region_modifier=Code("24028007", "SCT", "Right"),
                                        context_name="My list", anatomic_context_name="My anatomy"),
                algorithm_type=AlgorithmType.AUTOMATIC, algorithm_name="nnUNet", algorithm_version="2.1",
                algorithm_parameters={"fold": 3, "name": "Läsion"}, segment_id="Segment_1", layer=1,
                extra={"tags": {"a": "b"}}),
        Segment(label=300, name="Odd", color=None, segment_id=None, algorithm_type=AlgorithmType.MANUAL),
        Segment(label=7, name="Long code", terminology=Terminology(
            type=Code("1234567890123456789", "99LOCAL", "Long"),
            category=Code("urn:oid:1.2.3.4.5.6.7.8.9.10", "99URN", "URN code")),
            algorithm_type=AlgorithmType.SEMIAUTOMATIC, algorithm_name=None),
    ]


def test_small_dataset_encoder_writes_what_pydicom_writes():
    """encode_small_dataset (the fast path's item encoder) gives pydicom's bytes for every
    kind of segment item: codes with modifiers, long and URN code values, algorithm
    identification, descriptions with line breaks, our private block, the Background."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import encode_small_dataset
    from AdaptiveBrushDicomLib.dicom.seg.fast_segments import _post_process
    from AdaptiveBrushDicomLib.dicom.segment_dataset import background_dataset, segment_dataset
    from AdaptiveBrushDicomLib.dicom.segment_values import item_values

    segs = _varied_segments()
    items = [segment_dataset(item_values(s, n)[0]) for n, s in enumerate(segs, start=1)]
    holder = _post_process([background_dataset(items[0], keep) for keep in (False, True)] + items, "1.2.3.4", segs)
    assert len(holder.SegmentSequence) == 5
    for item in holder.SegmentSequence:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, item, parent_encoding=["iso8859"])
        assert encode_small_dataset(item) == buf.getvalue(), item


def test_segment_items_equal_highdicom_descriptions():
    """segment_dataset (pydicom alone) builds the item to_segment_description builds with
    highdicom, element by element, with the same warnings; also for long/URN code values,
    modifiers, MANUAL segments without an algorithm, and a colour from the palette."""
    from AdaptiveBrushDicomLib.dicom.segment_dataset import segment_dataset
    from AdaptiveBrushDicomLib.dicom.segment_item import to_segment_description
    from AdaptiveBrushDicomLib.dicom.segment_values import item_values

    for number, seg in enumerate(_varied_segments(), start=1):
        hd_item, hd_warnings = to_segment_description(seg, number)
        values, warnings = item_values(seg, number)
        ours = segment_dataset(values)
        assert warnings == hd_warnings
        assert not _diff(hd_item, ours), _diff(hd_item, ours)
        assert [e.keyword for e in hd_item] == [e.keyword for e in ours]


def test_background_item_equals_installed_highdicom(tmp_path):
    """The Background item the fast path writes is the one the installed highdicom (0.27
    keeps segment 1's algorithm identification, 0.28 drops it) adds, parameters included."""
    import highdicom as hd
    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.segment_dataset import background_dataset, background_keeps_algorithm
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset, to_segment_description

    seg = _varied_segments()[0]
    desc, _ = to_segment_description(seg, 1)
    holder = Dataset()
    holder.StudyInstanceUID = "1.2.3"
    hd.seg.Segmentation._add_segment_descriptions(holder, [desc], hd.seg.SegmentationTypeValues.LABELMAP)
    finalize_dataset(holder, [seg])
    first_desc, _ = to_segment_description(seg, 1)
    ours = Dataset()
    ours.StudyInstanceUID = "1.2.3"
    ours.SegmentSequence = [background_dataset(first_desc, background_keeps_algorithm()), first_desc]
    finalize_dataset(ours, [seg])
    assert not _diff(holder.SegmentSequence[0], ours.SegmentSequence[0])
    keeps = "SegmentationAlgorithmIdentificationSequence" in holder.SegmentSequence[0]
    assert keeps is background_keeps_algorithm()
    if keeps:
        assert ours.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters == \
            '{"fold":3,"name":"L\\u00e4sion"}'


def _raw_tags_ascending(data: bytes, where: str = "") -> list[str]:
    """Walk Explicit VR Little Endian bytes (explicit lengths, as our writer writes them);
    the places where a tag is not greater than the one before it (PS3.5 7.1: ascending)."""
    import struct

    long_vrs = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
    bad, pos, last = [], 0, -1
    while pos < len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        tag = (group << 16) | elem
        if tag <= last:
            bad.append(f"{where}({group:04X},{elem:04X}) after ({last >> 16:04X},{last & 0xFFFF:04X})")
        last = tag
        vr = data[pos + 4:pos + 6]
        if vr in long_vrs:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        if vr == b"SQ":
            ipos, n = start, 0
            while ipos < start + length:
                (ilen,) = struct.unpack_from("<I", data, ipos + 4)
                bad += _raw_tags_ascending(data[ipos + 8:ipos + 8 + ilen], f"{where}({group:04X},{elem:04X})[{n}]/")
                ipos, n = ipos + 8 + ilen, n + 1
        if tag == 0x7FE00010:
            break
        pos = start + length
    return bad


def test_fast_path_elements_are_in_ascending_order(tmp_path):
    """Every dataset the fast path writes (top level, per-frame items, segment items with
    and without parameters, the Background, ContributingEquipment items) has its elements
    in ascending tag order, as PS3.5 requires; pydicom would hide a disorder on reading.
    (Items built as pydicom Datasets keep insertion order in ``keys()``: the writer sorts.)"""
    import zlib

    from pydicom.filereader import _read_file_meta_info, read_preamble

    ref = _series(tmp_path, DIRECTIONS["oblique"])
    labels = [1, 2, 3]
    segs = _segments(labels, {"threshold": 0.5})
    segs[0] = _varied_segments()[0]
    segs[0] = Segment(**{**segs[0].__dict__, "label": 1, "algorithm_parameters": {"fold": 3}})
    lm = LabelMap(_blobs(ref.grid.shape_kji, labels), ref.grid, segs)
    for compression, dt in ((Compression.DEFLATE, None), (Compression.EXPLICIT, datetime(2021, 2, 3, 4, 5, 6))):
        path = tmp_path / f"order_{compression.name}.dcm"
        res = write_seg(lm, ref, path, compression=compression, content_datetime=dt)
        assert res.writer is SegWriter.FAST
        with open(path, "rb") as fh:
            read_preamble(fh, False)
            _read_file_meta_info(fh)
            body = fh.read()
        if compression is Compression.DEFLATE:
            body = zlib.decompress(body, -15)
        bad = _raw_tags_ascending(body)
        assert not bad, bad[:10]
