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

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import LABELMAP_SEG_SOP_CLASS_UID, SEG_SOP_CLASS_UID
from .errors import InputFileError, ReferenceMismatchError
from .geometry import Grid
from .labelmap import LabelMap
from .private_tags import read_segment_private
from .reference import ReferenceSeries
from .segment import Segment

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
        return self.sop_class_uid == LABELMAP_SEG_SOP_CLASS_UID


def _seq_first(ds, name):
    seq = getattr(ds, name, None)
    return seq[0] if seq else None


def _frame_geometry(ds, path: Path):
    """Per-frame positions (n, 3), shared orientation (6,), pixel spacing (row, col) and
    slice spacing (or None)."""
    shared = _seq_first(ds, "SharedFunctionalGroupsSequence")
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    n = int(getattr(ds, "NumberOfFrames", 1))
    if per_frame is None or len(per_frame) != n:
        raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) is missing or has the wrong length", path)

    def lookup(fg, seq_name):
        item = _seq_first(fg, seq_name) if fg is not None else None
        return item

    orient = lookup(shared, "PlaneOrientationSequence")
    measures = lookup(shared, "PixelMeasuresSequence")
    positions = np.empty((n, 3))
    for f, fg in enumerate(per_frame):
        pos = lookup(fg, "PlanePositionSequence")
        if pos is None:
            raise InputFileError(f"frame {f + 1} has no PlanePositionSequence (0020,9113); cannot place it", path)
        positions[f] = [float(v) for v in pos.ImagePositionPatient]
        if orient is None:
            orient = lookup(fg, "PlaneOrientationSequence")
        if measures is None:
            measures = lookup(fg, "PixelMeasuresSequence")
    if orient is None:
        raise InputFileError("no PlaneOrientationSequence (0020,9116); cannot place frames", path)
    if measures is None:
        raise InputFileError("no PixelMeasuresSequence (0028,9110); cannot place frames", path)
    iop = np.array([float(v) for v in orient.ImageOrientationPatient])
    ps = [float(v) for v in measures.PixelSpacing]
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
    return Grid((nk, rows, cols), (ps[1], ps[0], gap), tuple(origin), np.column_stack([row, col, normal]))


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
        np.any(k < 0) or np.any(k >= grid.shape[0])
        or np.any(j0 < 0) or np.any(j0 + rows > grid.shape[1])
        or np.any(i0 < 0) or np.any(i0 + cols > grid.shape[2])
    ):
        raise ReferenceMismatchError("frames lie outside the reference series' extent", path)
    return np.stack([k, j0, i0], axis=1)


def read_seg(path: str | Path, reference: ReferenceSeries | str | Path | None = None) -> DecodedSeg:
    """Decode a SEG file (see module docstring)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from .segment_dicom import from_segment_item

    t0 = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise InputFileError("no such file; check the path", path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputFileError(f"not a readable DICOM file ({exc})", path) from None
    sop_class = str(getattr(ds, "SOPClassUID", ""))
    if sop_class not in (LABELMAP_SEG_SOP_CLASS_UID, SEG_SOP_CLASS_UID):
        raise InputFileError(
            f"SOPClassUID (0008,0016) is {sop_class or 'missing'}, not a Segmentation "
            f"({LABELMAP_SEG_SOP_CLASS_UID} or {SEG_SOP_CLASS_UID})",
            path,
        )
    notes: list[str] = []
    if reference is not None and not isinstance(reference, ReferenceSeries):
        reference = ReferenceSeries.from_folder(reference)
    seg_type = str(getattr(ds, "SegmentationType", "LABELMAP" if sop_class == LABELMAP_SEG_SOP_CLASS_UID else ""))
    ref_item = _seq_first(ds, "ReferencedSeriesSequence")
    ref_series = str(ref_item.SeriesInstanceUID) if ref_item is not None else None
    for_uid = str(getattr(ds, "FrameOfReferenceUID", "")) or None
    rows, cols = int(ds.Rows), int(ds.Columns)
    n = int(getattr(ds, "NumberOfFrames", 1))

    positions, iop, ps, gap = _frame_geometry(ds, path)
    if reference is not None:
        if ref_series is not None and ref_series != reference.series_instance_uid:
            raise ReferenceMismatchError(
                f"SEG references series {ref_series} (ReferencedSeriesSequence), but the reference folder holds "
                f"series {reference.series_instance_uid}; give the referenced series",
                path,
            )
        if for_uid and reference.frame_of_reference_uid and for_uid != reference.frame_of_reference_uid:
            raise ReferenceMismatchError(
                f"FrameOfReferenceUID (0020,0052) {for_uid} differs from the reference series' "
                f"{reference.frame_of_reference_uid}",
                path,
            )
        grid = reference.grid
        if not np.allclose(iop, np.concatenate([grid.direction[:, 0], grid.direction[:, 1]]), atol=1e-3):
            raise ReferenceMismatchError("SEG frames are oriented differently from the reference series", path)
    else:
        grid = _grid_from_positions(positions, iop, ps, gap, rows, cols, path, notes)
    if not np.allclose([ps[1], ps[0]], grid.spacing[:2], atol=1e-3):
        raise ReferenceMismatchError(
            f"PixelSpacing {ps} differs from the reference's {[grid.spacing[1], grid.spacing[0]]}", path
        )
    place = _place_frames(positions, grid, rows, cols, path)

    # segments, by SegmentNumber (never by position in the sequence)
    segments: dict[int, Segment] = {}
    for item in getattr(ds, "SegmentSequence", []):
        number, segment = from_segment_item(item)
        segment = read_segment_private(item, segment)
        if seg_type == "LABELMAP" and number == 0:
            continue  # the Background item highdicom / dcmqi add
        segments[number] = segment

    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing decoder plugin, corrupt fragments, ...
        raise InputFileError(f"cannot decode pixel data ({exc}); install pylibjpeg / pyjpegls", path) from None
    if n == 1:
        pixels = pixels[np.newaxis]
    padding = getattr(ds, "PixelPaddingValue", None)
    if seg_type == "LABELMAP":
        array = _decode_labelmap(pixels, place, grid, padding, path)
        if padding is not None and int(padding) != 0:
            notes.append(f"PixelPaddingValue {int(padding)} treated as background (0)")
        labelmap = restore_labels(array, grid, segments, ds)
    else:
        frame_segments = _segment_numbers_per_frame(ds, n)
        if frame_segments is None:
            raise InputFileError("frames lack SegmentIdentificationSequence (0062,000A)", path)
        if seg_type == "FRACTIONAL":
            maxv = float(getattr(ds, "MaximumFractionalValue", 255))
            pixels = pixels.astype(np.float32) / maxv >= 0.5
            notes.append("FRACTIONAL segmentation thresholded at 0.5")
        labelmap = _decode_binary(pixels, place, frame_segments, grid, segments, ds, path, notes)
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
    dtype = np.uint8 if pixels.dtype.itemsize == 1 else np.uint16
    out = np.zeros(grid.shape, dtype=dtype)
    seen = np.zeros(grid.shape[0], dtype=bool)
    full_plane = rows == grid.shape[1] and cols == grid.shape[2]
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
    numbers = sorted(segments) if segments else sorted(set(int(v) for v in frame_segments))
    masks: dict[int, np.ndarray] = {}
    for f in range(pixels.shape[0]):
        num = int(frame_segments[f])
        if num not in masks:
            masks[num] = np.zeros(grid.shape, dtype=bool)
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
            layer = np.zeros(grid.shape, dtype=np.uint16 if max(numbers) > 255 else np.uint8)
            if m is not None:
                layer[m] = num
            layers.append(layer)
            layer_of[num] = len(layers) - 1
    if not layers:
        layers.append(np.zeros(grid.shape, dtype=np.uint8))
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

    present = set(int(v) for v in np.unique(array) if v != 0)
    segs = dict(segments)
    for num in sorted(present - set(segs)):
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
    dtype = np.uint8 if max_label < 256 else (np.uint16 if max_label < 65536 else np.uint32)
    lut = np.zeros(max_num + 1, dtype=dtype)
    for n in segs:
        lut[n] = segs[n].label
    return LabelMap(lut[array], grid, ordered)
