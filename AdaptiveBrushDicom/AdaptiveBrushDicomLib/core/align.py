"""Put a labelmap onto a reference grid without losing voxels.

Cases, in order of preference:

1. same grid (within tolerance): nothing to do;
2. same lattice up to axis order and direction (flipped or permuted axes, different
   extent): exact re-indexing, padding with 0 and cropping only where nothing non-zero
   would be cut;
3. otherwise: a clear error, or nearest-neighbour resampling when explicitly asked for.
"""

from __future__ import annotations

import enum

import numpy as np

from AdaptiveBrushDicomLib.errors import ReferenceMismatchError
from AdaptiveBrushDicomLib.core.geometry import POSITION_TOLERANCE_MM, Grid, float3, int3


class Resample(str, enum.Enum):
    """What to do when a segmentation is not on the reference lattice."""

    NONE = "none"
    NEAREST = "nearest"


def axis_permutation(src: Grid, dst: "Grid | np.ndarray", tol: float = 1e-4) -> tuple[list[int], list[bool]] | None:
    """For each dst index axis (i, j, k = 0, 1, 2): which src axis it comes from and
    whether that axis is reversed. None if the directions are not a signed permutation.

    ``dst`` is a Grid or just its 3x3 direction matrix (columns = LPS unit vectors of i, j, k).
    """
    dst_dir = dst.direction if isinstance(dst, Grid) else np.asarray(dst, dtype=float).reshape(3, 3)
    m = dst_dir.T @ src.direction  # m[d, s] = cos(angle between dst axis d and src axis s)
    perm, flip = [], []
    for d in range(3):
        s = int(np.argmax(np.abs(m[d])))
        if abs(abs(m[d, s]) - 1) > tol:
            return None
        perm.append(s)
        flip.append(bool(m[d, s] < 0))
    if sorted(perm) != [0, 1, 2]:
        return None
    return perm, flip


def reoriented_grid(src: Grid, direction: np.ndarray, tol: float = 1e-4) -> Grid | None:
    """The grid of ``src``'s voxels re-indexed so its i, j, k axes point along ``direction``'s
    columns (LPS), as far as a signed axis permutation allows: same voxel centres, same
    extent, axis order and signs following ``direction``. None when ``direction`` is not a
    signed permutation of ``src.direction``.

    This is the grid :func:`reorient` gives its array; frames written in another
    orientation on the reference lattice are placed on it (:mod:`.seg.read`).
    """
    res = axis_permutation(src, direction, tol)
    if res is None:
        return None
    perm, flip = res
    positions = None
    if not src.is_regular:
        if perm[2] != 2:
            return None  # irregular slices cannot become an in-plane (regular) axis
        p = src.slice_positions()
        positions = tuple(p[-1] - p[::-1]) if flip[2] else tuple(p)
    n_src = src.size_ijk
    corner = [0.0, 0.0, 0.0]
    for d in range(3):
        if flip[d]:
            corner[perm[d]] = n_src[perm[d]] - 1
    origin = src.index_to_lps(np.array(corner))
    spacing = tuple(src.spacing_ijk[perm[d]] for d in range(3))
    new_dir = np.column_stack([src.direction[:, perm[d]] * (-1 if flip[d] else 1) for d in range(3)])
    shape = (n_src[perm[2]], n_src[perm[1]], n_src[perm[0]])
    return Grid(int3(shape), float3(spacing), float3(origin), new_dir, slice_positions_mm=positions)


def reorient(array: np.ndarray, src: Grid, dst: "Grid | np.ndarray") -> tuple[np.ndarray, Grid] | None:
    """Re-index ``array`` (on ``src``) so its axes follow ``dst``'s directions.

    Returns the view and its grid (same voxels, same physical positions), or None when
    the orientations are not related by a signed axis permutation. Works on 3D (k, j, i)
    arrays and 4D (layer, k, j, i) arrays. The result is a numpy view: writing into it
    writes into ``array``.
    """
    res = axis_permutation(src, dst)
    if res is None:
        return None
    perm, flip = res
    lead = array.ndim - 3
    # array axes are (k, j, i): index axis a lives at array axis lead + 2 - a
    out = array
    # flip source axes that end up reversed
    for d in range(3):
        if flip[d]:
            out = np.flip(out, axis=lead + 2 - perm[d])
    # transpose: new array axis for dst index axis d is lead + 2 - d, taken from src axis perm[d]
    order = list(range(lead)) + [lead + 2 - perm[2 - n] for n in range(3)]
    out = np.transpose(out, order)
    grid = reoriented_grid(src, dst.direction if isinstance(dst, Grid) else dst)
    assert grid is not None and grid.shape_kji == out.shape[-3:]
    return out, grid


def align_to_grid(
    array: np.ndarray,
    src: Grid,
    dst: Grid,
    *,
    resample: "Resample | str" = Resample.NONE,
    what: str = "segmentation",
) -> np.ndarray:
    """Return ``array`` (on ``src``) as an array on ``dst`` (same ndim, 3D or 4D).

    Raises
    ------
    ReferenceMismatchError
        Different lattice (without ``resample``), or cropping would drop labelled voxels.
    """
    resample = Resample(resample)
    if src.almost_equal(dst):
        return array
    re_ = reorient(array, src, dst)
    if re_ is not None:
        arr2, g2 = re_
        offset = dst.lattice_offset_kji(g2)
        if offset is not None:
            return _place(arr2, offset, dst.shape_kji, what)
        if not (g2.is_regular and dst.is_regular):
            placed = _place_by_slices(arr2, g2, dst, what)
            if placed is not None:
                return placed
    if src.is_regular and dst.is_regular and not grids_overlap(src, dst):
        raise ReferenceMismatchError(
            f"{what} does not overlap the reference image at all: its {int(np.count_nonzero(array))} labelled "
            f"voxels all fall outside it ({src.describe()} vs reference {dst.describe()}); give the reference "
            "series the segmentation was made on"
        )
    if resample is Resample.NEAREST:
        out = _resample_nearest(array, src, dst)
        labelled = int(np.count_nonzero(array))
        if labelled and not np.count_nonzero(out):
            raise ReferenceMismatchError(
                f"{what}: resampling leaves no labelled voxel inside the reference image (all {labelled} "
                "labelled voxels fall outside it); give the reference series the segmentation was made on"
            )
        return out
    raise ReferenceMismatchError(
        f"{what} is not on the reference image's voxel lattice ({src.describe()} vs reference "
        f"{dst.describe()}); pass --resample nearest to resample it"
    )


def grids_overlap(src: Grid, dst: Grid) -> bool:
    """Whether the physical extents (voxel boxes, LPS) of two grids intersect: the
    corners of ``src`` in ``dst`` index space span a box meeting ``dst``'s index range."""
    n = np.asarray(src.size_ijk, dtype=float)
    corners = np.array([[a, b, c] for a in (-0.5, n[0] - 0.5) for b in (-0.5, n[1] - 0.5)
                        for c in (-0.5, n[2] - 0.5)])
    idx = np.array([dst.lps_to_index(src.index_to_lps(c)) for c in corners])
    size = np.asarray(dst.size_ijk, dtype=float)
    return bool(np.all(idx.max(axis=0) > -0.5) and np.all(idx.min(axis=0) < size - 0.5))


def _place(array: np.ndarray, offset: tuple[int, int, int], shape: tuple[int, int, int], what: str) -> np.ndarray:
    lead = array.shape[:-3]
    out = np.zeros(lead + tuple(shape), dtype=array.dtype)
    src_sl, dst_sl = [], []
    for ax in range(3):
        o, n_src, n_dst = offset[ax], array.shape[-3 + ax], shape[ax]
        d0, d1 = max(o, 0), min(o + n_src, n_dst)
        if d1 <= d0:
            src_sl.append(slice(0, 0))
            dst_sl.append(slice(0, 0))
        else:
            src_sl.append(slice(d0 - o, d1 - o))
            dst_sl.append(slice(d0, d1))
    kept = array[(...,) + tuple(src_sl)]
    total = np.count_nonzero(array)
    if np.count_nonzero(kept) != total:
        lost = total - np.count_nonzero(kept)
        raise ReferenceMismatchError(
            f"{what} extends beyond the reference image: {lost} labelled voxels would be cut off; "
            "give the reference series the segmentation was made on"
        )
    out[(...,) + tuple(dst_sl)] = kept
    return out


def _place_by_slices(array: np.ndarray, src: Grid, dst: Grid, what: str) -> np.ndarray | None:
    """Slice-by-slice placement when either grid has irregular slice positions (``src``
    already oriented like ``dst``): every slice of ``src`` that holds labels must coincide
    with a slice of ``dst`` (within tolerance) and its pixels with dst's in-plane lattice.
    Slices of ``dst`` without a ``src`` slice are 0. None when no slice coincides at all.

    Raises
    ------
    ReferenceMismatchError
        Labelled voxels on a slice where ``dst`` has none, or outside dst's extent.
    """
    if not np.allclose(src.spacing_ijk[:2], dst.spacing_ijk[:2], atol=POSITION_TOLERANCE_MM):
        return None
    idx = dst.lps_to_index(src.slice_origins())  # (nk_src, 3)
    inplane = np.round(idx[0, :2])
    if np.any(np.abs(idx[:, :2] - inplane) * np.asarray(dst.spacing_ijk[:2]) > POSITION_TOLERANCE_MM * 10):
        return None
    k_dst = np.round(idx[:, 2]).astype(np.int64)
    inside = (k_dst >= 0) & (k_dst < dst.shape_kji[0])
    along = (src.slice_origins() - np.asarray(dst.origin)) @ dst.direction[:, 2]
    dst_pos = dst.slice_positions()
    hit = inside.copy()
    hit[inside] = np.abs(dst_pos[k_dst[inside]] - along[inside]) <= POSITION_TOLERANCE_MM * 10
    if not hit.any():
        return None
    lead = array.shape[:-3]
    labelled = np.count_nonzero(array.reshape(lead + (array.shape[-3], -1)), axis=-1)
    labelled = labelled.reshape(-1, array.shape[-3]).sum(axis=0)
    missed = (~hit) & (labelled > 0)
    if missed.any():
        where = "; ".join("LPS (" + ", ".join(f"{c:.2f}" for c in o) + ")" for o in src.slice_origins()[missed][:3])
        raise ReferenceMismatchError(
            f"{what}: {int(labelled[missed].sum())} labelled voxels lie on {int(missed.sum())} slice(s) where the "
            f"reference series has no image (its slices are irregularly spaced), starting at {where} mm; "
            "remove them or give the series the segmentation was made on"
        )
    sel = np.flatnonzero(hit)
    di, dj = int(inplane[0]), int(inplane[1])
    placed = _place(array[..., sel, :, :], (0, dj, di), (len(sel),) + dst.shape_kji[1:], what)
    out = np.zeros(lead + tuple(dst.shape_kji), dtype=array.dtype)
    out[..., k_dst[sel], :, :] = placed
    return out


def _resample_nearest(array: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    """Nearest-neighbour resampling of each layer with SimpleITK (labels preserved).

    An irregular ``dst`` is resampled one slice at a time (each slice is a regular
    one-slice grid at its own position).

    Raises
    ------
    ReferenceMismatchError
        ``src`` has irregular slice positions (resample it onto a regular grid first).
    """
    import SimpleITK as sitk

    if not src.is_regular:
        raise ReferenceMismatchError(
            f"cannot resample a segmentation with irregular slice positions ({src.describe()}); "
            "give it on a regular grid"
        )
    if not dst.is_regular:
        slices = [Grid((1,) + dst.shape_kji[1:], dst.spacing_ijk, tuple(o), dst.direction)
                  for o in dst.slice_origins()]
        return np.concatenate([_resample_nearest(array, src, g) for g in slices], axis=-3)
    layers = array[np.newaxis] if array.ndim == 3 else array
    out = []
    for layer in layers:
        img = src.apply_to_sitk(sitk.GetImageFromArray(np.ascontiguousarray(layer)))
        ref = dst.apply_to_sitk(sitk.Image(list(dst.size_ijk), img.GetPixelID()))
        res = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, img.GetPixelID())
        out.append(sitk.GetArrayFromImage(res))
    stacked = np.stack(out)
    return stacked[0] if array.ndim == 3 else stacked


__all__ = ["Resample", "align_to_grid", "grids_overlap", "reorient", "reoriented_grid", "axis_permutation",
           "POSITION_TOLERANCE_MM"]
