"""analysis.metrics against values computed independently (brute force, analytic shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from AdaptiveBrushDicomLib.analysis.metrics import EmptyCase, mask_metrics, volume_difference_pct, voxel_volume_ml
from AdaptiveBrushDicomLib.core.geometry import Grid
from conftest import rotation


def _surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a face neighbour outside the mask (outside the array = outside), numpy only."""
    p = np.pad(mask, 1)
    inner = p[1:-1, 1:-1, 1:-1]
    all_in = (p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1] & p[1:-1, 2:, 1:-1]
              & p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:])
    return inner & ~all_in


def brute_force(gold: np.ndarray, trial: np.ndarray, grid: Grid) -> dict:
    """Every pair of surface voxel centres, in LPS mm through the grid's own matrix."""
    kji_g = np.argwhere(_surface(gold))
    kji_t = np.argwhere(_surface(trial))
    pts_g = grid.index_to_lps(kji_g[:, ::-1])
    pts_t = grid.index_to_lps(kji_t[:, ::-1])
    d_gt = np.empty(len(pts_g))
    d_tg = np.full(len(pts_t), np.inf)
    for start in range(0, len(pts_g), 256):  # chunks keep the pair matrix small
        block = pts_g[start:start + 256]
        d = np.sqrt(((block[:, None, :] - pts_t[None, :, :]) ** 2).sum(axis=2))
        d_gt[start:start + 256] = d.min(axis=1)
        d_tg = np.minimum(d_tg, d.min(axis=0))
    inter = int((gold & trial).sum())
    return {
        "dice": 2 * inter / (gold.sum() + trial.sum()),
        "jaccard": inter / (gold | trial).sum(),
        "hd95": max(np.percentile(d_gt, 95), np.percentile(d_tg, 95)),
        "hd": max(d_gt.max(), d_tg.max()),
        "assd": (d_gt.sum() + d_tg.sum()) / (d_gt.size + d_tg.size),
    }


def _random_blob(rng, shape, fill=0.35) -> np.ndarray:
    m = rng.random(shape) < fill
    # smooth a little so there are interior voxels (surface != mask)
    m = m | np.roll(m, 1, axis=0) | np.roll(m, 1, axis=2)
    return m


@pytest.mark.parametrize("seed", range(6))
def test_random_masks_match_brute_force_on_anisotropic_oblique_grid(seed):
    rng = np.random.default_rng(seed)
    shape = (6, 9, 11)
    direction = rotation(0.3 * seed, 0.5, -0.2 * seed)
    grid = Grid(shape, (0.7, 1.3, 2.5), (10.0, -4.0, 33.0), direction)
    gold = _random_blob(rng, shape)
    trial = _random_blob(rng, shape)
    got = mask_metrics(gold, trial, grid.spacing_ijk)
    want = brute_force(gold, trial, grid)
    assert got.empty is EmptyCase.NONE
    assert got.dice == pytest.approx(want["dice"], abs=1e-9)
    assert got.jaccard == pytest.approx(want["jaccard"], abs=1e-9)
    assert got.hd95_mm == pytest.approx(want["hd95"], abs=1e-4)
    assert got.hd_mm == pytest.approx(want["hd"], abs=1e-4)
    assert got.assd_mm == pytest.approx(want["assd"], abs=1e-4)
    assert (got.voxels_gold, got.voxels_trial, got.voxels_both) == (gold.sum(), trial.sum(), (gold & trial).sum())


def test_masks_touching_the_array_border_count_border_voxels_as_surface():
    grid = Grid((4, 5, 6), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0))
    gold = np.ones(grid.shape_kji, dtype=bool)  # fills the array: every outer voxel is surface
    trial = np.zeros(grid.shape_kji, dtype=bool)
    trial[1:3, 1:4, 1:5] = True
    got = mask_metrics(gold, trial, grid.spacing_ijk)
    want = brute_force(gold, trial, grid)
    assert got.hd95_mm == pytest.approx(want["hd95"], abs=1e-4)
    assert got.assd_mm == pytest.approx(want["assd"], abs=1e-4)


def test_cube_shifted_along_one_axis_analytic():
    # 10-voxel cube shifted by 3 voxels along i (spacing 0.5 mm): every face point of one
    # moved face is 1.5 mm from the other cube's face, HD = 1.5 mm; overlap 7/10.
    shape, s = (20, 20, 20), (0.5, 1.0, 2.0)
    gold = np.zeros(shape, bool)
    trial = np.zeros(shape, bool)
    gold[5:15, 5:15, 5:15] = True
    trial[5:15, 5:15, 8:18] = True
    got = mask_metrics(gold, trial, s)
    assert got.dice == pytest.approx(0.7)
    assert got.jaccard == pytest.approx(700 / 1300)
    assert got.hd_mm == pytest.approx(1.5)
    # shift along k instead (2 mm per voxel): HD = 6 mm
    trial2 = np.zeros(shape, bool)
    trial2[8:18, 5:15, 5:15] = True
    assert mask_metrics(gold, trial2, s).hd_mm == pytest.approx(6.0)


def test_concentric_spheres_distance_is_radius_difference():
    # radii 8 mm and 11 mm on a 0.5 x 0.5 x 0.8 mm grid: surface distances ~ 3 mm
    spacing = (0.5, 0.5, 0.8)
    n = (40, 60, 60)
    k, j, i = np.ogrid[:n[0], :n[1], :n[2]]
    r = np.sqrt(((i - 30) * spacing[0]) ** 2 + ((j - 30) * spacing[1]) ** 2 + ((k - 20) * spacing[2]) ** 2)
    gold, trial = r <= 8.0, r <= 11.0
    got = mask_metrics(gold, trial, spacing)
    assert got.assd_mm == pytest.approx(3.0, abs=0.5)
    assert got.hd95_mm == pytest.approx(3.0, abs=0.6)
    assert got.dice == pytest.approx(2 * 8 ** 3 / (8 ** 3 + 11 ** 3), abs=0.02)
    vol_ml = got.voxels_trial * voxel_volume_ml(spacing)
    assert vol_ml == pytest.approx(4 / 3 * np.pi * 11 ** 3 / 1000, rel=0.02)


def test_identical_masks_are_perfect():
    rng = np.random.default_rng(3)
    m = _random_blob(rng, (5, 8, 8))
    got = mask_metrics(m, m.copy(), (1.0, 1.0, 3.0))
    assert (got.dice, got.jaccard, got.hd95_mm, got.hd_mm, got.assd_mm) == (1.0, 1.0, 0.0, 0.0, 0.0)


def test_empty_cases_have_defined_values():
    z = np.zeros((3, 4, 5), bool)
    one = z.copy()
    one[1, 2, 3] = True
    both = mask_metrics(z, z, (1, 1, 1))
    assert both.empty is EmptyCase.BOTH
    assert (both.dice, both.jaccard, both.hd95_mm, both.assd_mm) == (1.0, 1.0, 0.0, 0.0)
    g = mask_metrics(z, one, (1, 1, 1))
    assert g.empty is EmptyCase.GOLD and (g.dice, g.jaccard, g.hd95_mm, g.assd_mm) == (0.0, 0.0, None, None)
    t = mask_metrics(one, z, (1, 1, 1))
    assert t.empty is EmptyCase.TRIAL and t.voxels_gold == 1 and t.hd95_mm is None
    assert volume_difference_pct(0.0, 0.0) == 0.0
    assert volume_difference_pct(0.0, 1.0) is None
    assert volume_difference_pct(2.0, 3.0) == pytest.approx(50.0)


def test_single_voxel_masks_distance_is_centre_distance():
    z = np.zeros((5, 5, 5), bool)
    a, b = z.copy(), z.copy()
    a[1, 1, 1] = True
    b[3, 2, 4] = True
    spacing = (0.5, 2.0, 3.0)
    got = mask_metrics(a, b, spacing)
    want = np.sqrt((3 * 0.5) ** 2 + (1 * 2.0) ** 2 + (2 * 3.0) ** 2)
    assert got.hd_mm == pytest.approx(want) and got.hd95_mm == pytest.approx(want) and got.assd_mm == pytest.approx(want)
    assert got.dice == 0.0
