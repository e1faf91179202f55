"""Where a SEG's frames go on the reference grid, whatever orientation they were written in.

A SEG's frames need not share the reference series' orientation: a writer may store
sagittal frames of an axial series, or reverse rows or columns. As long as the frames'
row and column directions are (signed) axes of the reference lattice and their pixel
spacing is the reference's spacing along those axes, every frame pixel is exactly one
reference voxel. :func:`placement_grid` returns the reference lattice re-indexed so that
its i, j axes run along the frames' rows and columns (see :func:`.align.reoriented_grid`);
frames are placed on that grid as usual and the result is re-indexed back onto the
reference grid without any resampling. Frames across an irregularly spaced series (e.g.
sagittal frames of an axial series with a missing slice) are placed on its regular cover
grid (:meth:`.Grid.regular_cover`) first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from AdaptiveBrushDicomLib.core.align import axis_permutation, reoriented_grid
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError

#: Tolerance on direction cosines when matching frame orientation to the reference axes.
ORIENTATION_TOLERANCE = 1e-3
#: Tolerance (mm) on pixel spacing.
SPACING_TOLERANCE_MM = 1e-3


def _fmt(values: Iterable[Any]) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in values) + "]"


def frame_direction(iop: np.ndarray) -> np.ndarray:
    """3x3 LPS direction (columns: row direction, column direction, normal) of frames with
    ImageOrientationPatient ``iop`` (6 values: row cosines, then column cosines)."""
    row, col = np.asarray(iop[:3], dtype=float), np.asarray(iop[3:], dtype=float)
    return np.column_stack([row, col, np.cross(row, col)])


def placement_grid(grid: Grid, iop: np.ndarray, pixel_spacing: Sequence[Any], path: Path | str) -> Grid:
    """The grid on which frames with orientation ``iop`` and PixelSpacing ``pixel_spacing``
    ((row spacing, column spacing) mm, DICOM order) are placed: ``grid`` itself when the
    frames share its orientation, else the same lattice with axes re-ordered/reversed.

    Raises
    ------
    ReferenceMismatchError
        The frames' rows/columns are not along the reference axes (oblique to them), or
        their pixel spacing differs from the reference's along those axes. The message
        names both values.
    """
    direction = frame_direction(iop)
    same = np.allclose(direction[:, :2], grid.direction[:, :2], atol=ORIENTATION_TOLERANCE)
    target = grid if same else reoriented_grid(grid, direction, tol=ORIENTATION_TOLERANCE)
    cover = grid.regular_cover() if target is None and not grid.is_regular else None
    if cover is not None:
        # frames across irregularly spaced slices: placed on the regular grid holding every
        # slice; re-indexing onto the series' slices then refuses labels between them
        target = reoriented_grid(cover, direction, tol=ORIENTATION_TOLERANCE)
    if target is None and not grid.is_regular and axis_permutation(grid, direction, ORIENTATION_TOLERANCE):
        raise ReferenceMismatchError(
            f"SEG frames are oriented {_fmt(iop)} (ImageOrientationPatient), across the reference series' "
            "irregularly spaced slices, so their pixels cannot all be image voxels; give a SEG with frames "
            "parallel to the series' slices",
            path,
        )
    if target is None:
        ref_iop = np.concatenate([grid.direction[:, 0], grid.direction[:, 1]])
        raise ReferenceMismatchError(
            f"SEG frames are oriented {_fmt(iop)} (ImageOrientationPatient), which is not along the reference "
            f"series' axes (its orientation {_fmt(ref_iop)}); give the series the SEG was made on",
            path,
        )
    ps = [float(v) for v in pixel_spacing]
    if not np.allclose([ps[1], ps[0]], target.spacing_ijk[:2], atol=SPACING_TOLERANCE_MM):
        raise ReferenceMismatchError(
            f"PixelSpacing {_fmt(ps)} of the SEG frames differs from the reference's "
            f"{_fmt([target.spacing_ijk[1], target.spacing_ijk[0]])} along the same axes; give the series the SEG was made on",
            path,
        )
    return target


__all__ = ["placement_grid", "frame_direction"]
