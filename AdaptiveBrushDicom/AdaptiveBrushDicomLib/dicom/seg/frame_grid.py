"""The grid a SEG's frames are decoded onto, and each frame's place on it.

With a reference series the grid is the series' (the frames must lie on its voxel
lattice); without one it is derived from the frames' own positions. Irregularly spaced
slices are put onto the regular grid that holds them all, exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.core.align import align_to_grid
from AdaptiveBrushDicomLib.core.geometry import Grid, median_spacing
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.placement import placement_grid
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError

#: Fraction of a voxel a frame position may be off the lattice and still be placed.
LATTICE_TOLERANCE = 0.01


def grid_from_positions(positions: np.ndarray, iop: np.ndarray, ps: list[float], gap: float | None, rows: int,
                        cols: int, notes: list[str]) -> Grid:
    """The grid a SEG's own frames span, without a reference series (LPS, k along the
    normal of ImageOrientationPatient); notes say what cannot be known.

    ``positions`` (n, 3) mm, ``iop`` (6,), ``ps`` PixelSpacing (row, column) mm, ``gap``
    the slice spacing the SEG states (None: taken from the closest frames)."""
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
        return Grid((len(rel), rows, cols), (ps[1], ps[0], median_spacing(gaps)), tuple(origin), direction,
                    slice_positions_mm=tuple(rel))
    return Grid((nk, rows, cols), (ps[1], ps[0], gap), tuple(origin), direction)


def onto_regular_grid(labelmap: LabelMap, path: Path, notes: list[str]) -> LabelMap:
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


def place_on_reference(positions: np.ndarray, iop: np.ndarray, ps: list[float], rows: int, cols: int, grid: Grid,
                       for_uid: str | None, reference: ReferenceSeries, path: Path,
                       notes: list[str]) -> tuple[Grid, np.ndarray]:
    """(grid the frames are placed on, placement) for a reference series.

    A FrameOfReferenceUID other than the reference's (pydicom-seg writes a new one, its
    issue #48) is accepted when every frame lies on the reference lattice within
    tolerance: one note says so. Otherwise the error names both UIDs and the mismatch.

    Raises
    ------
    ReferenceMismatchError
        A frame off the reference lattice or outside its extent (naming both Frame of
        Reference UIDs when they differ).
    """
    ref_for = reference.frame_of_reference_uid
    for_differs = bool(for_uid and ref_for and for_uid != ref_for)
    try:
        frame_grid = placement_grid(grid, iop, ps, path)
        place = place_frames(positions, frame_grid, rows, cols, path)
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


def place_frames(positions: np.ndarray, grid: Grid, rows: int, cols: int, path: Path) -> np.ndarray:
    """(n, 3) integer (k, j0, i0) of each frame's first pixel in ``grid``.

    Raises
    ------
    ReferenceMismatchError
        A frame off the grid's lattice (by more than LATTICE_TOLERANCE x 10 voxels) or
        outside its extent.
    """
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


__all__ = ["LATTICE_TOLERANCE", "grid_from_positions", "onto_regular_grid", "place_frames", "place_on_reference"]
