"""Decoded SEG frames -> a :class:`~.labelmap.LabelMap` with the original label values.

LABELMAP frames are placed as they are; BINARY frames become one layer per set of
segments that do not overlap. SegmentNumbers are turned back into the label values the
SEG recorded (ours do), with "Segment <n>" records for undescribed values.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap, label_dtype
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom.seg.labels import undescribed_labels
from AdaptiveBrushDicomLib.errors import InputFileError


def decode_labelmap(pixels: np.ndarray, place: np.ndarray, grid: Grid, padding: int | None, path: Path) -> np.ndarray:
    """LABELMAP frames (n, rows, cols) placed on ``grid`` (k, j, i); PixelPaddingValue is 0.

    Raises
    ------
    InputFileError
        Two full-plane frames at one slice (overlapping segments a LABELMAP must not have).
    """
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


def decode_binary(pixels: np.ndarray, place: np.ndarray, frame_segments: np.ndarray, grid: Grid,
                  segments: dict[int, Segment], notes: list[str]) -> LabelMap:
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
    return restore_labels(array, grid, segments, layer_of=layer_of)


def restore_labels(
    array: np.ndarray,
    grid: Grid,
    segments: dict[int, Segment],
    layer_of: dict[int, int] | None = None,
) -> LabelMap:
    """Turn an array of SegmentNumbers into the original label values.

    ``segments`` maps SegmentNumber -> Segment whose ``label`` is the original label
    value when the SEG recorded one (our files do), else the SegmentNumber itself.
    Numbers present in the pixels but not described get a "Segment <n>" record.
    """
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


__all__ = ["decode_binary", "decode_labelmap", "restore_labels"]
