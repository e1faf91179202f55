"""Verifying a SEG against the segmentation it must hold, before it gets its final name.

The durability rule (``docs/migration.md``) gives a SEG its final name only when it is
complete, on disk and verified: the bytes in the file must hold the labelmap and the header
the migration meant. Two checks do that:

* :func:`verify_written` (a SEG this process has just written): the file is read back
  from disk, its Deflated dataset inflated in one pass (which must end exactly at the end
  of the file, with the even-length pad byte when it needs one: truncation and corrupt data
  are refused), and its elements walked in place
  with :mod:`~AdaptiveBrushDicomLib.dicom.walker`, without building a dataset:

  - the dataset up to the PixelData value byte for byte the header the fast writer encoded
    (kept in memory; the highdicom path has none to compare with);
  - file meta and dataset: Transfer Syntax, LABELMAP SOP Class, SOP Instance / Series /
    Study / Frame of Reference UIDs (the meta's too), the referenced series, Rows, Columns,
    BitsAllocated, NumberOfFrames; elements in ascending tag order, PixelData last with the
    length the frames need;
  - SegmentSequence: SegmentNumbers 1..N (plus the LABELMAP Background item 0), each with
    the original label value of its segment (private block, what a reader restores);
  - the frames: orientation and pixel spacing (shared functional groups) those of the
    reference grid, each frame's ImagePositionPatient on a slice k of the reference grid,
    no slice twice, every slice with a labelled voxel present; then every frame's pixels,
    mapped through the file's own SegmentNumber -> label table, equal to slice k of the
    labelmap voxel for voxel (absent slices are empty in the labelmap).

  This is what a decoder needs to put every voxel back, checked on the stored bytes, at a
  fraction of a decode's cost (no segment descriptions built, no labelmap allocated).
* :func:`verify_decoded`: the file decoded by :func:`~AdaptiveBrushDicomLib.dicom.seg.read.read_seg`
  onto the reference series and compared voxel by voxel (an existing SEG found by a re-run,
  and a written file whose layout the walk does not read: encapsulated transfer syntaxes,
  per-frame orientation; :func:`verify_written` then calls it).

Both raise ``ValueError`` on any difference (the worker reports ``verify_mismatch`` and
keeps nothing). Tests: ``Testing/Python/test_migrate_verify.py`` (flipped bytes, truncation,
wrong segment numbers or labels, moved frames, other UIDs: all refused).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.io.deflate import raw_inflater
from AdaptiveBrushDicomLib.io.limits import MAX_BYTES, FileKind

#: Tolerance (in voxels) on a frame's position when it is mapped to a slice of the grid.
INDEX_TOLERANCE = 0.01
#: Tolerance on direction cosines and (mm) on pixel spacing, as the decoder's placement.
GEOMETRY_TOLERANCE = 1e-3

_PRIVATE_CREATOR = b"AdaptiveBrushDicom 1"
_SEGMENTS, _SHARED, _PER_FRAME = 0x00620002, 0x52009229, 0x52009230
_PLANE_POSITION, _PLANE_ORIENTATION, _PIXEL_MEASURES = 0x00209113, 0x00209116, 0x00289110
_REFERENCED_SERIES = 0x00081115


def verify_decoded(path: Path, labelmap: Any, reference: Any) -> tuple[int, int, int]:
    """Decode ``path`` and compare with ``labelmap`` (already on the reference grid).

    Returns (voxels compared, labelled voxels, segments).

    Raises
    ------
    ValueError
        The decoded voxels, label set or SOP class differ from the source.
    """
    from AdaptiveBrushDicomLib.dicom.seg.labels import flatten_layers
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    expected, segments = flatten_layers(labelmap)
    decoded = read_seg(path, reference=reference)
    got = decoded.labelmap.array
    if got.shape != expected.shape:
        raise ValueError(f"decoded shape {got.shape} differs from source {expected.shape}")
    diff = np.count_nonzero(got != expected)  # exact across integer dtypes, no full-size casts
    if diff:
        raise ValueError(f"{diff} voxels differ between the SEG and its source")
    want = sorted(s.label for s in segments)
    have = sorted(s.label for s in decoded.labelmap.segments)
    if want != have:
        raise ValueError(f"segment labels {have} differ from the source's {want}")
    if decoded.sop_class_uid != SegSopClass.LABELMAP:
        raise ValueError(f"SOP class {decoded.sop_class_uid} is not LABELMAP")
    return int(expected.size), int(np.count_nonzero(expected)), len(segments)


@dataclass(frozen=True)
class Expected:
    """What a written SEG must hold besides the labelmap: its UIDs, transfer syntax and,
    from the fast writer, its dataset bytes up to the PixelData value (before deflating)."""

    series_instance_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    header: bytes | None = None


def verify_written(path: Path, labelmap: Any, reference: Any, expected: Expected) -> tuple[int, int, int]:
    """Check the SEG just written at ``path`` against ``labelmap`` (on the reference grid)
    without decoding it (see the module docstring); (voxels compared, labelled voxels,
    segments), as :func:`verify_decoded`.

    Raises
    ------
    ValueError
        The file is truncated or corrupt, or its header, segments or voxels are not the
        ones meant (the message says which).
    """
    from AdaptiveBrushDicomLib.dicom.seg.labels import flatten_layers

    array, segments = flatten_layers(labelmap)
    raw = Path(path).read_bytes()
    try:
        data, top = _dataset(raw, expected.transfer_syntax_uid, _pixel_limit(array, len(segments)))
        if expected.header is not None and data[:top[walker.PIXEL_DATA][1]] != expected.header:
            raise ValueError("the header read back differs from the header written")
        _check_header(data, top, reference, expected)
        ks = _frame_slices(data, top, reference.grid)
        label_of = _segment_labels(data, top)
    except walker.NotSupported:  # a layout the walk does not read: decode it
        return verify_decoded(path, labelmap, reference)
    want = {n: s.label for n, s in enumerate(segments, start=1)}
    if {n: v for n, v in label_of.items() if n} != want:
        raise ValueError(f"SegmentSequence holds SegmentNumber -> label {label_of}, expected {want}")
    labelled = _compare_frames(data, top, array, ks, label_of, len(segments))
    return int(array.size), labelled, len(segments)


# --------------------------------------------------------------------- reading back
def _pixel_limit(array: np.ndarray, n_segments: int) -> tuple[int, int]:
    """(bytes the dataset is expected to inflate to, the most it may): the frames of the
    labelled slices plus ~2 KiB of header per slice; every slice plus the header cap.

    The first is only the size of the first output buffer (a buffer the allocator can
    serve from memory it already has: a fresh one costs a page fault per 4 KiB, more than
    the inflate itself)."""
    nk, rows, cols = array.shape
    frame = rows * cols * (1 if n_segments < 256 else 2)
    present = int(np.count_nonzero(array.reshape(nk, -1).any(axis=1))) if array.size else 0
    return present * frame + (nk << 11) + (1 << 16), nk * frame + MAX_BYTES[FileKind.DICOM_HEADER]


def _dataset(raw: bytes, transfer_syntax: str, limit: tuple[int, int]) -> tuple[bytes, dict[int, tuple[str, int, int]]]:
    """The dataset bytes (inflated) and its top-level elements: tag -> (VR, value start, end).

    Raises
    ------
    ValueError
        No DICOM preamble, a broken meta group, another transfer syntax than written,
        corrupt or truncated Deflated data, elements out of order or after PixelData.
    NotSupported
        A transfer syntax other than (Deflated) Explicit VR Little Endian.
    """
    if len(raw) < 144 or raw[128:132] != b"DICM" or raw[132:138] != b"\x02\x00\x00\x00UL":
        raise ValueError("no DICOM preamble and file meta group")
    meta_end = 144 + struct.unpack_from("<I", raw, 140)[0]
    meta = _elements(raw, 132, min(meta_end, len(raw)))
    ts = _text(raw, meta, 0x00020010)
    if ts != transfer_syntax:
        raise ValueError(f"TransferSyntaxUID {ts} is not the {transfer_syntax} written")
    if ts == walker.DEFLATED:
        data = _inflate(raw[meta_end:], *limit)
    elif ts == walker.EXPLICIT_LE:
        data = raw[meta_end:]
    else:
        raise walker.NotSupported(f"transfer syntax {ts}")
    top = _elements(data, 0, len(data))
    if max(top, default=0) != walker.PIXEL_DATA or top[walker.PIXEL_DATA][2] != len(data):
        raise ValueError("PixelData is not the last element, or the data ends before its end")
    for tag, expected_tag in ((0x00020002, 0x00080016), (0x00020003, 0x00080018)):
        if _text(raw, meta, tag) != _text(data, top, expected_tag):
            raise ValueError(f"file meta ({tag >> 16:04X},{tag & 0xFFFF:04X}) differs from the dataset's")
    return data, top


def _inflate(deflated: bytes, guess: int, limit: int) -> bytes:
    """``deflated`` inflated; it must end with its last block (an even-length pad byte may
    follow) and inflate to at most ``limit`` bytes (``guess``: the size expected).

    Raises
    ------
    ValueError
        Corrupt, truncated, followed by other bytes, or larger than ``limit``.
    """
    inflater = raw_inflater()
    try:
        # one output buffer of the expected size: inflating without a bound grows it step
        # by step (several ms for a 6.5 MB labelmap)
        data = inflater.decompress(deflated, guess + 1)
        if len(data) > guess and not inflater.eof:
            data += inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(data))
    except Exception as exc:  # zlib.error (zlib-ng raises its own class)
        raise ValueError(f"Deflated data is corrupt ({exc})") from None
    if len(data) > limit:
        raise ValueError(f"Deflated data inflates to more than {limit:,} bytes")
    rest = inflater.unused_data
    # the stream ends with its last block, then one NULL exactly when it has an odd length
    if not inflater.eof or rest != b"\x00" * ((len(deflated) - len(rest)) % 2):
        raise ValueError("the Deflated data is truncated or followed by other bytes")
    return bytes(data)


def _elements(buf: bytes, start: int, end: int) -> dict[int, tuple[str, int, int]]:
    """One dataset level: tag -> (VR, value start, value end), tags strictly ascending.

    Raises
    ------
    ValueError
        Tags out of order, or a broken element (the walker's ``Malformed``).
    """
    out: dict[int, tuple[str, int, int]] = {}
    last = -1
    for tag, vr, vs, ve, _es in walker.iter_elements(buf, start, end):
        if tag <= last:
            raise ValueError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) out of tag order")
        last = tag
        out[tag] = (vr.decode("ascii"), vs, ve)
    return out


def _value(buf: bytes, level: dict[int, tuple[str, int, int]], tag: int) -> Any:
    """The value of ``tag`` as the walker converts it (None when absent)."""
    if tag not in level:
        return None
    vr, vs, ve = level[tag]
    return walker.value({tag: (vr, bytes(buf[vs:ve]))}, tag)


def _text(buf: bytes, level: dict[int, tuple[str, int, int]], tag: int) -> str:
    value = _value(buf, level, tag)
    return "" if value is None else str(value)


def _numbers(buf: bytes, level: dict[int, tuple[str, int, int]], tag: int) -> list[float]:
    """All numbers of ``tag`` (``[]`` when absent)."""
    if tag not in level:
        return []
    vr, vs, ve = level[tag]
    return walker.numbers({tag: (vr, bytes(buf[vs:ve]))}, tag) or []


def _first_item(buf: bytes, level: dict[int, tuple[str, int, int]], tag: int) -> dict[int, tuple[str, int, int]]:
    """The elements of the first item of sequence ``tag``.

    Raises
    ------
    NotSupported
        The sequence is absent or empty (another layout: the decoder reads it).
    """
    if tag not in level or level[tag][0] != "SQ":
        raise walker.NotSupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) absent")
    for start, end, _after in walker.iter_items(buf, level[tag][1], level[tag][2]):
        return _elements(buf, start, end)
    raise walker.NotSupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) empty")


# --------------------------------------------------------------------- the checks
def _check_header(data: bytes, top: dict[int, tuple[str, int, int]], reference: Any, expected: Expected) -> None:
    """UIDs, SOP class and frame dimensions against what was meant.

    Raises
    ------
    ValueError
        Any of them differs.
    """
    grid = reference.grid
    want = {
        0x00080016: SegSopClass.LABELMAP.value, 0x00080018: expected.sop_instance_uid,
        0x0020000E: expected.series_instance_uid, 0x0020000D: reference.study_instance_uid,
        0x00200052: reference.frame_of_reference_uid or "",
        0x00280010: str(grid.shape_kji[1]), 0x00280011: str(grid.shape_kji[2]),
    }
    for tag, value in want.items():
        found = _text(data, top, tag)
        if found != value:
            raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is {found!r}, expected {value!r}")
    series = _text(data, _first_item(data, top, _REFERENCED_SERIES), 0x0020000E)
    if series != reference.series_instance_uid:
        raise ValueError(f"ReferencedSeriesSequence names series {series}, not {reference.series_instance_uid}")


def _frame_slices(data: bytes, top: dict[int, tuple[str, int, int]], grid: Any) -> np.ndarray:
    """The slice k of every frame (file order), from the functional groups.

    Raises
    ------
    ValueError
        Orientation or spacing not the grid's, a frame off the grid's slices, a slice twice,
        per-frame items not matching NumberOfFrames.
    NotSupported
        Orientation or measures not in the shared functional groups.
    """
    shared = _first_item(data, top, _SHARED)
    iop = _numbers(data, _first_item(data, shared, _PLANE_ORIENTATION), 0x00200037)
    spacing = _numbers(data, _first_item(data, shared, _PIXEL_MEASURES), 0x00280030)
    if len(iop) != 6 or not np.allclose(np.array(iop).reshape(2, 3).T, grid.direction[:, :2], atol=GEOMETRY_TOLERANCE):
        raise walker.NotSupported("frames not along the reference axes")
    if len(spacing) != 2 or not np.allclose(spacing[::-1], grid.spacing_ijk[:2], atol=GEOMETRY_TOLERANCE):
        raise ValueError(f"PixelSpacing {spacing} is not the reference's {list(grid.spacing_ijk[1::-1])}")
    if _PER_FRAME not in top:
        raise ValueError("no PerFrameFunctionalGroupsSequence")
    positions = []
    for start, end, _after in walker.iter_items(data, top[_PER_FRAME][1], top[_PER_FRAME][2]):
        item = _elements(data, start, end)
        positions.append(_numbers(data, _first_item(data, item, _PLANE_POSITION), 0x00200032))
    n = int(_value(data, top, 0x00280008) or 0)
    if len(positions) != n or any(len(p) != 3 for p in positions):
        raise ValueError(f"{len(positions)} per-frame positions for NumberOfFrames {n}")
    ijk = grid.lps_to_index(np.array(positions, dtype=float).reshape(n, 3))
    ks = np.rint(ijk[:, 2]).astype(np.int64)
    off = np.abs(ijk - np.column_stack([np.zeros((n, 2)), ks])).max(initial=0.0)
    if off > INDEX_TOLERANCE or (n and (ks.min() < 0 or ks.max() >= grid.shape_kji[0])):
        raise ValueError("a frame's ImagePositionPatient is not on a slice of the reference grid")
    if len(set(ks.tolist())) != n:
        raise ValueError("two frames are on the same slice")
    return np.asarray(ks)


def _segment_labels(data: bytes, top: dict[int, tuple[str, int, int]]) -> dict[int, int]:
    """SegmentNumber -> the label value recorded in its private block (the number itself
    when an item has none, as a reader restores it).

    Raises
    ------
    ValueError
        No SegmentSequence, an item without SegmentNumber, a number twice.
    """
    if _SEGMENTS not in top:
        raise ValueError("no SegmentSequence")
    out: dict[int, int] = {}
    for start, end, _after in walker.iter_items(data, top[_SEGMENTS][1], top[_SEGMENTS][2]):
        item = _elements(data, start, end)
        number = _value(data, item, 0x00620004)
        if not isinstance(number, int) or number in out:
            raise ValueError(f"SegmentSequence item with SegmentNumber {number!r} (missing or repeated)")
        out[number] = number
        for tag in [t for t in item if 0x00710010 <= t <= 0x007100FF]:  # private creators of group 0071
            if bytes(data[item[tag][1]:item[tag][2]]).rstrip(b" \x00") == _PRIVATE_CREATOR:
                label = _value(data, item, 0x00710000 | (tag & 0xFF) << 8 | 0x04)
                out[number] = int(label) if isinstance(label, int) else number
                break
    return out


def _compare_frames(data: bytes, top: dict[int, tuple[str, int, int]], array: np.ndarray, ks: np.ndarray,
                    label_of: dict[int, int], n_segments: int) -> int:
    """Compare the frames with the labelmap's slices ``ks``; the number of labelled voxels.

    Raises
    ------
    ValueError
        A labelled slice without frame, PixelData of another size, any voxel different.
    """
    nk, rows, cols = array.shape
    absent = np.setdiff1d(np.arange(nk), ks)
    if absent.size and array[absent].any():
        labelled = absent[array[absent].reshape(absent.size, -1).any(axis=1)]
        raise ValueError(f"slices {labelled[:10].tolist()} have labelled voxels but no frame")
    bits = int(_value(data, top, 0x00280100) or 0)
    want_bits = 8 if n_segments < 256 else 16  # the writer's pixel type (SegmentNumbers 1..N)
    if bits != want_bits:
        raise ValueError(f"BitsAllocated {bits}, expected {want_bits}")
    dtype = np.dtype("<u1" if bits == 8 else "<u2")
    _vr, vs, ve = top[walker.PIXEL_DATA]
    count = len(ks) * rows * cols
    if ve - vs not in (count * dtype.itemsize, count * dtype.itemsize + 1):
        raise ValueError(f"PixelData holds {ve - vs} bytes, {len(ks)} frames need {count * dtype.itemsize}")
    frames = np.frombuffer(data, dtype=dtype, count=count, offset=vs).reshape(len(ks), rows, cols)
    if any(v != n for n, v in label_of.items()):
        # a number without item decodes as itself ("Segment <n>"), as the reader does
        lut = np.arange(max(max(label_of), int(frames.max(initial=0))) + 1, dtype=np.int64)
        for n, v in label_of.items():
            lut[n] = v
        got: np.ndarray = lut[frames]
    else:
        got = frames
    if not np.array_equal(got, _slices(array, ks)):
        differ = int(np.count_nonzero(got != array[ks]))
        raise ValueError(f"{differ} voxels differ between the SEG and its source")
    return int(np.count_nonzero(frames))


def _slices(array: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """``array[ks]``, as a view when ``ks`` are consecutive slices (ascending or descending,
    the usual frame order), else a copy."""
    if ks.size > 1 and abs(int(ks[1]) - int(ks[0])) == 1 and np.all(np.diff(ks) == ks[1] - ks[0]):
        step = int(ks[1] - ks[0])
        stop = int(ks[-1]) + step
        view: np.ndarray = array[int(ks[0]):(stop if stop >= 0 else None):step]
        return view
    return np.asarray(array[ks])


__all__ = ["Expected", "verify_decoded", "verify_written", "INDEX_TOLERANCE", "GEOMETRY_TOLERANCE"]
