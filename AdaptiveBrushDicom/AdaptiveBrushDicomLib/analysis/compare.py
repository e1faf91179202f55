"""Trials against a gold standard: per segment Dice, Jaccard, HD95, ASSD and volumes.

:func:`compare_files` reads the gold standard once, then each trial (in worker processes
with ``jobs > 1``), matches segments (:mod:`.matching`), puts the trial on the gold grid
(:mod:`.loading`) and measures every matched pair (:mod:`.metrics`) inside the pair's
bounding box, so the cost follows the segment sizes rather than the image size.
Definitions, units and the empty cases: ``docs/compare.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from AdaptiveBrushDicomLib.analysis.loading import Segmentation, common_grid, on_grid, read_for_compare
from AdaptiveBrushDicomLib.analysis.matching import MatchMethod, match_segments
from AdaptiveBrushDicomLib.analysis.metrics import (
    EmptyCase,
    MaskMetrics,
    empty_metrics,
    mask_metrics,
    union_box,
    volume_difference_pct,
    voxel_volume_ml,
)
from AdaptiveBrushDicomLib.core.align import Resample
from AdaptiveBrushDicomLib.core.geometry import Grid

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

Box = tuple[slice, slice, slice]


def label_boxes(array: np.ndarray) -> dict[tuple[int, int], tuple[Box, int]]:
    """Bounding box and voxel count of every non-zero label, in one pass over the array.

    Parameters
    ----------
    array : (k, j, i) or (layer, k, j, i) integer labels

    Returns
    -------
    dict
        ``(layer, label) -> ((k, j, i) slices, voxel count)``; layer 0 for a 3D array.
    """
    layers = array[np.newaxis] if array.ndim == 3 else array
    nk, nj, ni = layers.shape[1:]
    out: dict[tuple[int, int], tuple[Box, int]] = {}
    for layer_index, layer in enumerate(layers):
        flat = layer.reshape(-1)
        where = np.flatnonzero(flat)
        if where.size == 0:
            continue
        values = flat[where]
        order = np.argsort(values, kind="stable")
        values, where = values[order], where[order]
        labels, starts, counts = np.unique(values, return_index=True, return_counts=True)
        k, rest = np.divmod(where, nj * ni)
        j, i = np.divmod(rest, ni)
        for label, start, count in zip(labels, starts, counts):
            sl = slice(int(start), int(start + count))
            box = (slice(int(k[sl].min()), int(k[sl].max()) + 1), slice(int(j[sl].min()), int(j[sl].max()) + 1),
                   slice(int(i[sl].min()), int(i[sl].max()) + 1))
            out[(layer_index, int(label))] = (box, int(count))
    return out


@dataclass
class SegmentComparison:
    """One matched gold/trial segment pair. Volumes in mL, distances in mm."""

    name: str
    trial_name: str
    gold_label: int
    trial_label: int
    matched_by: MatchMethod
    metrics: MaskMetrics
    volume_gold_ml: float
    volume_trial_ml: float

    @property
    def volume_diff_pct(self) -> float | None:
        return volume_difference_pct(self.volume_gold_ml, self.volume_trial_ml)

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "name": self.name, "trial_name": self.trial_name, "gold_label": self.gold_label,
            "trial_label": self.trial_label, "matched_by": self.matched_by.value,
            "dice": m.dice, "jaccard": m.jaccard, "hd95_mm": m.hd95_mm, "hd_mm": m.hd_mm, "assd_mm": m.assd_mm,
            "volume_gold_ml": self.volume_gold_ml, "volume_trial_ml": self.volume_trial_ml,
            "volume_diff_pct": self.volume_diff_pct, "voxels_gold": m.voxels_gold, "voxels_trial": m.voxels_trial,
            "empty": m.empty.value,
        }


@dataclass
class TrialComparison:
    """A trial against the gold standard."""

    path: Path
    trial_number: int | None
    series_instance_uid: str | None
    segments: list[SegmentComparison] = field(default_factory=list)
    unmatched_gold: list[str] = field(default_factory=list)
    unmatched_trial: list[str] = field(default_factory=list)
    resampled: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def mean_dice(self) -> float | None:
        """Mean Dice over the matched segments; None when no segment matched."""
        if not self.segments:
            return None
        return float(np.mean([s.metrics.dice for s in self.segments]))

    @property
    def name(self) -> str:
        return f"trial {self.trial_number}" if self.trial_number is not None else self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "trial_number": self.trial_number,
            "series_instance_uid": self.series_instance_uid, "mean_dice": self.mean_dice,
            "segments": [s.to_dict() for s in self.segments], "unmatched_gold": list(self.unmatched_gold),
            "unmatched_trial": list(self.unmatched_trial), "resampled": self.resampled, "notes": list(self.notes),
        }


@dataclass
class ComparisonReport:
    """Gold standard, trials in input order, and trials that could not be compared."""

    gold: Segmentation
    gold_volumes_ml: dict[str, float]
    trials: list[TrialComparison]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    reference: Path | None = None

    def ranked(self) -> list[TrialComparison]:
        """Trials by mean Dice, best first; trials without a matched segment last."""
        return sorted(self.trials, key=lambda t: (t.mean_dice is None, -(t.mean_dice or 0.0)))

    @property
    def best(self) -> TrialComparison | None:
        ranked = [t for t in self.ranked() if t.mean_dice is not None]
        return ranked[0] if ranked else None

    @property
    def worst(self) -> TrialComparison | None:
        ranked = [t for t in self.ranked() if t.mean_dice is not None]
        return ranked[-1] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        lm = self.gold.labelmap
        return {
            "gold": {
                "path": str(self.gold.path), "series_instance_uid": self.gold.series_instance_uid,
                "grid": lm.grid.describe(),
                "segments": [{"name": s.name, "label": s.label, "volume_ml": self.gold_volumes_ml.get(s.name, 0.0)}
                             for s in lm.segments],
            },
            "reference": None if self.reference is None else str(self.reference),
            "trials": [t.to_dict() for t in self.trials],
            "skipped": list(self.skipped),
            "best_trial": None if self.best is None else self.best.trial_number,
        }


def _segment_pair(gold_arr: np.ndarray, gold_label: int, gold_box: Box | None,
                  trial_arr: np.ndarray, trial_label: int, trial_box: Box | None,
                  spacing: Sequence[float]) -> MaskMetrics:
    box = union_box(gold_box, trial_box)
    if box is None:
        return empty_metrics(0, 0)
    return mask_metrics(gold_arr[box] == gold_label, trial_arr[box] == trial_label, spacing)


def _layer(array: np.ndarray, layer: int) -> np.ndarray:
    return array if array.ndim == 3 else array[layer]


def compare_trial(gold: Segmentation, trial: Segmentation, *, resample: Resample | str = Resample.NONE,
                  gold_boxes: dict[tuple[int, int], tuple[Box, int]] | None = None) -> TrialComparison:
    """Compare one trial with the gold standard (both already read).

    Parameters
    ----------
    gold, trial : from :func:`~.loading.read_for_compare`
    resample : ``nearest`` to resample a trial that is not on the gold's voxel lattice
    gold_boxes : :func:`label_boxes` of the gold array (computed when None)

    Raises
    ------
    ReferenceMismatchError
        The trial is on another lattice and ``resample`` is none.
    """
    match = match_segments(gold.labelmap.segments, trial.labelmap.segments)
    grid: Grid = common_grid(gold.labelmap.grid, [trial.labelmap.grid])
    if grid is gold.labelmap.grid:
        gold_arr = gold.labelmap.array
    else:
        gold_arr, _ = on_grid(gold, grid)
        gold_boxes = None
    trial_arr, resampled = on_grid(trial, grid, resample)
    gold_boxes = label_boxes(gold_arr) if gold_boxes is None else gold_boxes
    trial_boxes = label_boxes(trial_arr)
    native_ml = voxel_volume_ml(trial.labelmap.grid.spacing_ijk)
    native_counts = label_boxes(trial.labelmap.array) if resampled else trial_boxes
    ml = voxel_volume_ml(grid.spacing_ijk)
    out = TrialComparison(trial.path, trial.trial_number, trial.series_instance_uid, resampled=resampled,
                          notes=list(trial.notes) + match.notes)
    for m in match.matches:
        gk, tk = (m.gold.layer, m.gold.label), (m.trial.layer, m.trial.label)
        gb, tb = gold_boxes.get(gk), trial_boxes.get(tk)
        metrics = _segment_pair(_layer(gold_arr, m.gold.layer), m.gold.label, gb[0] if gb else None,
                                _layer(trial_arr, m.trial.layer), m.trial.label, tb[0] if tb else None, grid.spacing_ijk)
        trial_count = native_counts.get(tk, (None, 0))[1]
        out.segments.append(SegmentComparison(
            name=m.gold.name, trial_name=m.trial.name, gold_label=m.gold.label, trial_label=m.trial.label,
            matched_by=m.method, metrics=metrics, volume_gold_ml=metrics.voxels_gold * ml,
            volume_trial_ml=trial_count * (native_ml if resampled else ml)))
    out.unmatched_gold = [s.name for s in match.unmatched_gold]
    out.unmatched_trial = [s.name for s in match.unmatched_trial]
    if resampled:
        out.notes.append("not on the gold grid: resampled (nearest neighbour) onto it; trial volume from its own grid")
    return out


@dataclass(frozen=True)
class TrialInput:
    """A trial file to compare, with what the caller knows about it."""

    path: Path
    trial_number: int | None = None
    series_instance_uid: str | None = None


# ----------------------------------------------------------------------------- workers
_WORKER: dict[str, Any] = {}


def _init_worker(gold_path: str, reference: str | None, resample: str) -> None:
    """Initializer of a worker process: single-threaded ITK (one process per core), the gold read once."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    _load_gold(gold_path, reference, resample)


def _load_gold(gold_path: str, reference: str | None, resample: str) -> None:
    ref = _reference(reference)
    gold = read_for_compare(gold_path, ref)
    _WORKER.update(gold=gold, reference=ref, resample=resample, boxes=label_boxes(gold.labelmap.array))


def _reference(folder: str | Path | None) -> ReferenceSeries | None:
    if folder is None:
        return None
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    return ReferenceSeries.from_folder(folder)


def _work(item: TrialInput) -> TrialComparison:
    trial = read_for_compare(item.path, _WORKER["reference"])
    if item.trial_number is not None:
        trial.trial_number = item.trial_number
    if item.series_instance_uid is not None:
        trial.series_instance_uid = item.series_instance_uid
    return compare_trial(_WORKER["gold"], trial, resample=_WORKER["resample"], gold_boxes=_WORKER["boxes"])


def default_jobs(n_trials: int) -> int:
    """Worker processes for ``n_trials``: 1 for a few trials, else the CPUs (at most 8)."""
    if n_trials < 6:
        return 1
    return max(1, min(os.cpu_count() or 1, 8, n_trials // 3))


def compare_files(
    gold_path: str | Path,
    trials: Sequence[TrialInput | str | Path],
    *,
    reference: str | Path | None = None,
    resample: Resample | str = Resample.NONE,
    jobs: int | None = None,
    progress: Callable[[int, int, TrialComparison], None] | None = None,
) -> ComparisonReport:
    """Compare every trial file with the gold standard file.

    Parameters
    ----------
    gold_path : SEG (any writer) or ``.seg.nrrd`` of the gold standard
    trials : trial files (SEG or ``.seg.nrrd``), or :class:`TrialInput` with a known trial number
    reference : folder of the image series the SEGs refer to (full grid); optional
    resample : ``nearest`` to resample trials that are not on the gold's lattice
    jobs : worker processes (None: :func:`default_jobs`)
    progress : called as ``progress(done, total, result)`` after each trial

    Returns
    -------
    ComparisonReport
        Trials in input order.

    Raises
    ------
    UserError
        A file missing or unreadable, or a trial on another grid without ``resample``
        (the message names the file); nothing is returned then.
    """
    items = [t if isinstance(t, TrialInput) else TrialInput(Path(t)) for t in trials]
    resample = Resample(resample).value
    ref_str = None if reference is None else str(reference)
    jobs = default_jobs(len(items)) if jobs is None else max(1, int(jobs))
    _load_gold(str(gold_path), ref_str, resample)  # in this process: ITK threading left as the caller set it
    gold = _WORKER["gold"]
    results: list[TrialComparison | None] = [None] * len(items)
    if jobs == 1 or len(items) < 2:
        for n, item in enumerate(items):
            results[n] = _work(item)
            if progress:
                progress(n + 1, len(items), results[n])  # type: ignore[arg-type]
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                 initargs=(str(gold_path), ref_str, resample)) as pool:
            futures = {pool.submit(_work, item): n for n, item in enumerate(items)}
            for done, fut in enumerate(as_completed(futures), start=1):
                n = futures[fut]
                results[n] = fut.result()
                if progress:
                    progress(done, len(items), results[n])  # type: ignore[arg-type]
    ml = voxel_volume_ml(gold.labelmap.grid.spacing_ijk)
    counts = _WORKER["boxes"]
    volumes = {s.name: counts.get((s.layer, s.label), (None, 0))[1] * ml for s in gold.labelmap.segments}
    return ComparisonReport(gold=gold, gold_volumes_ml=volumes, trials=[r for r in results if r is not None],
                            reference=None if reference is None else Path(reference))


__all__ = ["label_boxes", "SegmentComparison", "TrialComparison", "ComparisonReport", "TrialInput",
           "compare_trial", "compare_files", "default_jobs", "EmptyCase"]
