"""``abdicom runs RUN...``: a migrated run's trials ranked by their objective value.

The direction (maximize / minimize) and the values come from results.json; SEG paths and
SeriesInstanceUIDs from its ``dicom_*`` fields. When the run has a gold standard (found
like ``abdicom compare RUN`` finds it), each trial's mean Dice against it is added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.errors import UserError


def run_folders(paths: list[str]) -> list[Path]:
    """Run folders named on the command line; a folder of runs stands for every run in it.

    Raises
    ------
    UserError
        A path does not exist, or is neither a run nor a folder of runs.
    """
    from AdaptiveBrushDicomLib.runs.layout import is_run_dir

    out: list[Path] = []
    for p in map(Path, paths):
        if is_run_dir(p):
            out.append(p)
        elif p.is_dir() and any(is_run_dir(c) for c in p.iterdir()):
            out.extend(sorted(c for c in p.iterdir() if is_run_dir(c)))
        elif not p.exists():
            raise UserError("no such folder; check the path", p)
        else:
            raise UserError("not an optimization run (no results.json) nor a folder of runs", p)
    return out


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != "algorithm")


def _mean_dice(run: Any, jobs: int | None) -> tuple[dict[int, float | None], str | None]:
    """Mean Dice per trial number against the run's gold standard ({} when there is none)."""
    from AdaptiveBrushDicomLib.analysis.compare import TrialInput, compare_files
    from AdaptiveBrushDicomLib.cli.compare import gold_file_of

    gold = run.gold_standard()
    trials = [TrialInput(Path(t.seg_path), t.number, t.series_instance_uid) for t in run.trials if t.seg_path]
    if gold is None or not trials:
        return {}, None
    gold_path = gold_file_of(gold)
    report = compare_files(gold_path, trials, reference=run.volume_dir, jobs=jobs)
    return {t.trial_number: t.mean_dice for t in report.trials if t.trial_number is not None}, str(gold_path)


def run_summary(folder: Path, *, dice: bool = True, jobs: int | None = None) -> dict[str, Any]:
    """One run as a JSON-ready dict: trials ranked (best first), then unscored trials."""
    from AdaptiveBrushDicomLib.runs.results import load_run

    run = load_run(folder)
    dices, gold = _mean_dice(run, jobs) if dice else ({}, None)
    best = run.best_trial
    ranked = run.ranked()
    rest = [t for t in run.trials if t not in ranked]
    trials = []
    for rank, t in enumerate(ranked + rest, start=1):
        trials.append({
            "rank": rank if t in ranked else None, "trial_number": t.number, "value": t.value, "pruned": t.pruned,
            "status": t.status, "algorithm": t.algorithm, "params": t.params,
            "seg_path": None if t.seg_path is None else str(t.seg_path),
            "series_instance_uid": t.series_instance_uid, "mean_dice": dices.get(t.number),
            "best": best is not None and t.number == best.number,
        })
    return {"name": run.name, "folder": str(folder), "direction": run.direction, "gold": gold, "dice_computed": dice,
            "best_trial": None if best is None else best.number, "trials": trials}


def _relative(path: str, folder: str) -> str:
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return path


def summary_text(summary: dict[str, Any]) -> str:
    """The run for people: one line per trial, ``*`` marks the best."""
    from AdaptiveBrushDicomLib.analysis.report import fmt

    trials = summary["trials"]
    n_seg = sum(1 for t in trials if t["seg_path"])
    if not summary["dice_computed"]:
        gold = "Dice not computed (--no-dice)"
    else:
        gold = f"gold standard {summary['gold']}" if summary["gold"] else "no gold standard found (no Dice)"
    lines = [f"run {summary['name']} ({summary['folder']}): {len(trials)} trials, {n_seg} SEGs, value to {summary['direction']}; {gold}"]
    header = ("", "rank", "trial", "value", "mean Dice", "algorithm", "SeriesInstanceUID", "SEG", "parameters")
    rows = []
    for t in trials:
        seg = "-" if t["seg_path"] is None else _relative(t["seg_path"], summary["folder"])
        status = "" if t["rank"] is not None else f" ({t['status'] or ('pruned' if t['pruned'] else 'no value')})"
        rows.append(("*" if t["best"] else "", "" if t["rank"] is None else str(t["rank"]), str(t["trial_number"]),
                     fmt(t["value"], 4) + status, fmt(t["mean_dice"]), str(t["algorithm"] or "-"),
                     t["series_instance_uid"] or "-", seg, _params_text(t["params"])))
    widths = [max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(header)]
    for cells in [header] + rows:
        lines.append("  ".join(c.rjust(w) if i in (1, 2, 3, 4) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(cells, widths))).rstrip())
    return "\n".join(lines)


def cmd_runs(args: argparse.Namespace) -> int:
    """Handler of ``abdicom runs``.

    Raises
    ------
    UserError
        ``--jobs`` below 1, or a path that is not a run (see :func:`run_folders`).
    """
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    summaries = [run_summary(f, dice=not args.no_dice, jobs=args.jobs) for f in run_folders(args.runs)]
    if args.json:
        print(json.dumps({"runs": summaries}, sort_keys=True, default=str))
    else:
        print("\n\n".join(summary_text(s) for s in summaries))
    sys.stdout.flush()
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``runs`` to ``abdicom``'s subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "runs", help="a migrated run's trials ranked by value, with SEG, SeriesInstanceUID and mean Dice",
        description=(
            "List the trials of migrated optimization runs, best first (direction from results.json), with "
            "parameters, SEG path, SeriesInstanceUID and, when the run has a gold standard, the mean Dice "
            "against it (see abdicom compare). The best trial (results.json best_trial) is marked with *."
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder (results.json), or a folder of runs")
    p.add_argument("--no-dice", action="store_true", help="do not compare with the gold standard (faster)")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes for the Dice computation")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_runs)
    return p


__all__ = ["cmd_runs", "register", "run_summary", "summary_text", "run_folders"]
