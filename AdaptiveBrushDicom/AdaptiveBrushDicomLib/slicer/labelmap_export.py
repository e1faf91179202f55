"""Segmentation node -> core :class:`~.core.labelmap.LabelMap`: the overlap check before
``ExportSegmentsToLabelmapNode`` (which lets later segments win silently) and the label
values restored from its output.

Plain Python and numpy; never imports slicer, vtk, qt or ctk. Arrays are (k, j, i) on the
reference volume's grid; IJKToRAS maps to Slicer's RAS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import GeometryError
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.errors import OverlapError, UserError
from AdaptiveBrushDicomLib.slicer.bridge import grid_from_ijk_to_ras
from AdaptiveBrushDicomLib.slicer.segment_records import TAG_LABEL_VALUE, SlicerSegmentRecord, segment_from_record


@dataclass(frozen=True)
class Overlap:
    """Two segments sharing ``voxels`` voxels."""

    first: str
    second: str
    voxels: int


class OverlapChecker:
    """Accumulates per-segment masks (``arrayFromSegmentBinaryLabelmap``, all in the
    reference volume's (k, j, i) grid) and reports shared voxels.

    Memory: one int32 array of the grid, not one mask per segment. A voxel shared by three
    segments is reported against the first segment that claimed it.
    """

    def __init__(self) -> None:
        self._owner: np.ndarray | None = None
        self._names: list[str] = []
        self._counts: dict[tuple[int, int], int] = {}
        self.voxel_counts: dict[str, int] = {}

    def add(self, name: str, mask: np.ndarray) -> None:
        """Add one segment's mask (non-zero = inside).

        Raises
        ------
        GeometryError
            The mask's shape differs from the first mask's.
        """
        m = np.asarray(mask) != 0
        if self._owner is None:
            self._owner = np.zeros(m.shape, dtype=np.int32)
        elif m.shape != self._owner.shape:
            raise GeometryError(f"segment {name!r}: mask shape {m.shape} differs from {self._owner.shape}")
        index = len(self._names) + 1
        self._names.append(name)
        self.voxel_counts[name] = int(m.sum())
        owners = self._owner[m]
        taken = owners[owners != 0]
        if taken.size:
            for other, count in zip(*np.unique(taken, return_counts=True)):
                self._counts[(int(other), index)] = int(count)
        free = m & (self._owner == 0)
        self._owner[free] = index

    @property
    def overlaps(self) -> list[Overlap]:
        """Every pair of segments sharing voxels, in the order they were added."""
        return [Overlap(self._names[a - 1], self._names[b - 1], c) for (a, b), c in sorted(self._counts.items())]

    def message(self) -> str:
        """One line naming every overlapping pair and what to do."""
        parts = [f"{o.first!r} and {o.second!r} share {o.voxels} voxels" for o in self.overlaps]
        return (
            "segments overlap, so they cannot be stored as one LABELMAP: "
            + "; ".join(parts)
            + ". Remove the overlap (Segment Editor: Logical operators / masking) or export as BINARY SEG."
        )

    def raise_if_overlap(self) -> None:
        """Refuse the segmentation when any two masks share a voxel.

        Raises
        ------
        OverlapError
            Any two added masks share a voxel (:meth:`message`).
        """
        if self._counts:
            raise OverlapError(self.message())


def export_labels(records: Sequence[SlicerSegmentRecord]) -> list[int]:
    """Label value for each exported segment: its :data:`~.segment_records.TAG_LABEL_VALUE`
    when all such tags are valid and distinct, else ``n + 1`` (what
    ``ExportSegmentsToLabelmapNode`` writes)."""
    wanted: list[int] = []
    for r in records:
        raw = r.tags.get(TAG_LABEL_VALUE, "")
        if not (re.fullmatch(r"\s*\d+\s*", raw or "") and int(raw) > 0):
            return list(range(1, len(records) + 1))
        wanted.append(int(raw))
    if len(set(wanted)) == len(wanted):
        return wanted
    return list(range(1, len(records) + 1))


def labelmap_from_export(
    exported: np.ndarray,
    ijk_to_ras: np.ndarray,
    records: Sequence[SlicerSegmentRecord],
) -> LabelMap:
    """Core :class:`LabelMap` from ``ExportSegmentsToLabelmapNode`` output.

    Parameters
    ----------
    exported : (k, j, i) int array
        ``arrayFromVolume`` of the exported labelmap node: segment ``records[n]`` has value
        ``n + 1`` (no colour table given), in the reference volume's grid.
    ijk_to_ras : (4, 4)
        IJKToRAS of the exported labelmap node (= reference volume).
    records : segment metadata in export order.

    Raises
    ------
    UserError
        A voxel value above the number of exported segments, or an invalid segment tag.
    """
    grid = grid_from_ijk_to_ras(ijk_to_ras, exported.shape)
    labels = export_labels(records)
    lut_dtype = np.int32 if max(labels, default=0) >= 2**15 else np.int16
    present = int(exported.max()) if exported.size else 0
    if present > len(records):
        raise UserError(f"exported labelmap has value {present} but only {len(records)} segments were exported")
    lut = np.zeros(len(records) + 1, dtype=lut_dtype)
    lut[1:] = labels
    array = lut[np.asarray(exported, dtype=np.int64)]
    segments = [segment_from_record(r, label) for r, label in zip(records, labels)]
    return LabelMap(array, grid, segments)
