"""Read any DICOM Segmentation into a :class:`~.labelmap.LabelMap` on the full reference grid.

Handles LABELMAP (66.7) and BINARY/FRACTIONAL (66.4) SEGs from any writer (ours,
highdicom, dcmqi). Frames are placed by their PlanePositionSequence, never by index, so
omitted empty frames, descending frame order and frames that reference only some source
images all decode correctly; missing slices come back as 0.

* With the reference series (``reference=``): the output grid is the series' grid, and
  the SEG must reference that series (ReferencedSeriesSequence) and share its Frame of
  Reference.
* Without it: the grid is derived from the SEG's own plane positions and spacing. Slices
  beyond the first and last stored frame cannot be known; ``DecodedSeg.notes`` says so.

PixelPaddingValue (0028,0120) in a LABELMAP is treated as background (0), like highdicom
does; dcmqi instead fills missing slices with it when writing NRRD.
"""

from __future__ import annotations

import copy
import struct
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.errors import InputFileError, ReferenceMismatchError, UserError
from AdaptiveBrushDicomLib.io.limits import check_file, check_voxels
from AdaptiveBrushDicomLib.core.align import align_to_grid
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap, label_dtype
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.private_tags import read_segment_private, written_by_us
from AdaptiveBrushDicomLib.dicom.seg import sanity
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.placement import placement_grid
from AdaptiveBrushDicomLib.core.segment import Segment

#: Fraction of a voxel a frame position may be off the lattice and still be placed.
LATTICE_TOLERANCE = 0.01


@dataclass
class DecodedSeg:
    """Result of :func:`read_seg`."""

    labelmap: LabelMap
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    referenced_series_uid: str | None
    frame_of_reference_uid: str | None
    series_description: str
    n_frames: int
    segmentation_type: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    dataset: object | None = None

    @property
    def is_labelmap(self) -> bool:
        return self.sop_class_uid == SegSopClass.LABELMAP


def _seq_first(ds, name):
    seq = getattr(ds, name, None)
    return seq[0] if seq else None


def _frame_geometry(ds, path: Path):
    """Per-frame positions (n, 3), shared orientation (6,), pixel spacing (row, col) and
    slice spacing (or None)."""
    shared = _seq_first(ds, "SharedFunctionalGroupsSequence")
    n = int(getattr(ds, "NumberOfFrames", 1))
    if "PerFrameFunctionalGroupsSequence" not in ds:
        raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) is missing or has the wrong length", path)
    orient = _seq_first(shared, "PlaneOrientationSequence") if shared is not None else None
    measures = _seq_first(shared, "PixelMeasuresSequence") if shared is not None else None
    raw = _raw_positions(ds, n) if orient is not None and measures is not None else None
    if raw is not None and orient is not None and measures is not None:
        iop = np.array(sanity.numbers(orient.get("ImageOrientationPatient"),
                                      "ImageOrientationPatient (0020,0037)", path))
        ps = sanity.numbers(measures.get("PixelSpacing"), "PixelSpacing (0028,0030)", path)
        gap = getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", None)
        return raw, iop, ps, (float(gap) if gap else None)
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if per_frame is None or len(per_frame) != n:
        raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) is missing or has the wrong length", path)

    def lookup(fg, seq_name):
        item = _seq_first(fg, seq_name) if fg is not None else None
        return item

    orient = lookup(shared, "PlaneOrientationSequence")
    measures = lookup(shared, "PixelMeasuresSequence")
    shared_pos = lookup(shared, "PlanePositionSequence")  # valid when every frame is at one position
    positions = np.empty((n, 3))
    for f, fg in enumerate(per_frame):
        pos = lookup(fg, "PlanePositionSequence") or shared_pos
        if pos is None:
            raise InputFileError(f"frame {f + 1} has no PlanePositionSequence (0020,9113); cannot place it", path)
        positions[f] = sanity.positions_of(pos.ImagePositionPatient, f, path)
        if orient is None:
            orient = lookup(fg, "PlaneOrientationSequence")
        if measures is None:
            measures = lookup(fg, "PixelMeasuresSequence")
    if orient is None:
        raise InputFileError("no PlaneOrientationSequence (0020,9116); cannot place frames", path)
    if measures is None:
        raise InputFileError("no PixelMeasuresSequence (0028,9110); cannot place frames", path)
    iop = np.array(sanity.numbers(orient.get("ImageOrientationPatient"),
                                      "ImageOrientationPatient (0020,0037)", path))
    ps = sanity.numbers(measures.get("PixelSpacing"), "PixelSpacing (0028,0030)", path)
    gap = getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", None)
    return positions, iop, ps, (float(gap) if gap else None)


def _segment_numbers_per_frame(ds, n: int) -> np.ndarray | None:
    """ReferencedSegmentNumber of every frame (per-frame groups, or the shared group,
    where highdicom puts it when a BINARY SEG has a single segment)."""
    shared = _seq_first(_seq_first(ds, "SharedFunctionalGroupsSequence"), "SegmentIdentificationSequence") \
        if "SharedFunctionalGroupsSequence" in ds else None
    per_frame = ds.PerFrameFunctionalGroupsSequence
    out = np.zeros(n, dtype=np.int64)
    for f, fg in enumerate(per_frame):
        item = _seq_first(fg, "SegmentIdentificationSequence") or shared
        if item is None:
            return None
        out[f] = int(item.ReferencedSegmentNumber)
    return out


def _grid_from_positions(positions, iop, ps, gap, rows, cols, path, notes) -> Grid:
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    d = positions @ normal
    uniq = np.unique(np.round(d, 3))
    if gap is None:
        gaps = np.diff(uniq)
        gap = float(gaps.min()) if gaps.size else 1.0
        notes.append("slice spacing not stated in the SEG; taken from the closest frames")
    origin = positions[int(np.argmin(d))]
    nk = int(round((uniq.max() - uniq.min()) / gap)) + 1 if uniq.size else 1
    notes.append(
        "no reference series given: grid derived from the SEG's frames; slices outside the first and "
        "last stored frame and the image series' full extent cannot be known"
    )
    direction = np.column_stack([row, col, normal])
    rel = uniq - uniq.min()
    if uniq.size > 2 and np.any(np.abs(rel - np.round(rel / gap) * gap) > 0.01):
        # frames of an irregularly spaced series: their own positions (made regular later)
        gaps = np.diff(rel)
        return Grid((len(rel), rows, cols), (ps[1], ps[0], float(np.median(gaps))), tuple(origin), direction,
                    slice_positions_mm=tuple(rel))
    return Grid((nk, rows, cols), (ps[1], ps[0], gap), tuple(origin), direction)


def _onto_regular_grid(labelmap: LabelMap, path: Path, notes: list[str]) -> LabelMap:
    """A labelmap on irregularly spaced slices, put onto the regular grid that holds every
    slice (:meth:`Grid.regular_cover`): exact; slices in between are empty.

    Raises
    ------
    ReferenceMismatchError
        The slice positions fit no regular grid (volume files cannot hold them exactly).
    """
    grid = labelmap.grid
    gaps = np.diff(grid.slice_positions())
    cover = grid.regular_cover()
    if cover is None:
        raise ReferenceMismatchError(
            f"the slices are irregularly spaced (gaps {gaps.min():.4g}..{gaps.max():.4g} mm) and lie on no regular "
            "grid, which .seg.nrrd/NIfTI files need; resample the image series to equal spacing first",
            path,
        )
    array = align_to_grid(labelmap.array, grid, cover, what=str(path))
    empty = cover.shape_kji[0] - grid.shape_kji[0]
    notes.append(
        f"slices irregularly spaced (gaps {gaps.min():.4g}..{gaps.max():.4g} mm): decoded onto a regular "
        f"{cover.spacing_ijk[2]:.4g} mm grid of {cover.shape_kji[0]} slices holding all {grid.shape_kji[0]} "
        f"image positions; {empty} slice(s) in between have no image and are empty"
    )
    return LabelMap(array, cover, labelmap.segments)


def _place_on_reference(positions, iop, ps, rows, cols, grid: Grid, for_uid, reference, path: Path,
                        notes: list[str]) -> tuple[Grid, np.ndarray]:
    """(grid the frames are placed on, placement) for a reference series.

    A FrameOfReferenceUID other than the reference's (pydicom-seg writes a new one, its
    issue #48) is accepted when every frame lies on the reference lattice within
    tolerance: one note says so. Otherwise the error names both UIDs and the mismatch.
    """
    ref_for = reference.frame_of_reference_uid
    for_differs = bool(for_uid and ref_for and for_uid != ref_for)
    try:
        frame_grid = placement_grid(grid, iop, ps, path)
        place = _place_frames(positions, frame_grid, rows, cols, path)
    except ReferenceMismatchError as exc:
        if not for_differs:
            raise
        detail = str(exc)[len(f"{path}: "):] if str(exc).startswith(f"{path}: ") else str(exc)
        raise ReferenceMismatchError(
            f"FrameOfReferenceUID (0020,0052) {for_uid} differs from the reference series' {ref_for}, and the "
            f"geometry does not match either: {detail}",
            path,
        ) from None
    if for_differs:
        notes.append(
            f"FrameOfReferenceUID (0020,0052) {for_uid} differs from the reference series' {ref_for}, but every "
            "frame lies on the reference's voxel lattice: decoded onto it (some writers, e.g. pydicom-seg, write a new UID)"
        )
    return frame_grid, place


def _place_frames(positions: np.ndarray, grid: Grid, rows: int, cols: int, path: Path) -> np.ndarray:
    """(n, 3) integer (k, j0, i0) of each frame's first pixel in ``grid``; error if off-lattice."""
    idx = grid.lps_to_index(positions)  # (n, 3) continuous (i, j, k)
    r = np.round(idx)
    if np.any(np.abs(idx - r) > LATTICE_TOLERANCE * 10):
        bad = int(np.argmax(np.max(np.abs(idx - r), axis=1)))
        raise ReferenceMismatchError(
            f"frame {bad + 1} at {positions[bad].round(3).tolist()} mm is not on the reference grid's lattice; "
            "give the series the SEG was made for",
            path,
        )
    r = r.astype(np.int64)
    i0, j0, k = r[:, 0], r[:, 1], r[:, 2]
    if (
        np.any(k < 0) or np.any(k >= grid.shape_kji[0])
        or np.any(j0 < 0) or np.any(j0 + rows > grid.shape_kji[1])
        or np.any(i0 < 0) or np.any(i0 + cols > grid.shape_kji[2])
    ):
        raise ReferenceMismatchError("frames lie outside the reference series' extent", path)
    return np.stack([k, j0, i0], axis=1)


# ------------------------------------------------------------------ raw fast paths
# pydicom converts nested sequences lazily, one Dataset and one element at a time; for
# a few hundred per-frame items that costs more than the pixels. These helpers walk the
# raw Explicit VR Little Endian bytes of a not-yet-converted sequence instead; any
# surprise (implicit VR, big endian, odd lengths) returns None and the pydicom path runs.
# The walking itself is the one raw walker's (dicom/walker.py).
_RawError = (walker.Malformed, walker.NotSupported)


def _raw_sequence(ds, keyword_tag: int) -> bytes | None:
    """Raw value of a sequence element that pydicom has not converted yet (else None)."""
    elem = ds.get_item(keyword_tag)
    if elem is None or not getattr(elem, "is_raw", False):
        return None
    if elem.is_implicit_VR or not elem.is_little_endian or not isinstance(elem.value, bytes):
        return None
    return elem.value


def _raw_positions(ds, n: int) -> np.ndarray | None:
    """ImagePositionPatient of each frame from the raw PerFrameFunctionalGroupsSequence."""
    buf = _raw_sequence(ds, 0x52009230)
    if buf is None:
        return None
    try:
        out = np.empty((n, 3))
        f = -1
        for f, (s, e, _) in enumerate(walker.iter_items(buf, 0, len(buf))):
            if f >= n:
                return None
            hit = walker.find_element(buf, s, e, 0x00209113)  # PlanePositionSequence
            if hit is None:
                return None
            _, vs, ve = hit
            item = next(walker.iter_items(buf, vs, ve))
            pos = walker.find_element(buf, item[0], item[1], 0x00200032)  # ImagePositionPatient
            if pos is None:
                return None
            values = buf[pos[1]:pos[2]].decode("ascii").strip(" \x00").split("\\")
            out[f] = [float(v) for v in values]
        return out if f == n - 1 else None
    except (*_RawError, struct.error, ValueError, StopIteration, UnicodeDecodeError):
        return None


#: raw SegmentSequence item bytes -> (number, Segment): decoding the same segments again
#: (re-verification, gold standards) skips pydicom's conversion entirely.
_SEGMENT_CACHE: dict[bytes, tuple[int, Segment]] = {}
#: the same item without its AlgorithmParameters -> (number, Segment without parameters):
#: trials of one run differ only in parameters, so only those are parsed per trial.
_PARAMLESS_CACHE: dict[bytes, tuple[int, Segment]] = {}
_ALG_SEQ, _ALG_PARAMS, _PARAMS_TEXT = 0x00620007, 0x00660032, "algorithm_parameters_text"


def _split_parameters(body: bytes) -> tuple[bytes, bytes] | None:
    """(item bytes without the AlgorithmParameters element, its raw value) or None."""
    hit = walker.find_element(body, 0, len(body), _ALG_SEQ)
    if hit is None:
        return None
    items = list(walker.iter_items(body, hit[1], hit[2]))
    if len(items) != 1:
        return None
    s, e, _ = items[0]
    for tag, _vr, vs, ve, es in walker.iter_elements(body, s, e):
        if tag == _ALG_PARAMS:
            return body[:es] + body[ve:], body[vs:ve]
        if tag > _ALG_PARAMS:
            return None
    return None


def _with_parameters(base: Segment, raw_value: bytes) -> Segment:
    """What ``from_segment_item`` makes of AlgorithmParameters (see segment_dicom)."""
    from pydicom.values import convert_single_string

    from AdaptiveBrushDicomLib.dicom.segment_text import parse_parameters

    parameters, raw = parse_parameters(str(convert_single_string(raw_value, ["iso8859"], "LT")))
    extra = dict(base.extra)
    if raw is not None:
        extra[_PARAMS_TEXT] = raw
    return replace(base, algorithm_parameters=parameters, extra=extra)


def _check_segment_item(item, index: int, seg_type: str, path: Path) -> int:
    """SegmentNumber of SegmentSequence item ``index`` (1-based) after checking that the
    item is whole: a SegmentNumber, a SegmentLabel (both Type 1), a three-value colour
    if any, and no unknown standard element (what a damaged tag turns into).

    Raises
    ------
    InputFileError
        Naming the item and the attribute.
    """
    from pydicom.datadict import dictionary_has_tag

    where = f"SegmentSequence (0062,0002) item {index}"
    try:
        number = int(item.SegmentNumber)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InputFileError(f"{where}: SegmentNumber (0062,0004) is missing or not a number ({exc}); "
                             "the item is damaged", path) from None
    if not 0 <= number <= 0xFFFF:
        raise InputFileError(f"{where}: SegmentNumber (0062,0004) {number} is out of range 0..65535", path)
    where += f" (SegmentNumber {number})"
    for elem in item:
        tag = elem.tag
        if tag.group % 2 == 0 and tag.element != 0 and not dictionary_has_tag(tag):
            raise InputFileError(f"{where}: unknown element {tag} (a damaged tag?); the item is corrupt", path)
    if not (seg_type == "LABELMAP" and number == 0):
        label = item.get("SegmentLabel")
        if label is None or not str(label).strip():
            raise InputFileError(f"{where}: SegmentLabel (0062,0005), a required attribute, is missing or "
                                 "empty; the item is damaged", path)
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None:
        from pydicom.multival import MultiValue

        values = list(lab) if isinstance(lab, (list, tuple, MultiValue)) else [lab]
        if len(values) != 3 or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in values):
            raise InputFileError(f"{where}: RecommendedDisplayCIELabValue (0062,000D) must be three values "
                                 f"0..65535, got {lab!r}", path)
    return number


def _read_segments(ds, seg_type: str, path: Path | None = None) -> dict[int, Segment]:
    """Segments by SegmentNumber (the LABELMAP Background item 0 left out).

    Raises
    ------
    InputFileError
        A damaged item (:func:`_check_segment_item`) or two items with one SegmentNumber.
    """
    path = path or Path(str(getattr(ds, "filename", "") or "SEG"))
    from AdaptiveBrushDicomLib.dicom.segment_item import from_segment_item

    buf = _raw_sequence(ds, 0x00620002)
    bodies = None
    if buf is not None:
        try:
            bodies = [buf[s:e] for s, e, _ in walker.iter_items(buf, 0, len(buf))]
        except (*_RawError, struct.error):
            bodies = None
    charset = ds.get("SpecificCharacterSet")
    ours = written_by_us(ds)
    # the cache key says how the bytes are read: character set, and whether TrackingIDs are ours
    prefix = (repr(charset) + ("|ours" if ours else "")).encode() + b"|"
    default_charset = not charset or str(charset) in ("ISO_IR 6", "ISO_IR 100")
    items = None
    out: dict[int, Segment] = {}
    item_of: dict[int, int] = {}
    try:
        count = len(bodies) if bodies is not None else len(getattr(ds, "SegmentSequence", []))
    except Exception as exc:  # pydicom raises many types for damaged sequences
        raise InputFileError(f"SegmentSequence (0062,0002) cannot be read ({exc})", path) from None
    for i in range(count):
        key = None if bodies is None else prefix + bodies[i]
        hit = _SEGMENT_CACHE.get(key) if key is not None else None
        split = None
        if hit is None and bodies is not None and default_charset:
            try:
                split = _split_parameters(bodies[i])
            except (*_RawError, struct.error):
                split = None
            if split is not None:
                base = _PARAMLESS_CACHE.get(prefix + split[0])
                if base is not None:
                    hit = (base[0], _with_parameters(base[1], split[1]))
        if hit is None:
            if items is None:
                items = getattr(ds, "SegmentSequence", [])
            item = items[i]
            _check_segment_item(item, i + 1, seg_type, path)
            try:
                number, segment = from_segment_item(item, written_by_us=ours)
                segment = read_segment_private(item, segment)
            except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
                raise InputFileError(f"SegmentSequence (0062,0002) item {i + 1}: cannot be read ({exc}); "
                                     "the item is damaged", path) from None
            hit = (number, segment)
            if key is not None:
                if len(_SEGMENT_CACHE) > 8192:
                    _SEGMENT_CACHE.clear()
                    _PARAMLESS_CACHE.clear()
                _SEGMENT_CACHE[key] = hit
                if split is not None:
                    extra = {k: v for k, v in segment.extra.items() if k != _PARAMS_TEXT}
                    _PARAMLESS_CACHE[prefix + split[0]] = (
                        number, replace(segment, algorithm_parameters=None, extra=extra))
        number, segment = hit
        if number in item_of:
            raise InputFileError(
                f"SegmentSequence (0062,0002) items {item_of[number]} and {i + 1} both have SegmentNumber "
                f"{number} ('{out[number].name if number in out else 'Background'}' and '{segment.name}'); "
                "one description would be lost: ask the producer to number segments uniquely", path)
        item_of[number] = i + 1
        if seg_type == "LABELMAP" and number == 0:
            continue  # the Background item highdicom / dcmqi add
        # callers own their records; the caches keep their own (Code/Terminology are frozen)
        out[number] = replace(segment, algorithm_parameters=copy.deepcopy(segment.algorithm_parameters),
                              extra=copy.deepcopy(segment.extra))
    return out


def _dcmread(path: Path):
    """pydicom.dcmread with the walker's capped inflate for Deflated files (zlib-ng when
    installed, 2-3x faster than zlib); the inflated size is capped by what the header
    implies, itself capped by ``--max-voxels``."""
    return walker.dcmread(path)


def _native_frames(ds, n: int, rows: int, cols: int) -> np.ndarray | None:
    """Frames of native (uncompressed) 8/16-bit pixel data as a view of PixelData."""
    ts = str(ds.file_meta.TransferSyntaxUID)
    if ts not in (Compression.EXPLICIT.uid, Compression.DEFLATE.uid, ReadOnlySyntax.IMPLICIT.uid):
        return None
    bits = int(getattr(ds, "BitsAllocated", 0))
    if bits not in (8, 16, 32) or int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        return None
    if int(getattr(ds, "PixelRepresentation", 0)) != 0:
        return None
    data = ds.get("PixelData")
    if not isinstance(data, (bytes, bytearray)):
        return None
    count = n * rows * cols
    dtype = np.dtype({8: "<u1", 16: "<u2", 32: "<u4"}[bits])
    if len(data) < count * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype=dtype, count=count).reshape(n, rows, cols)


#: Transfer syntaxes whose PixelData is native (not encapsulated), so its length is known.
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")


def _check_pixel_data_length(ds, n: int, rows: int, cols: int, path: Path) -> None:
    """Refuse native PixelData longer than Rows x Columns x NumberOfFrames x BitsAllocated
    declare (beyond the one pad byte to an even length).

    Decision: an error, not a note. Such a file is inconsistent (NumberOfFrames, Rows or
    BitsAllocated is wrong, or two objects were concatenated) and which bytes are the
    frames cannot be known; reading the first part "without a word" is what issue 14 found.
    Shorter PixelData is left to the decoder, which refuses it.
    """
    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in _NATIVE_SYNTAXES:
        return
    elem = ds.get("PixelData")
    if elem is None or not isinstance(elem, (bytes, bytearray)):
        return
    bits = int(getattr(ds, "BitsAllocated", 8) or 8)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    expected = -(-n * rows * cols * samples * bits // 8)  # bits 1: packed, rounded up
    if len(elem) > expected + (expected % 2):
        raise InputFileError(
            f"PixelData (7FE0,0010) has {len(elem):,} bytes, but Rows {rows} x Columns {cols} x NumberOfFrames "
            f"{n} x BitsAllocated {bits} declare {expected:,}; the file is inconsistent (wrong NumberOfFrames?): "
            "ask the producer for a corrected file",
            path,
        )


def read_seg(path: str | Path, reference: ReferenceSeries | str | Path | None = None, *,
             keep_irregular: bool = False) -> DecodedSeg:
    """Decode a SEG file (see module docstring).

    ``keep_irregular``: with an irregularly spaced reference series, return the labelmap
    on the series' own slices (a Grid with ``slice_positions_mm``) instead of on the
    regular grid that holds them all (the default, which volume files can store).
    """
    from pydicom.errors import InvalidDicomError

    t0 = time.perf_counter()
    path = Path(path)
    check_file(path, what="SEG file")
    if reference is not None and not isinstance(reference, ReferenceSeries):
        reference = ReferenceSeries.from_folder(reference)
    try:
        ds = _dcmread(path)
    except UserError:
        raise
    except (InvalidDicomError, *_MALFORMED) as exc:
        raise InputFileError(f"not a readable DICOM file ({_detail(exc)})", path) from None
    try:
        return _decode(ds, path, reference, t0, keep_irregular)
    except UserError:
        raise
    except MemoryError:
        raise InputFileError("too large to decode in the memory available; lower --max-voxels or free memory",
                             path) from None
    except _MALFORMED as exc:
        # pydicom converts lazily, so a broken element surfaces wherever it is first read
        raise InputFileError(f"malformed SEG ({_detail(exc)}); the file does not follow the DICOM standard, "
                             "ask its producer for a valid one", path) from None


#: What pydicom / numpy raise on values a hostile or broken header holds.
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, struct.error, RecursionError,
              OverflowError, UnicodeError, EOFError, NotImplementedError, RuntimeError, OSError)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "sequences nested too deeply"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _decode(ds, path: Path, reference: ReferenceSeries | None, t0: float, keep_irregular: bool) -> DecodedSeg:
    """The body of :func:`read_seg` once the file is parsed."""
    sop_class = str(getattr(ds, "SOPClassUID", ""))
    if sop_class not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(
            f"SOPClassUID (0008,0016) is {sop_class or 'missing'}, not a Segmentation "
            f"({SegSopClass.LABELMAP} or {SegSopClass.SEGMENTATION})",
            path,
        )
    notes: list[str] = []
    seg_type = str(getattr(ds, "SegmentationType", "LABELMAP" if sop_class == SegSopClass.LABELMAP else ""))
    ref_item = _seq_first(ds, "ReferencedSeriesSequence")
    ref_series = str(ref_item.SeriesInstanceUID) if ref_item is not None else None
    for_uid = str(getattr(ds, "FrameOfReferenceUID", "")) or None
    rows, cols = int(ds.Rows), int(ds.Columns)
    n = int(getattr(ds, "NumberOfFrames", 1))
    sanity.check_dimensions(rows, cols, n, path)
    sanity.refuse_2d(ds, path)

    positions, iop, ps, gap = _frame_geometry(ds, path)
    gap = sanity.check_plane_geometry(positions, iop, ps, gap, path)
    if reference is not None:
        if ref_series is not None and ref_series != reference.series_instance_uid:
            raise ReferenceMismatchError(
                f"SEG references series {ref_series} (ReferencedSeriesSequence), but the reference folder holds "
                f"series {reference.series_instance_uid}; give the referenced series",
                path,
            )
        grid = reference.grid
        frame_grid, place = _place_on_reference(positions, iop, ps, rows, cols, grid, for_uid, reference, path, notes)
    else:
        grid = _grid_from_positions(positions, iop, ps, gap, rows, cols, path, notes)
        check_voxels(int(np.prod(grid.shape_kji, dtype=np.int64)), "the grid the SEG's frames span", path)
        frame_grid = placement_grid(grid, iop, ps, path)
        place = _place_frames(positions, frame_grid, rows, cols, path)

    # segments, by SegmentNumber (never by position in the sequence)
    segments = _read_segments(ds, seg_type, path)

    bits = int(getattr(ds, "BitsAllocated", 0) or 0)
    if seg_type == "LABELMAP" and bits not in (8, 16, 32):
        raise InputFileError(f"BitsAllocated (0028,0100) is {bits}; a LABELMAP SEG stores 8 or 16 bits per pixel",
                             path)
    _check_pixel_data_length(ds, n, rows, cols, path)
    sanity.check_codestream_sizes(ds, rows, cols, path)
    pixels = _native_frames(ds, n, rows, cols) if seg_type == "LABELMAP" else None
    try:
        if pixels is None:
            pixels = ds.pixel_array
    except Exception as exc:  # missing decoder plugin, corrupt fragments, ...
        raise InputFileError(f"cannot decode pixel data ({_detail(exc)}); the data is corrupt, or a decoder "
                             "is missing (install pylibjpeg / pyjpegls)", path) from None
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    padding = getattr(ds, "PixelPaddingValue", None)
    if seg_type == "LABELMAP":
        array = _decode_labelmap(pixels, place, frame_grid, padding, path)
        if padding is not None and int(padding) != 0:
            notes.append(f"PixelPaddingValue {int(padding)} treated as background (0)")
        from AdaptiveBrushDicomLib.dicom.seg.labels import undescribed_labels

        undescribed = undescribed_labels(array, list(segments))
        if undescribed:
            notes.append(f"pixel value(s) {undescribed[:10]} have no SegmentSequence item; decoded as "
                         "'Segment <n>' with label <n>")
        labelmap = restore_labels(array, frame_grid, segments, ds)
    else:
        frame_segments = _segment_numbers_per_frame(ds, n)
        if frame_segments is None:
            raise InputFileError("frames lack SegmentIdentificationSequence (0062,000A)", path)
        if seg_type == "FRACTIONAL":
            maxv = float(getattr(ds, "MaximumFractionalValue", 255))
            pixels = pixels.astype(np.float32) / maxv >= 0.5
            notes.append("FRACTIONAL segmentation thresholded at 0.5")
        labelmap = _decode_binary(pixels, place, frame_segments, frame_grid, segments, ds, path, notes)
    if frame_grid is not grid:  # frames in another orientation: exact re-indexing, no resampling
        labelmap = LabelMap(align_to_grid(labelmap.array, frame_grid, grid, what=str(path)), grid, labelmap.segments)
    if not grid.is_regular and not keep_irregular:
        labelmap = _onto_regular_grid(labelmap, path, notes)
    return DecodedSeg(
        labelmap=labelmap,
        sop_class_uid=sop_class,
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_instance_uid=str(getattr(ds, "StudyInstanceUID", "")),
        referenced_series_uid=ref_series,
        frame_of_reference_uid=for_uid,
        series_description=str(getattr(ds, "SeriesDescription", "")),
        n_frames=n,
        segmentation_type=seg_type,
        seconds=time.perf_counter() - t0,
        notes=notes,
        dataset=ds,
    )


def _decode_labelmap(pixels: np.ndarray, place: np.ndarray, grid: Grid, padding, path: Path) -> np.ndarray:
    rows, cols = pixels.shape[1:]
    # unsigned of the stored width: BitsAllocated 32 keeps 70000 (a uint16 made it 4464)
    dtype = np.dtype(f"u{max(1, pixels.dtype.itemsize)}")
    out = np.zeros(grid.shape_kji, dtype=dtype)
    seen = np.zeros(grid.shape_kji[0], dtype=bool)
    full_plane = rows == grid.shape_kji[1] and cols == grid.shape_kji[2]
    for f in range(pixels.shape[0]):
        k, j0, i0 = place[f]
        frame = pixels[f]
        if padding is not None and int(padding) != 0:
            frame = np.where(frame == int(padding), 0, frame)
        if seen[k] and full_plane:
            raise InputFileError(
                f"two LABELMAP frames at slice {k} (same plane position): the SEG encodes overlapping "
                "segments, which a LABELMAP must not; ask the producer for a BINARY SEG",
                path,
            )
        seen[k] = True
        out[k, j0 : j0 + rows, i0 : i0 + cols] = frame
    return out


def _decode_binary(pixels, place, frame_segments, grid, segments, ds, path, notes) -> LabelMap:
    """BINARY frames -> one layer if segments do not overlap, else several layers."""
    rows, cols = pixels.shape[1:]
    in_frames = set(int(v) for v in frame_segments)
    undescribed = sorted(in_frames - set(segments))
    if undescribed:
        notes.append(
            f"frames of SegmentNumber(s) {undescribed[:10]} have no SegmentSequence item; decoded as "
            f"'Segment <n>' with label <n>")
    numbers = sorted(set(segments) | in_frames)
    masks: dict[int, np.ndarray] = {}
    for f in range(pixels.shape[0]):
        num = int(frame_segments[f])
        if num not in masks:
            masks[num] = np.zeros(grid.shape_kji, dtype=bool)
        k, j0, i0 = place[f]
        masks[num][k, j0 : j0 + rows, i0 : i0 + cols] |= pixels[f].astype(bool)
    # assign each segment to the first layer where it does not overlap
    layers: list[np.ndarray] = []
    layer_of: dict[int, int] = {}
    for num in numbers:
        m = masks.get(num)
        placed = False
        for li, layer in enumerate(layers):
            if m is None or not np.any(layer[m]):
                layer_of[num] = li
                if m is not None:
                    layer[m] = num
                placed = True
                break
        if not placed:
            layer = np.zeros(grid.shape_kji, dtype=label_dtype(max(numbers)))
            if m is not None:
                layer[m] = num
            layers.append(layer)
            layer_of[num] = len(layers) - 1
    if not layers:
        layers.append(np.zeros(grid.shape_kji, dtype=np.uint8))
    if len(layers) > 1:
        notes.append(f"BINARY segments overlap: decoded into {len(layers)} layers")
    array = layers[0] if len(layers) == 1 else np.stack(layers)
    return restore_labels(array, grid, segments, ds, layer_of=layer_of)


def restore_labels(
    array: np.ndarray,
    grid: Grid,
    segments: dict[int, Segment],
    ds,
    layer_of: dict[int, int] | None = None,
) -> LabelMap:
    """Turn an array of SegmentNumbers into the original label values.

    ``segments`` maps SegmentNumber -> Segment whose ``label`` is the original label
    value when the SEG recorded one (our files do), else the SegmentNumber itself.
    Numbers present in the pixels but not described get a "Segment <n>" record.
    """
    from dataclasses import replace

    from AdaptiveBrushDicomLib.dicom.seg.labels import undescribed_labels

    segs = dict(segments)
    for num in undescribed_labels(array, list(segs)):
        segs[num] = Segment(label=num, name=f"Segment {num}")
    layer_of = layer_of or {}
    keys = [(s.label, layer_of.get(n, 0)) for n, s in segs.items()]
    if len(set(keys)) != len(keys):  # conflicting records: fall back to numbers
        segs = {n: replace(s, label=n) for n, s in segs.items()}
    ordered = [replace(segs[n], layer=layer_of.get(n, 0)) for n in sorted(segs)]
    if all(s.label == n for n, s in zip(sorted(segs), ordered)):
        return LabelMap(array, grid, ordered)
    max_num = max(segs)
    max_label = max(s.label for s in ordered)
    dtype = label_dtype(max_label)
    lut = np.zeros(max_num + 1, dtype=dtype)
    for n in segs:
        lut[n] = segs[n].label
    return LabelMap(lut[array], grid, ordered)
