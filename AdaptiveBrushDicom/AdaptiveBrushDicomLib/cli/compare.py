"""``abdicom compare``: trials against a gold standard (Dice, Jaccard, HD95, ASSD, volumes).

Two forms::

    abdicom compare GOLD TRIAL... [--reference DIR]
    abdicom compare RUN [--gold GOLD]       (a migrated run: its gold standard vs every trial)

Options for both: ``--json``, ``--csv FILE``, ``--plot FILE.png``, ``--resample nearest``,
``--jobs N``, ``--quiet``, ``--force``. Definitions: docs/compare.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from AdaptiveBrushDicomLib.errors import UserError


@dataclass
class CompareInputs:
    """What to compare, resolved from the command line or a run folder."""

    gold: Path
    trials: list[Any]
    reference: Path | None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    run: Any = None


def gold_file_of(gold: Any) -> Path:
    """The gold standard's DICOM SEG when migrated (and present), else its ``gold.seg.nrrd``."""
    seg = getattr(gold, "seg_path", None)
    if seg is not None and Path(seg).is_file():
        return Path(seg)
    return Path(gold.source_path)


def run_inputs(run_dir: Path, gold_override: str | None = None) -> CompareInputs:
    """Gold standard, reference series and trial SEGs of a migrated run (from results.json).

    Raises
    ------
    UserError
        Not a migrated run, or no gold standard found (and none given with ``--gold``).
    """
    from AdaptiveBrushDicomLib.analysis.compare import TrialInput
    from AdaptiveBrushDicomLib.runs.results import load_gold_standard, load_run

    run = load_run(run_dir)
    if gold_override is not None:
        g = Path(gold_override)
        gold_path = gold_file_of(load_gold_standard(g)) if g.is_dir() else g
    else:
        gold = run.gold_standard()
        if gold is None:
            raise UserError(
                "no gold standard found for this run (GoldStandards/ next to the run with the same "
                "StudyInstanceUID or sample name); give one with --gold FILE_OR_FOLDER", run_dir)
        gold_path = gold_file_of(gold)
    trials, skipped = [], []
    for t in run.trials:
        if t.seg_path is None:
            skipped.append({"trial_number": t.number, "reason": t.status or "no DICOM SEG (run not migrated?)"})
            continue
        trials.append(TrialInput(Path(t.seg_path), t.number, t.series_instance_uid))
    if not trials:
        raise UserError("the run has no migrated trial SEG to compare; run `abdicom migrate` on it first", run_dir)
    return CompareInputs(gold_path, trials, run.volume_dir, skipped, run)


def resolve_inputs(args: argparse.Namespace) -> CompareInputs:
    """Decide between ``compare RUN`` and ``compare GOLD TRIAL...``.

    Raises
    ------
    UserError
        A run folder mixed with files, ``--gold`` without a run, fewer than two files, or a
        run with no migrated trial.
    """
    from AdaptiveBrushDicomLib.runs.layout import is_run_dir

    paths = [Path(p) for p in args.paths]
    if is_run_dir(paths[0]):
        if len(paths) > 1:
            raise UserError("give either one RUN folder or GOLD TRIAL...; not a run folder and files", paths[0])
        inputs = run_inputs(paths[0], args.gold)
        if args.reference:
            inputs.reference = Path(args.reference)
        return inputs
    if args.gold:
        raise UserError("--gold is for `abdicom compare RUN`; otherwise the first file is the gold standard")
    if len(paths) < 2:
        raise UserError("give a gold standard and at least one trial (GOLD TRIAL...), or a migrated RUN folder",
                        paths[0])
    for p in paths:
        if not p.exists():
            raise UserError("no such file; check the path", p)
        if p.is_dir():
            raise UserError("expected a SEG or .seg.nrrd file (a run folder holds results.json)", p)
    return CompareInputs(paths[0], paths[1:], Path(args.reference) if args.reference else None)


def _check_output(path: str | None, force: bool, suffix: str | None = None) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if suffix and out.suffix.lower() != suffix:
        raise UserError(f"the file name must end in {suffix}", out)
    if out.exists() and not force:
        raise UserError("output exists; choose another path or pass --force", out)
    if not out.parent.is_dir():
        raise UserError("output folder does not exist; create it first", out.parent)
    return out


class Progress:
    """Trials done on stderr: a bar on a terminal, a plain line per trial otherwise."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, result: Any) -> None:
        if not self.enabled:
            return
        dice = "-" if result.mean_dice is None else f"{result.mean_dice:.3f}"
        if self.tty:
            width = 30
            filled = int(width * done / max(total, 1))
            self.stream.write(f"\rcompare [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                              f"{result.name} mean Dice {dice}\033[K")
            if done == total:
                self.stream.write("\n")
        else:
            self.stream.write(f"compare: {done}/{total} {result.name} mean Dice {dice}\n")
        self.stream.flush()


def cmd_compare(args: argparse.Namespace) -> int:
    """Handler of ``abdicom compare``.

    Raises
    ------
    UserError
        ``--jobs`` below 1, an output that exists without ``--force``, matplotlib missing for
        ``--plot``, or bad inputs (see :func:`resolve_inputs`).
    """
    from AdaptiveBrushDicomLib.analysis.compare import compare_files
    from AdaptiveBrushDicomLib.analysis.report import report_text, write_csv

    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    csv_out = _check_output(args.csv, args.force)
    plot_out = _check_output(args.plot, args.force, ".png")
    if plot_out is not None:
        from AdaptiveBrushDicomLib.analysis.plot import require_matplotlib

        require_matplotlib()
    inputs = resolve_inputs(args)
    show = not args.json and not args.quiet and len(inputs.trials) > 1
    report = compare_files(inputs.gold, inputs.trials, reference=inputs.reference, resample=args.resample,
                           jobs=args.jobs, progress=Progress(sys.stderr, show))
    report.skipped = inputs.skipped
    if csv_out is not None:
        write_csv(report, csv_out)
    if plot_out is not None:
        from AdaptiveBrushDicomLib.analysis.plot import write_plot

        title = f"run {inputs.run.name}" if inputs.run is not None else None
        write_plot(report, plot_out, title=title)
    if args.json:
        payload = report.to_dict()
        payload["csv"] = None if csv_out is None else str(csv_out)
        payload["plot"] = None if plot_out is None else str(plot_out)
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        text = report_text(report)
        if csv_out is not None:
            text += f"\nCSV written to {csv_out}"
        if plot_out is not None:
            text += f"\nplot written to {plot_out}"
        print(text)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compare`` to ``abdicom``'s subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "compare", help="trials vs gold standard: Dice, Jaccard, HD95, ASSD (mm), volumes (mL)",
        description=(
            "Compare trial segmentations with a gold standard: abdicom compare GOLD TRIAL... (SEG files of any "
            "writer or .seg.nrrd), or abdicom compare RUN (a migrated run: its gold standard against every "
            "trial). Segments are matched by name, then terminology, then label value; unmatched ones are "
            "listed. Metrics per trial and segment: Dice, Jaccard, HD95 and ASSD in mm (patient space), volumes "
            "in mL and their difference in %. See docs/compare.md."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="GOLD TRIAL... files, or one RUN folder")
    p.add_argument("--reference", metavar="DIR",
                   help="folder of the image series the SEGs refer to (full grid; image behind the plot)")
    p.add_argument("--gold", metavar="PATH", help="with RUN: the gold standard (file or gold standard folder)")
    p.add_argument("--resample", choices=["none", "nearest"], default="none",
                   help="resample trials that are not on the gold standard's voxel lattice (default: refuse)")
    p.add_argument("--csv", metavar="FILE", help="write one row per trial and segment")
    p.add_argument("--plot", metavar="FILE.png", help="write a PNG: trials ranked, best/worst contours (matplotlib)")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: 1 for few trials, else CPUs)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--force", action="store_true", help="overwrite --csv / --plot files")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_compare)
    return p


__all__ = ["cmd_compare", "register", "run_inputs", "resolve_inputs", "gold_file_of", "CompareInputs"]
