"""Overlap and surface-distance metrics of two binary masks on one voxel grid.

Definitions (see ``docs/compare.md``), for a gold mask G and a trial mask T:

* Dice = 2 |G ∩ T| / (|G| + |T|), Jaccard = |G ∩ T| / |G ∪ T| (SimpleITK
  ``LabelOverlapMeasuresImageFilter``).
* Surfaces ∂G, ∂T: the mask voxels with at least one face neighbour (6-connectivity)
  outside the mask; voxels outside the array count as outside (SimpleITK
  ``BinaryContour``, fullyConnected off, on a zero-padded crop).
* d(p, ∂X): Euclidean distance in mm from the centre of voxel p to the nearest voxel
  centre of ∂X (SimpleITK ``SignedMaurerDistanceMap`` of the contour image, image
  spacing used, so anisotropic voxels are measured correctly).
* HD95 = max(P95{d(p, ∂T) : p ∈ ∂G}, P95{d(q, ∂G) : q ∈ ∂T}) (numpy percentile, linear
  interpolation); HD = the same with the maximum.
* ASSD = (Σ_{p∈∂G} d(p, ∂T) + Σ_{q∈∂T} d(q, ∂G)) / (|∂G| + |∂T|).

Distances are measured in patient space: the grid's direction matrix is a rotation, so
distances between voxel centres depend only on the spacing, whatever the orientation
(oblique grids included). Arrays are ``[k, j, i]``; spacing is ``(si, sj, sk)`` mm.

Empty masks (defined values, :class:`EmptyCase`):

* both empty: Dice = Jaccard = 1, HD95 = HD = ASSD = 0 (the two agree: nothing there);
* exactly one empty: Dice = Jaccard = 0, HD95 / HD / ASSD undefined (``None``: there is
  no surface to measure to).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

#: Percentile of the "robust" Hausdorff distance.
HD_PERCENTILE = 95.0


class EmptyCase(str, enum.Enum):
    """Which of the two masks has no voxel."""

    NONE = "none"
    BOTH = "both_empty"
    GOLD = "gold_empty"
    TRIAL = "trial_empty"


@dataclass(frozen=True)
class MaskMetrics:
    """Metrics of one gold/trial mask pair.

    Attributes
    ----------
    dice, jaccard : float in [0, 1]
    hd95_mm, hd_mm, assd_mm : float (mm) or None when exactly one mask is empty
    voxels_gold, voxels_trial, voxels_both : voxel counts of G, T and G ∩ T
    empty : which mask is empty, if any
    """

    dice: float
    jaccard: float
    hd95_mm: float | None
    hd_mm: float | None
    assd_mm: float | None
    voxels_gold: int
    voxels_trial: int
    voxels_both: int
    empty: EmptyCase

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["empty"] = self.empty.value
        return d


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in mL (spacing in mm; 1 mL = 1000 mm³)."""
    return float(np.prod(np.asarray(spacing, dtype=float))) / 1000.0


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Smallest (k, j, i) slices holding every True voxel of ``mask``; None if empty."""
    out = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return (out[0], out[1], out[2])


def union_box(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, slice, slice] | None:
    """Bounding box of two boxes (None = empty)."""
    if a is None:
        return None if b is None else (b[0], b[1], b[2])
    if b is None:
        return (a[0], a[1], a[2])
    s = [slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b)]
    return (s[0], s[1], s[2])


def _padded_image(mask: np.ndarray, spacing: Sequence[float]) -> Any:
    """uint8 SimpleITK image of ``mask`` with one voxel of background on every side."""
    import SimpleITK as sitk

    padded = np.zeros(tuple(n + 2 for n in mask.shape), dtype=np.uint8)
    padded[1:-1, 1:-1, 1:-1] = mask
    img = sitk.GetImageFromArray(padded)
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img


def empty_metrics(n_gold: int, n_trial: int) -> MaskMetrics:
    if n_gold == 0 and n_trial == 0:
        return MaskMetrics(1.0, 1.0, 0.0, 0.0, 0.0, 0, 0, 0, EmptyCase.BOTH)
    case = EmptyCase.GOLD if n_gold == 0 else EmptyCase.TRIAL
    return MaskMetrics(0.0, 0.0, None, None, None, n_gold, n_trial, 0, case)


def surface_distances(gold_img: Any, trial_img: Any) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances (mm) between two padded uint8 SimpleITK masks.

    Returns
    -------
    d_gold_to_trial : distance of every ∂G voxel centre to the nearest ∂T voxel centre
    d_trial_to_gold : the same from ∂T to ∂G
    """
    import SimpleITK as sitk

    contours = [sitk.BinaryContour(img, fullyConnected=False, backgroundValue=0, foregroundValue=1)
                for img in (gold_img, trial_img)]
    # GetArrayFromImage copies: a view of a temporary image would outlive its buffer
    distance = [
        sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
            c, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
        for c in contours
    ]
    surface = [sitk.GetArrayFromImage(c).astype(bool) for c in contours]
    # each contour voxel touches the background through a face, so the contour image has no
    # interior: |map| is the distance to the nearest contour voxel centre everywhere
    # float32 maps put ~1e-6 mm on shared voxels; a voxel on both surfaces is at distance 0
    both = surface[0] & surface[1]
    out = []
    for this, other in ((0, 1), (1, 0)):
        d = np.abs(distance[other]).astype(float)
        d[both] = 0.0
        out.append(d[surface[this]])
    return out[0], out[1]


def mask_metrics(gold: np.ndarray, trial: np.ndarray, spacing: Sequence[float]) -> MaskMetrics:
    """Dice, Jaccard, HD95, HD and ASSD of two boolean (k, j, i) masks on one grid.

    Parameters
    ----------
    gold, trial : numpy.ndarray of bool, same (k, j, i) shape
    spacing : (si, sj, sk) voxel spacing in mm (index order, as ``Grid.spacing_ijk``)

    Returns
    -------
    MaskMetrics
        Distances in mm; the empty cases as in the module docstring.

    Raises
    ------
    ValueError
        The masks differ in shape.
    """
    import SimpleITK as sitk

    gold = np.asarray(gold, dtype=bool)
    trial = np.asarray(trial, dtype=bool)
    if gold.shape != trial.shape or gold.ndim != 3:
        raise ValueError(f"masks must be 3D and of one shape, got {gold.shape} and {trial.shape}")
    box = union_box(bounding_box(gold), bounding_box(trial))
    n_gold, n_trial = int(np.count_nonzero(gold)), int(np.count_nonzero(trial))
    if box is None or n_gold == 0 or n_trial == 0:
        return empty_metrics(n_gold, n_trial)
    gold_img = _padded_image(gold[box], spacing)
    trial_img = _padded_image(trial[box], spacing)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(gold_img, trial_img)
    dice = float(overlap.GetDiceCoefficient(1))
    jaccard = float(overlap.GetJaccardCoefficient(1))
    both = int(np.count_nonzero(gold[box] & trial[box]))
    d_gt, d_tg = surface_distances(gold_img, trial_img)
    hd95 = max(float(np.percentile(d_gt, HD_PERCENTILE)), float(np.percentile(d_tg, HD_PERCENTILE)))
    hd = max(float(d_gt.max()), float(d_tg.max()))
    assd = float((d_gt.sum() + d_tg.sum()) / (d_gt.size + d_tg.size))
    return MaskMetrics(dice, jaccard, hd95, hd, assd, n_gold, n_trial, both, EmptyCase.NONE)


def volume_difference_pct(volume_gold: float, volume_trial: float) -> float | None:
    """(trial - gold) / gold in %; 0 when both are 0, None when only the gold is 0."""
    if volume_gold == 0:
        return 0.0 if volume_trial == 0 else None
    return 100.0 * (volume_trial - volume_gold) / volume_gold


__all__ = ["EmptyCase", "MaskMetrics", "empty_metrics", "HD_PERCENTILE", "mask_metrics", "surface_distances", "voxel_volume_ml",
           "bounding_box", "union_box", "volume_difference_pct"]
