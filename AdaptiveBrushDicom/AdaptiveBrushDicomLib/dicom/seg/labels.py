"""Label values of a :class:`~.labelmap.LabelMap` checked and turned into SEG pixel data.

A LABELMAP SEG stores DICOM SegmentNumbers 1..N (in the order of the segments), not the
label values of the input; a BINARY SEG stores one boolean plane per segment. This module
decides which of the two a labelmap needs (overlapping layers cannot be a LABELMAP),
refuses labels a SEG cannot describe (duplicates, values < 1, voxels without a segment)
and builds the pixel array on the reference grid, (k, j, i) or (k, j, i, segment).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.errors import OverlapError, UserError


@dataclass
class Overlap:
    """Two segments sharing voxels."""

    first: Segment
    second: Segment
    voxels: int

    def __str__(self) -> str:
        return f"'{self.first.name}' and '{self.second.name}' share {self.voxels} voxels"


@dataclass
class SegPixels:
    """What a SEG stores for a labelmap: its pixel data and the segment of each number.

    Attributes
    ----------
    pixel : numpy.ndarray
        LABELMAP: SegmentNumbers, (k, j, i), uint8 for < 256 segments else uint16.
        BINARY: booleans, (k, j, i, segment).
    segments : list of Segment
        The segment of SegmentNumber 1..N, in order (labels unique, layer 0 after a flatten).
    binary : bool
        True when the segments overlap and ``pixel`` is the BINARY form.
    """

    pixel: np.ndarray
    segments: list[Segment]
    binary: bool


def find_overlaps(labelmap: LabelMap) -> list[Overlap]:
    """Pairs of segments (in different layers) that share voxels, with voxel counts.

    Cost: one pass per pair of layers over voxels that are non-zero in both layers.
    """
    if labelmap.n_layers == 1:
        return []
    found: list[Overlap] = []
    n = labelmap.n_layers
    for a in range(n):
        la = labelmap.layer(a)
        for b in range(a + 1, n):
            lb = labelmap.layer(b)
            both = (la != 0) & (lb != 0)
            if not both.any():
                continue
            pairs, counts = np.unique(np.stack([la[both], lb[both]]), axis=1, return_counts=True)
            for (va, vb), c in zip(pairs.T, counts):
                sa, sb = labelmap.segment_by_label(int(va), a), labelmap.segment_by_label(int(vb), b)
                if sa is not None and sb is not None:
                    found.append(Overlap(sa, sb, int(c)))
    return found


def flatten_layers(labelmap: LabelMap) -> tuple[np.ndarray, list[Segment]]:
    """Merge non-overlapping layers into one (k, j, i) array; labels stay unique by
    relabelling segments of later layers whose value is already used."""
    if labelmap.n_layers == 1:
        return labelmap.array, list(labelmap.segments)
    used: set[int] = set()
    out = np.zeros(labelmap.grid.shape_kji, dtype=np.int64)
    segments = []
    next_free = 1 + max((s.label for s in labelmap.segments), default=0)
    for s in labelmap.segments:
        label = s.label
        if label in used:
            label, next_free = next_free, next_free + 1
        used.add(label)
        out[labelmap.mask(s)] = label
        segments.append(replace(s, label=label, layer=0))
    return out, segments


def check_segments(array: np.ndarray, segments: list[Segment], where: str) -> None:
    """Refuse label values a LABELMAP SEG cannot describe.

    Parameters
    ----------
    array : numpy.ndarray
        Label values, (k, j, i).
    segments : list of Segment
        The segments describing ``array``.
    where : str
        The input's name for messages.

    Raises
    ------
    UserError
        Two segments use the same label value, a label value is < 1, or a value in
        ``array`` has no segment (the message says to describe or remove it).
    """
    labels = [s.label for s in segments]
    dup = {v for v, c in Counter(labels).items() if c > 1}  # linear: 70,000 labels took minutes
    if dup:
        raise UserError(f"{where}: several segments use label value(s) {sorted(dup)}")
    bad = [s.label for s in segments if s.label <= 0]
    if bad:
        raise UserError(f"{where}: segment label values must be >= 1, got {bad}")
    missing = undescribed_labels(array, labels)
    if missing:
        raise UserError(
            f"{where}: label value(s) {missing[:10]} have no segment description; "
            "describe them (e.g. --metadata) or remove them"
        )


def undescribed_labels(array: np.ndarray, labels: list[int]) -> list[int]:
    """Non-zero values of ``array`` that are not in ``labels``, sorted.

    Cost: min and max (two fast passes) when the labels cover 1..max, the usual case;
    otherwise one pass of a lookup table (never np.unique: it hashes every voxel)."""
    if array.size == 0:
        return []
    lo, hi = int(array.min()), int(array.max())
    described = set(labels)
    if lo >= 0 and hi <= len(described) and all(v in described for v in range(1, hi + 1)):
        return []
    if lo >= 0 and hi < 1 << 22:
        seen = np.zeros(hi + 1, dtype=bool)
        seen[array.ravel()] = True
        present = np.flatnonzero(seen)
    else:
        present = np.unique(array)
    return sorted(set(int(v) for v in present if v != 0) - described)


def labels_to_segment_numbers(array: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """Map label values to SegmentNumbers 1..N (segment order) with at most one pass.

    When every segment's label already equals its number (labels 1..N in order) the
    array is returned as it is (or cast once to the pixel dtype): no pass at all."""
    n = len(segments)
    dtype = np.uint8 if n < 256 else np.uint16
    max_label = max(s.label for s in segments) if segments else 0
    if all(s.label == number for number, s in enumerate(segments, start=1)) and array.size:
        if array.dtype == dtype:
            return array
        if np.issubdtype(array.dtype, np.integer) and int(array.min()) >= 0 and int(array.max()) <= n:
            return array.astype(dtype)
    if max_label < 1 << 22:
        lut = np.zeros(max_label + 1, dtype=dtype)
        for number, s in enumerate(segments, start=1):
            lut[s.label] = number
        return np.take(lut, array)
    out = np.zeros(array.shape, dtype=dtype)
    for number, s in enumerate(segments, start=1):
        out[array == s.label] = number
    return out


def seg_pixels(labelmap: LabelMap, *, allow_binary: bool, where: str) -> SegPixels:
    """The pixel data of ``labelmap`` (already on the reference grid) and its segments.

    Non-overlapping layers are flattened into one LABELMAP array of SegmentNumbers;
    overlapping ones give the BINARY form when ``allow_binary``.

    Parameters
    ----------
    labelmap : LabelMap
        Labels on the reference grid, (k, j, i) or (layer, k, j, i).
    allow_binary : bool
        Write BINARY (66.4) planes instead of refusing overlapping segments.
    where : str
        The input's name for messages.

    Raises
    ------
    OverlapError
        Segments share voxels and ``allow_binary`` is false (lists up to 10 pairs).
    UserError
        Labels :func:`check_segments` refuses, or no segment at all.
    """
    overlaps = find_overlaps(labelmap)
    if overlaps:
        if not allow_binary:
            listing = "; ".join(str(o) for o in overlaps[:10])
            raise OverlapError(
                f"{where}: overlapping segments cannot be stored as a LABELMAP SEG: {listing}. "
                "Remove the overlap or pass --allow-binary to write a BINARY SEG (66.4)"
            )
        segments = list(labelmap.segments)
    else:
        array, segments = flatten_layers(labelmap)
        check_segments(array, segments, where)
    if not segments:
        raise UserError(f"{where}: no segments to write")
    if overlaps:
        pixel = np.zeros(labelmap.grid.shape_kji + (len(segments),), dtype=bool)
        for n, s in enumerate(segments):
            pixel[..., n] = labelmap.mask(s)
        return SegPixels(pixel, segments, binary=True)
    return SegPixels(labels_to_segment_numbers(array, segments), segments, binary=False)
