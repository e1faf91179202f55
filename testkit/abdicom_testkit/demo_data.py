"""A legacy optimization run built from generated data (for the demo and the tests).

:func:`build_demo_legacy` writes, under ``root``::

    volumes/<sample>.nrrd                                the source image (phantom)
    optimization_results/<run>/config.yaml               names the sample
    optimization_results/<run>/results.json              legacy shape (Optuna-like)
    optimization_results/<run>/segmentations/trial_NNN.seg.nrrd   one per trial but the pruned one
    GoldStandards/<sample>_tumor/gold.seg.nrrd + metadata.json

The trials are real segmentations: region growing from a seed inside the phantom's tumor,
alternating SimpleITK ``ConnectedThreshold`` (varying lower/upper thresholds) and
``ConfidenceConnected`` (varying multiplier), so trials differ and have different Dice
values against the gold standard. One trial is pruned and has no file.

Voxels, parameters, values and file modification times (fixed) are deterministic. The
``.seg.nrrd`` bytes are not (pynrrd writes the date into a header comment), so to get two
byte-identical migrations copy one built tree (``shutil.copytree`` keeps mtimes).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from abdicom_testkit.phantom import make_phantom, phantom_grid
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Segment, Terminology

#: Name of the demo sample (source image) and run.
DEMO_SAMPLE = "AdaptiveBrushPhantom"
DEMO_RUN = "phantom_tumor_region_growing"
#: 2026-01-01T00:00:00Z: modification time given to generated files (plus the trial number).
FIXED_MTIME = 1767225600
TUMOR_LABEL = 4


@dataclass
class DemoPaths:
    """Where :func:`build_demo_legacy` put things."""

    root: Path
    volumes_dir: Path
    volume_path: Path
    runs_dir: Path
    run_dir: Path
    gold_standards_dir: Path
    gold_dir: Path
    sample: str
    n_trials: int
    pruned_trials: list[int]


def copy_demo(template: DemoPaths, dest: Path) -> DemoPaths:
    """Copy the legacy tree (keeping mtimes) and return its paths under ``dest``."""
    shutil.copytree(template.root, dest, copy_function=shutil.copy2, symlinks=True)

    def move(p: Path) -> Path:
        return dest / p.relative_to(template.root)

    return replace(template, root=dest, volumes_dir=move(template.volumes_dir), volume_path=move(template.volume_path),
                   runs_dir=move(template.runs_dir), run_dir=move(template.run_dir),
                   gold_standards_dir=move(template.gold_standards_dir), gold_dir=move(template.gold_dir))


def _write_volume(image: np.ndarray, grid: Grid, path: Path) -> None:
    import SimpleITK as sitk

    img = grid.apply_to_sitk(sitk.GetImageFromArray(image))
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # keeps the suffix SimpleITK needs
    sitk.WriteImage(img, str(tmp), True)
    os.replace(tmp, path)


def _region_grow(image: np.ndarray, grid: Grid, seed_ijk: tuple[int, int, int], params: dict[str, Any]) -> np.ndarray:
    """Run the trial's algorithm; returns a uint8 (k, j, i) mask."""
    import SimpleITK as sitk

    img = grid.apply_to_sitk(sitk.GetImageFromArray(image.astype(np.float32)))
    seed = [tuple(int(v) for v in seed_ijk)]
    if params["algorithm"] == "connected_threshold":
        out = sitk.ConnectedThreshold(img, seedList=seed, lower=float(params["lower"]),
                                      upper=float(params["upper"]), replaceValue=1)
    elif params["algorithm"] == "confidence_connected":
        out = sitk.ConfidenceConnected(img, seedList=seed, numberOfIterations=int(params["iterations"]),
                                       multiplier=float(params["multiplier"]),
                                       initialNeighborhoodRadius=int(params["radius"]), replaceValue=1)
    else:  # pragma: no cover - only the two above are generated
        raise ValueError(params["algorithm"])
    return sitk.GetArrayFromImage(out).astype(np.uint8)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    denom = int(a.sum()) + int(b.sum())
    return 1.0 if denom == 0 else round(2.0 * int((a & b).sum()) / denom, 6)


#: (lower, upper) intensity windows of the connected-threshold trials: from too narrow
#: (holes) through good to too wide (leaks into the brain, intensity ~600).
_WINDOWS = [(1040.0, 1300.0), (1085.0, 1125.0), (990.0, 1250.0), (1070.0, 1140.0), (560.0, 1300.0),
            (1060.0, 1160.0)]
#: ConfidenceConnected multipliers of the other trials.
_MULTIPLIERS = [1.0, 2.5, 1.5, 0.6]


def _trial_params(n: int, n_trials: int) -> dict[str, Any]:
    if n % 2 == 0:
        lower, upper = _WINDOWS[(n // 2) % len(_WINDOWS)]
        return {"algorithm": "connected_threshold", "lower": lower, "upper": upper}
    return {"algorithm": "confidence_connected", "multiplier": _MULTIPLIERS[(n // 2) % len(_MULTIPLIERS)],
            "iterations": 3, "radius": 1}


def _tumor_segment(algorithm_type: AlgorithmType = AlgorithmType.AUTOMATIC) -> Segment:
    from abdicom_testkit.phantom import MORPHOLOGICALLY_ABNORMAL
    from AdaptiveBrushDicomLib.core.segment import Code

    return Segment(
        label=1, name="Tumor", color=(255, 60, 40),
        terminology=Terminology(category=MORPHOLOGICALLY_ABNORMAL, type=Code("108369006", "SCT", "Neoplasm")),
        algorithm_type=algorithm_type, segment_id="Segment_1",
    )


def build_demo_legacy(
    root: str | Path,
    n_trials: int = 8,
    *,
    shape: tuple[int, int, int] = (24, 64, 64),
    sample: str = DEMO_SAMPLE,
    run_name: str = DEMO_RUN,
    pruned: tuple[int, ...] | None = None,
) -> DemoPaths:
    """Write a legacy run + gold standard + source volume under ``root`` (see module docstring).

    Parameters
    ----------
    root : folder to create things in (created if needed; existing demo files are replaced)
    n_trials : number of trials (>= 2)
    shape : (k, j, i) size of the phantom
    sample : sample name (volume file name, config.yaml ``sample_data``)
    run_name : run folder name
    pruned : trial numbers without a segmentation file (default: the second to last one)

    Returns
    -------
    DemoPaths
    """
    import yaml

    if n_trials < 2:
        raise ValueError("n_trials must be at least 2")
    root = Path(root)
    grid = phantom_grid(shape=shape)
    image, labels, _ = make_phantom(grid)
    gold_mask = (labels == TUMOR_LABEL).astype(np.uint8)
    if pruned is None:
        pruned = (n_trials - 2,)

    volumes_dir = root / "volumes"
    runs_dir = root / "optimization_results"
    run_dir = runs_dir / run_name
    seg_dir = run_dir / "segmentations"
    golds = root / "GoldStandards"
    gold_dir = golds / f"{sample}_tumor"
    for d in (volumes_dir, seg_dir, gold_dir):
        d.mkdir(parents=True, exist_ok=True)

    volume_path = volumes_dir / f"{sample}.nrrd"
    _write_volume(image, grid, volume_path)

    kk, jj, ii = np.nonzero(gold_mask)
    seed_kji = (int(np.median(kk)), int(np.median(jj)), int(np.median(ii)))
    if not gold_mask[seed_kji]:
        seed_kji = (int(kk[0]), int(jj[0]), int(ii[0]))
    seed_ijk = (seed_kji[2], seed_kji[1], seed_kji[0])

    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    trials = []
    for n in range(n_trials):
        params = dict(_trial_params(n, n_trials), seed_ijk=list(seed_ijk))
        is_pruned = n in pruned
        mask = _region_grow(image, grid, seed_ijk, params)
        value = _dice(mask, gold_mask)
        path = seg_dir / f"trial_{n:03d}.seg.nrrd"
        if not is_pruned:
            write_seg_nrrd(LabelMap(mask, grid, [_tumor_segment()]), path)
            os.utime(path, (FIXED_MTIME + n, FIXED_MTIME + n))
        elif path.exists():
            path.unlink()  # our own file from an earlier build
        trials.append({
            "trial_number": n,
            "params": params,
            "value": None if is_pruned else value,
            "duration_ms": round(40.0 + 3.5 * n, 1),
            "pruned": is_pruned,
            "user_attrs": {"voxel_count": int(mask.sum())},
            "intermediate_values": {"0": round(value * 0.8, 6)} if is_pruned else {},
        })
    scored = [t for t in trials if t["value"] is not None]
    best = max(scored, key=lambda t: t["value"])
    results = {
        "config_name": run_name,
        "n_trials": n_trials,
        "best_trial": best,
        "trials": trials,
        "parameter_importance": {"algorithm": 0.6, "lower": 0.3, "multiplier": 0.1},
        "study_name": f"{run_name}_study",
        "direction": "maximize",
        "duration_seconds": round(sum(t["duration_ms"] for t in trials) / 1000.0, 3),
        "completed_at": "2026-01-01T00:10:00",
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    config = {
        "name": run_name,
        "description": "Region growing from one seed in the phantom tumor (generated demo data)",
        "sample_data": sample,
        "gold_standard": gold_dir.name,
        "n_trials": n_trials,
        "algorithms": ["connected_threshold", "confidence_connected"],
        "parameters": {"lower": {"low": 760, "high": 1060}, "upper": {"low": 1380, "high": 1500},
                       "multiplier": {"low": 1.2, "high": 2.7}},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    gold_path = gold_dir / "gold.seg.nrrd"
    write_seg_nrrd(LabelMap(gold_mask, grid, [_tumor_segment(AlgorithmType.SEMIAUTOMATIC)]), gold_path)
    os.utime(gold_path, (FIXED_MTIME, FIXED_MTIME))
    centre = grid.index_to_lps(np.array(seed_ijk, dtype=float))
    metadata = {
        "created": "2026-01-01T00:00:00",
        "sample_data": sample,
        "volume": {"name": sample, "spacing": list(grid.spacing_ijk), "dimensions": list(grid.size_ijk)},
        "segment_id": "Segment_1",
        "description": "Phantom tumor (ground truth of the generated phantom)",
        "algorithm": "manual_refinement",
        "base_algorithm": "connected_threshold",
        "parameters": {"brush_radius_mm": 10.0},
        "clicks": [{"ras": [round(-centre[0], 3), round(-centre[1], 3), round(centre[2], 3)]}],
        "statistics": {"voxel_count": int(gold_mask.sum())},
    }
    (gold_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    for p in (run_dir / "results.json", run_dir / "config.yaml", gold_dir / "metadata.json", volume_path):
        os.utime(p, (FIXED_MTIME, FIXED_MTIME))
    return DemoPaths(root=root, volumes_dir=volumes_dir, volume_path=volume_path, runs_dir=runs_dir,
                     run_dir=run_dir, gold_standards_dir=golds, gold_dir=gold_dir, sample=sample,
                     n_trials=n_trials, pruned_trials=sorted(pruned))


def migrate_paths(*args: Any, **kwargs: Any):
    """Same as :func:`AdaptiveBrushDicomLib.runs.migrate.migrate_paths` (what ``abdicom migrate`` calls)."""
    from AdaptiveBrushDicomLib.runs.migrate import migrate_paths as _migrate

    return _migrate(*args, **kwargs)


def run_demo_migration(root: str | Path, n_trials: int = 8, *, jobs: int = 1, out: Any = None) -> bool:
    """The migration part of the demo (``scripts/demo.py``): build a legacy run + gold
    standard under ``root``, migrate it, check it, print what happened.

    Checks: exit code 0; every migrated trial's SEG decodes voxel-exactly to its
    ``.seg.nrrd``; run and gold standard share one Study and one volume Series; a second
    migration says "already migrated" and changes no file.

    Returns
    -------
    bool
        True when every check passed.
    """
    import sys
    import time

    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.runs.results import load_run
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    from AdaptiveBrushDicomLib.errors import UserError

    out = out if out is not None else sys.stdout
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise UserError("folder is not empty; give a new or empty folder for the demo migration", root)
    paths = build_demo_legacy(root, n_trials=n_trials)
    pruned = ", ".join(str(n) for n in paths.pruned_trials) or "none"
    print(f"legacy run {paths.run_dir.name}: {n_trials} trials (pruned trial numbers: {pruned}), "
          f"gold standard {paths.gold_dir.name}, volume {paths.volume_path.name}", file=out)
    t0 = time.perf_counter()
    summary = migrate_paths([paths.root], volumes_dir=paths.volumes_dir, jobs=jobs, progress=False)
    seconds = time.perf_counter() - t0
    print(summary.to_text(), file=out)
    ok = summary.exit_code == 0
    run = load_run(paths.run_dir)
    gold = run.gold_standard()
    ref = ReferenceSeries.from_folder(run.volume_dir)
    print(f"{'trial':>5} {'algorithm':<22} {'value':>7}  {'SeriesDescription':<32} {'bytes':>7}  voxels", file=out)
    for t in run.trials:
        if t.seg_path is None:
            print(f"{t.number:>5} {str(t.algorithm):<22} {'-':>7}  ({t.status})", file=out)
            continue
        decoded = read_seg(t.seg_path, reference=ref)
        source = read_segmentation(paths.run_dir / "segmentations" / f"trial_{t.number:03d}.seg.nrrd")
        exact = bool(np.array_equal(decoded.labelmap.array.astype(np.int64), source.array.astype(np.int64)))
        ok &= exact
        value = f"{t.value:.3f}" if t.value is not None else "-"
        print(f"{t.number:>5} {str(t.algorithm):<22} {value:>7}  {decoded.series_description:<32} "
              f"{t.seg_path.stat().st_size:>7}  {'exact' if exact else 'DIFF'}", file=out)
    shared = gold is not None and gold.dicom is not None and \
        gold.dicom.volume_series_uid == run.dicom.volume_series_uid
    ok &= shared
    best = run.best_trial
    print(f"best trial {best.number if best else '-'}; gold standard shares the volume series: {shared}; "
          f"migration {seconds:.2f} s", file=out)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    again = migrate_paths([paths.root], progress=False)
    unchanged = all(r.status == "already_migrated" for r in again.reports) and \
        before == {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    print(f"second migration: {'already migrated, nothing changed' if unchanged else 'CHANGED FILES'}", file=out)
    return bool(ok and unchanged)


__all__ = ["DemoPaths", "build_demo_legacy", "migrate_paths", "run_demo_migration", "DEMO_SAMPLE", "DEMO_RUN"]
