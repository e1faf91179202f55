"""Grid: construction from SimpleITK / IJK matrices, RAS<->LPS, lattice tests."""

import numpy as np
import pytest
import SimpleITK as sitk

from AdaptiveBrushDicomLib.core.align import align_to_grid, reorient
from AdaptiveBrushDicomLib.errors import ReferenceMismatchError
from AdaptiveBrushDicomLib.core.geometry import GeometryError, Grid

from conftest import rotation


def test_from_sitk_matches_sitk_physical_points():
    img = sitk.Image([5, 6, 7], sitk.sitkUInt8)
    d = rotation(0.1, -0.2, 0.3)
    img.SetDirection(tuple(d.reshape(-1)))
    img.SetSpacing((0.5, 0.7, 2.0))
    img.SetOrigin((10.0, -3.0, 4.0))
    g = Grid.from_sitk(img)
    assert g.shape_kji == (7, 6, 5)
    for idx in [(0, 0, 0), (4, 5, 6), (1, 2, 3)]:
        assert np.allclose(g.index_to_lps(idx), img.TransformIndexToPhysicalPoint(idx))
        assert np.allclose(g.lps_to_index(img.TransformIndexToPhysicalPoint(idx)), idx)


def test_ras_matrix_round_trip_and_sign():
    g = Grid((3, 4, 5), (1.0, 2.0, 3.0), (10, 20, 30), rotation(0.2, 0.1, -0.4))
    ras = g.ijk_to_ras
    # Slicer RAS: x and y negated relative to LPS
    assert np.allclose(ras[:2, 3], [-10, -20]) and ras[2, 3] == pytest.approx(30)
    assert Grid.from_ijk_to_ras(ras, g.shape_kji).almost_equal(g)
    assert Grid.from_ijk_to_lps(g.ijk_to_lps, g.shape_kji) == g


def test_tolerant_equality_and_lattice_offset():
    g = Grid((10, 10, 10), (1, 1, 2), (0, 0, 0))
    assert g == Grid((10, 10, 10), (1, 1, 2), (0.0001, 0, 0))
    assert g != Grid((10, 10, 10), (1, 1, 2), (0.3, 0, 0))
    cropped = Grid((4, 3, 2), (1, 1, 2), (3, 2, 4))
    assert g.lattice_offset_kji(cropped) == (2, 2, 3)
    assert g.same_lattice(cropped)
    assert not g.same_lattice(Grid((4, 3, 2), (1, 1, 2), (3.5, 2, 4)))
    assert not g.same_lattice(Grid((4, 3, 2), (1, 1, 1), (3, 2, 4)))


def test_invalid_grids_are_refused():
    with pytest.raises(GeometryError):
        Grid((0, 1, 1), (1, 1, 1), (0, 0, 0))
    with pytest.raises(GeometryError):
        Grid((1, 1, 1), (1, -1, 1), (0, 0, 0))
    with pytest.raises(GeometryError):
        Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), np.ones((3, 3)))


@pytest.mark.parametrize("perm", [(0, 1, 2), (2, 0, 1), (1, 2, 0)])
@pytest.mark.parametrize("signs", [(1, 1, 1), (-1, 1, 1), (1, -1, -1)])
def test_reorient_keeps_every_voxel_at_its_position(perm, signs):
    rng = np.random.default_rng(0)
    base = rotation(0.3, 0.2, 0.1)
    direction = np.column_stack([base[:, perm[a]] * signs[a] for a in range(3)])
    src = Grid((4, 5, 6), (0.5, 0.7, 1.1), (3, 4, 5), direction)
    arr = rng.integers(0, 50, size=src.shape_kji)
    out, g = reorient(arr, src, Grid((1, 1, 1), (1, 1, 1), (0, 0, 0), base))
    assert np.allclose(g.direction, base)
    k, j, i = np.meshgrid(*[np.arange(n) for n in src.shape_kji], indexing="ij")
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    new = np.round(g.lps_to_index(src.index_to_lps(ijk))).astype(int)
    assert np.array_equal(out[new[:, 2], new[:, 1], new[:, 0]], arr.ravel())


def test_align_pads_and_refuses_lossy_crop():
    dst = Grid((10, 12, 14), (1, 1, 1), (0, 0, 0))
    small = Grid((2, 3, 4), (1, 1, 1), (5, 6, 7))
    arr = np.ones(small.shape_kji, dtype=np.uint8)
    out = align_to_grid(arr, small, dst)
    assert out.shape == dst.shape_kji and out.sum() == arr.sum()
    assert out[7:9, 6:9, 5:9].all()
    # crop where nothing is lost: fine; where voxels would be lost: error
    big = Grid((12, 12, 14), (1, 1, 1), (0, 0, -1))
    arr2 = np.zeros(big.shape_kji, dtype=np.uint8)
    arr2[5, 5, 5] = 3
    assert align_to_grid(arr2, big, dst)[4, 5, 5] == 3
    arr2[0, 0, 0] = 1
    with pytest.raises(ReferenceMismatchError, match="1 labelled voxels would be cut off"):
        align_to_grid(arr2, big, dst)
    with pytest.raises(ReferenceMismatchError, match="--resample nearest"):
        align_to_grid(arr, Grid((2, 3, 4), (1, 1, 1), (5.5, 6, 7)), dst)
    res = align_to_grid(arr, Grid((2, 3, 4), (1, 1, 1), (5.2, 6, 7)), dst, resample="nearest")
    assert res.sum() == arr.sum()


# ------------------------------------------------------------------ irregular slice positions
IRREGULAR = [0.0, 1.25, 2.5, 5.0, 6.25, 7.5]  # one missing slice at 3.75


def _irregular(direction=None):
    d = np.eye(3) if direction is None else direction
    return Grid((6, 4, 5), (0.5, 0.7, 1.25), (10.0, -3.0, 7.0), d, slice_positions_mm=IRREGULAR)


def test_regular_positions_normalise_to_a_regular_grid():
    g = Grid((4, 3, 3), (1, 1, 2.0), (0, 0, 0), slice_positions_mm=[0, 2.0, 4.0000004, 6.0])
    assert g.is_regular and g.slice_positions_mm is None
    assert np.allclose(g.ijk_to_lps, Grid((4, 3, 3), (1, 1, 2.0), (0, 0, 0)).ijk_to_lps)


def test_irregular_grid_maps_indices_and_positions_exactly():
    rot = rotation(0.2, -0.4, 0.9)
    g = _irregular(rot)
    assert not g.is_regular
    origins = g.slice_origins()
    assert np.allclose((origins - g.origin) @ rot[:, 2], IRREGULAR)
    ijk = np.array([[1, 2, 3], [4, 0, 5], [0, 3, 0]], dtype=float)
    lps = g.index_to_lps(ijk)
    assert np.allclose(lps[0], np.asarray(g.origin) + rot @ [0.5, 1.4, 5.0])
    assert np.allclose(g.lps_to_index(lps), ijk)
    assert np.allclose(g.lps_to_index(g.index_to_lps([[0, 0, 2.5], [0, 0, -1], [0, 0, 6]])),
                       [[0, 0, 2.5], [0, 0, -1], [0, 0, 6]])  # interpolated, extrapolated
    for attr in ("ijk_to_lps", "ijk_to_ras"):
        with pytest.raises(GeometryError, match="irregular"):
            getattr(g, attr)
    assert "irregular slice gaps 1.25..2.5 mm" in g.describe()


def test_irregular_positions_are_validated():
    for bad in ([0, 1, 1, 2, 3, 4], [0, 1, 2], [0.5, 1, 2, 3, 4, 5], [0, 2, 1, 3, 4, 5]):
        with pytest.raises(GeometryError):
            Grid((6, 2, 2), (1, 1, 1), (0, 0, 0), slice_positions_mm=bad)


def test_regular_cover_and_lattice_offsets_of_irregular_grids():
    g = _irregular()
    cover = g.regular_cover()
    assert cover.is_regular and cover.shape_kji == (7, 4, 5) and np.isclose(cover.spacing_ijk[2], 1.25)
    assert g.lattice_offset_kji(g) == (0, 0, 0) and g.almost_equal(g)
    assert not g.almost_equal(cover)
    # a regular run of g's slices (k = 3..5) is on g's lattice, also shifted in-plane
    run = Grid((3, 2, 2), (0.5, 0.7, 1.25), tuple(g.index_to_lps([1, 1, 3])), np.eye(3))
    assert g.lattice_offset_kji(run) == (3, 1, 1)
    # one that spans the missing slice is not
    span = Grid((3, 2, 2), (0.5, 0.7, 1.25), tuple(g.index_to_lps([0, 0, 2])), np.eye(3))
    assert g.lattice_offset_kji(span) is None
    varying = Grid((4, 2, 2), (1, 1, 1.25), (0, 0, 0), slice_positions_mm=[0, 1.25, 2.55, 3.8])
    assert varying.regular_cover() is None


def test_align_between_regular_and_irregular_grids():
    g = _irregular(rotation(0.1, 0.2, 0.3))
    cover = g.regular_cover()
    rng = np.random.default_rng(3)
    on_cover = rng.integers(1, 5, size=cover.shape_kji).astype(np.uint8)
    on_cover[3] = 0  # the slice g does not have
    on_g = align_to_grid(on_cover, cover, g)
    assert np.array_equal(on_g, np.delete(on_cover, 3, axis=0))
    assert np.array_equal(align_to_grid(on_g, g, cover), on_cover)
    on_cover[3, 0, 0] = 7
    with pytest.raises(ReferenceMismatchError, match="1 labelled voxels lie on 1 slice"):
        align_to_grid(on_cover, cover, g)
    # reversed k (and i) of an irregular grid: same voxels in space
    flipped, fgrid = reorient(on_g, g, g.direction @ np.diag([-1.0, 1.0, -1.0]))
    assert not fgrid.is_regular
    assert np.allclose(fgrid.slice_origins()[0], g.index_to_lps([g.shape_kji[2] - 1, 0, g.shape_kji[0] - 1]))
    assert np.array_equal(align_to_grid(np.ascontiguousarray(flipped), fgrid, g), on_g)
    # nearest resampling onto an irregular grid: slice by slice
    assert np.array_equal(align_to_grid(np.delete(on_cover, 3, axis=0) * 0 + 1, g, g), np.ones(g.shape_kji))
    near = align_to_grid(np.where(on_cover == 7, 0, on_cover), cover, g, resample="nearest")
    assert np.array_equal(near, np.delete(np.where(on_cover == 7, 0, on_cover), 3, axis=0))


@pytest.mark.parametrize("gaps", [[2.5], [1.0, 3.0], [3.0, 1.0, 2.0], [0.7, 0.7, 0.70001, 5.0],
                                  list(np.random.default_rng(7).uniform(0.5, 4.0, 301)),
                                  list(np.random.default_rng(8).uniform(0.5, 4.0, 300))])
def test_median_spacing_equals_numpy_median(gaps):
    from AdaptiveBrushDicomLib.core.geometry import median_spacing

    assert median_spacing(np.array(gaps)) == float(np.median(gaps))
