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
