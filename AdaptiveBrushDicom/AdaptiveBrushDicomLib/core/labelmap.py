"""LabelMap: an integer voxel array on a :class:`~.geometry.Grid` plus its segments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.segment import Segment


def label_dtype(max_label: int) -> np.dtype:
    """Smallest unsigned dtype that holds labels 0..``max_label``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_label <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


class LabelMapError(ValueError):
    """Invalid labelmap content (non-integer, negative labels, overlaps...)."""


@dataclass
class LabelMap:
    """Segmentation as label values on a grid.

    Attributes
    ----------
    array : numpy.ndarray
        Integer labels indexed ``[k, j, i]`` (shape == ``grid.shape_kji``), 0 = background.
        For overlapping segmentations (several Slicer layers) the array is 4D,
        ``[layer, k, j, i]``, and each segment's ``layer`` says which plane it lives in.
    grid : Grid
        Geometry of the array in LPS.
    segments : list of Segment
        One record per segment, in display order. Segments may have no voxels.
    """

    array: np.ndarray
    grid: Grid
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        a = np.asarray(self.array)
        if not np.issubdtype(a.dtype, np.integer):
            if np.issubdtype(a.dtype, np.floating) and np.all(np.mod(a, 1) == 0):
                a = a.astype(np.int64)
            else:
                raise LabelMapError(f"labels must be integers, got dtype {a.dtype} with fractional values")
        spatial = a.shape[-3:]
        if a.ndim not in (3, 4) or tuple(spatial) != tuple(self.grid.shape_kji):
            raise LabelMapError(f"array shape {a.shape} does not match grid shape {self.grid.shape_kji}")
        self.array = a

    @property
    def n_layers(self) -> int:
        return 1 if self.array.ndim == 3 else self.array.shape[0]

    def layer(self, index: int) -> np.ndarray:
        """The (k, j, i) array of one layer."""
        return self.array if self.array.ndim == 3 else self.array[index]

    def segment_by_label(self, label: int, layer: int = 0) -> Segment | None:
        for s in self.segments:
            if s.label == label and s.layer == layer:
                return s
        return None

    def mask(self, segment: Segment) -> np.ndarray:
        """Boolean (k, j, i) mask of one segment."""
        return np.asarray(self.layer(segment.layer) == segment.label)
