"""Slicer volume nodes <-> core geometry: IJKToRAS <-> :class:`~.core.geometry.Grid`
(RAS vs LPS), exact re-indexing onto a loaded volume, Slicer's slice stack of an
irregularly spaced series, and what a loaded volume's DICOM attributes say.

Plain Python and numpy: never imports slicer, vtk, qt or ctk. The other pure parts of the
Slicer glue are :mod:`.segment_records` (vtkSegment name/colour/tags), :mod:`.import_plan`
(labelmap -> segmentation node), :mod:`.labelmap_export` (segmentation node -> labelmap,
overlap check), :mod:`.plugin_rules`, :mod:`.naming`, :mod:`.cse`, :mod:`.dependencies`.

Coordinate conventions (see :mod:`~.core.geometry`)
----------------------------------------------------
* Slicer world coordinates are **RAS**; DICOM / ITK / :class:`~.core.geometry.Grid` use
  **LPS**; ``RAS = diag(-1, -1, 1) @ LPS``.
* Slicer's ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` maps homogeneous ``(i, j, k, 1)`` to RAS.
* ``slicer.util.arrayFromVolume`` returns arrays indexed ``[k, j, i]`` (reversed VTK
  dimensions), which is also our array order, so no transpose is ever needed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import GeometryError, Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError, UserError

#: Node attribute Slicer uses for the SOP Instance UIDs of a loaded DICOM object.
ATTR_INSTANCE_UIDS = "DICOM.instanceUIDs"


# --------------------------------------------------------------------------------------
# Geometry: Slicer IJKToRAS <-> Grid (LPS)
# --------------------------------------------------------------------------------------


def grid_from_ijk_to_ras(ijk_to_ras: np.ndarray, array_shape_kji: Sequence[int]) -> Grid:
    """Grid (LPS) of a Slicer volume.

    Parameters
    ----------
    ijk_to_ras : (4, 4) array
        ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` as numpy (``slicer.util.arrayFromVTKMatrix``);
        maps homogeneous (i, j, k, 1) to RAS mm.
    array_shape_kji : (nk, nj, ni)
        Shape of ``slicer.util.arrayFromVolume(node)`` (k, j, i order).

    Raises
    ------
    GeometryError
        Not a 4x4 matrix, not a 3D shape, or a degenerate matrix.
    """
    m = np.asarray(ijk_to_ras, dtype=float)
    if m.shape != (4, 4):
        raise GeometryError(f"IJKToRAS must be a 4x4 matrix, got shape {m.shape}")
    shape = tuple(int(v) for v in array_shape_kji)
    if len(shape) != 3:
        raise GeometryError(f"volume array must be 3D (k, j, i), got shape {shape}")
    return Grid.from_ijk_to_ras(m, shape)


def ijk_to_ras_from_grid(grid: Grid) -> np.ndarray:
    """4x4 IJKToRAS matrix for ``slicer.util.addVolumeFromArray`` / ``SetIJKToRASMatrix``."""
    return np.array(grid.ijk_to_ras, dtype=float)


def conform_array(array: np.ndarray, source: Grid, target: Grid, *, what: str = "segmentation") -> np.ndarray:
    """Move a (k, j, i) [or (layer, k, j, i)] label array from ``source`` onto ``target``
    without interpolation (e.g. a SEG decoded on the DICOM series' slice order onto a Slicer
    volume whose slice order was reversed, or a cropped extent onto the full grid).

    Thin wrapper over :func:`~.core.align.align_to_grid` (exact re-indexing only).

    Raises
    ------
    ReferenceMismatchError
        Resampling would be needed, or labelled voxels would be cut off.
    """
    from AdaptiveBrushDicomLib.core.align import align_to_grid

    return align_to_grid(np.asarray(array), source, target, what=what)


def _slice_stack_match(volume: Grid, series: Grid) -> bool | None:
    """Whether the regular ``volume`` grid is how Slicer loaded the irregularly spaced
    ``series``: same shape and in-plane geometry, first (or, reversed, last) slice at the
    series' first slice, k along the series normal. Returns False for "same order", True for
    "reversed", None for "no"."""
    if tuple(volume.shape_kji) != tuple(series.shape_kji):
        return None
    if not (np.allclose(volume.spacing_ijk[:2], series.spacing_ijk[:2], atol=1e-3)
            and np.allclose(volume.direction[:, :2], series.direction[:, :2], atol=1e-3)):
        return None
    vol_k = np.asarray(volume.direction[:, 2]) @ np.asarray(series.direction[:, 2])
    if abs(abs(vol_k) - 1.0) > 1e-3:
        return None
    first = np.asarray(series.slice_origins())
    vol_first = np.asarray(volume.origin)
    if vol_k > 0 and np.allclose(vol_first, first[0], atol=1e-2):
        return False
    if vol_k < 0 and np.allclose(vol_first, first[-1], atol=1e-2):
        return True
    return None


def to_series_slices(labelmap: LabelMap, series: Grid) -> LabelMap:
    """A labelmap on the regular grid Slicer loads an irregularly spaced series onto (slice
    k = the k-th file of ``DICOM.instanceUIDs``; Slicer shows the true positions through an
    acquisition transform) -> the same voxels on the series' own slices (``series`` has
    ``slice_positions_mm``). Exact: slices are matched by index, nothing is resampled.

    Raises
    ------
    ReferenceMismatchError
        ``labelmap.grid`` is not that stand-in grid of ``series``.
    """
    reverse = _slice_stack_match(labelmap.grid, series)
    if reverse is None:
        raise ReferenceMismatchError(
            f"the segmentation's grid ({labelmap.grid.describe()}) is not the volume Slicer loaded for the "
            f"irregularly spaced series ({series.describe()})")
    array = labelmap.array[..., ::-1, :, :] if reverse else labelmap.array
    return LabelMap(np.ascontiguousarray(array), series, labelmap.segments)


def from_series_slices(labelmap: LabelMap, volume: Grid) -> LabelMap:
    """Inverse of :func:`to_series_slices`: a labelmap decoded on the irregular series'
    own slices (``read_seg(..., keep_irregular=True)``) -> the loaded volume's regular grid.

    Raises
    ------
    ReferenceMismatchError
        ``volume`` is not Slicer's stand-in grid of the labelmap's series.
    """
    reverse = _slice_stack_match(volume, labelmap.grid)
    if reverse is None:
        raise ReferenceMismatchError(
            f"the loaded volume ({volume.describe()}) is not Slicer's grid for the irregularly spaced "
            f"series ({labelmap.grid.describe()})")
    array = labelmap.array[..., ::-1, :, :] if reverse else labelmap.array
    return LabelMap(np.ascontiguousarray(array), volume, labelmap.segments)


def split_uids(value: str | None) -> list[str]:
    """Space separated UID list (Slicer node attribute / SH UID) -> list."""
    return [u for u in (value or "").split() if u]


def order_series_files(files_by_uid: Mapping[str, str], uids_in_k_order: Sequence[str]) -> list[str]:
    """Files of a loaded volume in its k order (``DICOM.instanceUIDs`` order).

    Raises
    ------
    UserError
        Names the first UID the database does not know (re-import the series).
    """
    out = []
    for uid in uids_in_k_order:
        path = files_by_uid.get(uid) or ""
        if not path:
            raise UserError(f"instance {uid} of the reference volume is not in the DICOM database; re-import the series")
        out.append(path)
    return out
