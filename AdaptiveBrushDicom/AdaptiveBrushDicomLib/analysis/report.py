"""A :class:`~.compare.ComparisonReport` as text, CSV rows and table rows for the Slicer module."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

from AdaptiveBrushDicomLib.analysis.compare import ComparisonReport, SegmentComparison, TrialComparison
from AdaptiveBrushDicomLib.analysis.matching import MatchMethod

#: Columns of :func:`metrics_table_rows` and of the CSV file (units in the names).
TABLE_COLUMNS = ("rank", "trial", "segment", "dice", "jaccard", "hd95_mm", "assd_mm",
                 "volume_gold_ml", "volume_trial_ml", "volume_diff_pct")
CSV_COLUMNS = ("trial_number", "path", "series_instance_uid", "segment", "trial_segment", "matched_by",
               "dice", "jaccard", "hd95_mm", "hd_mm", "assd_mm", "volume_gold_ml", "volume_trial_ml",
               "volume_diff_pct", "voxels_gold", "voxels_trial", "empty", "mean_dice")


def fmt(value: float | None, digits: int = 3, missing: str = "-") -> str:
    """A number for people: fixed digits, ``missing`` for an undefined value."""
    return missing if value is None else f"{value:.{digits}f}"


def _trial_cells(rank: int | None, trial: TrialComparison, seg: SegmentComparison) -> list[str]:
    m = seg.metrics
    name = seg.name if seg.matched_by is MatchMethod.NAME else f"{seg.name} (= {seg.trial_name}, by {seg.matched_by.value})"
    return ["" if rank is None else str(rank), trial.name, name, fmt(m.dice), fmt(m.jaccard), fmt(m.hd95_mm, 2),
            fmt(m.assd_mm, 2), fmt(seg.volume_gold_ml, 2), fmt(seg.volume_trial_ml, 2), fmt(seg.volume_diff_pct, 1)]


def metrics_table_rows(report: ComparisonReport) -> list[list[str]]:
    """Rows (strings, :data:`TABLE_COLUMNS` order) of the metrics table, best trial first.

    One row per matched segment of each trial, plus one row per trial without any
    matched segment (metric cells ``-``, segment cell listing what is unmatched). This is
    what the Slicer module shows in *Compare trials* and the CLI prints.
    """
    rows: list[list[str]] = []
    for rank, trial in enumerate(report.ranked(), start=1):
        shown_rank: int | None = rank if trial.mean_dice is not None else None
        if not trial.segments:
            missing = ", ".join(trial.unmatched_gold) or "none"
            rows.append(["", trial.name, f"no matching segment (gold: {missing})"] + ["-"] * 7)
            continue
        for n, seg in enumerate(trial.segments):
            rows.append(_trial_cells(shown_rank if n == 0 else None, trial, seg))
    return rows


def metrics_table(gold_file: str | Path, trial_files: Sequence[str | Path], *,
                  reference: str | Path | None = None) -> tuple[tuple[str, ...], list[list[str]]]:
    """The Slicer module's *Compare trials* table: column names and rows, best trial first.

    Runs :func:`~.compare.compare_files` in this process (``jobs=1``: no worker processes
    inside Slicer's embedded interpreter) and formats it with :func:`metrics_table_rows`.

    Parameters
    ----------
    gold_file : the gold standard's SEG (or ``.seg.nrrd``)
    trial_files : the trials' SEG files
    reference : folder of the image series they refer to (the full grid), optional

    Raises
    ------
    UserError
        A file missing or unreadable, or a trial on another grid (one line, names the file).
    """
    from AdaptiveBrushDicomLib.analysis.compare import compare_files

    report = compare_files(gold_file, list(trial_files), reference=reference, jobs=1)
    return TABLE_COLUMNS, metrics_table_rows(report)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(header)]
    numeric = {0} | set(range(3, len(header)))

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def report_text(report: ComparisonReport) -> str:
    """The comparison for people: gold standard, the metrics table (best first), the
    unmatched segments, the best trial and how the empty cases were scored."""
    gold = report.gold
    vols = ", ".join(f"{name} {ml:.2f} mL" for name, ml in report.gold_volumes_ml.items())
    lines = [f"gold standard {gold.path}: {len(gold.labelmap.segments)} segment(s) ({vols})",
             f"  grid {gold.labelmap.grid.describe()}", ""]
    header = ["rank", "trial", "segment", "Dice", "Jaccard", "HD95 mm", "ASSD mm", "gold mL", "trial mL", "diff %"]
    lines += _table(header, metrics_table_rows(report))
    for t in report.trials:
        if t.unmatched_gold or t.unmatched_trial:
            lines.append(f"{t.name}: unmatched gold segments: {', '.join(t.unmatched_gold) or 'none'}; "
                         f"unmatched trial segments: {', '.join(t.unmatched_trial) or 'none'}")
        for note in t.notes:
            lines.append(f"{t.name}: note: {note}")
    for s in report.skipped:
        lines.append(f"trial {s.get('trial_number')}: not compared ({s.get('reason')})")
    best = report.best
    if best is not None:
        lines.append(f"best: {best.name} (mean Dice {best.mean_dice:.3f}) {best.path}")
    empties = {seg.metrics.empty.value for t in report.trials for seg in t.segments} - {"none"}
    if empties:
        lines.append("empty segments: both empty = Dice 1, distances 0; one empty = Dice 0, distances undefined (-)")
    return "\n".join(lines)


def csv_rows(report: ComparisonReport) -> list[dict[str, Any]]:
    """One dict per (trial, matched segment), :data:`CSV_COLUMNS` keys, input order."""
    out = []
    for t in report.trials:
        for seg in t.segments:
            d = seg.to_dict()
            out.append({
                "trial_number": t.trial_number, "path": str(t.path), "series_instance_uid": t.series_instance_uid,
                "segment": seg.name, "trial_segment": seg.trial_name, "mean_dice": t.mean_dice,
                **{k: d[k] for k in CSV_COLUMNS if k in d},
            })
    return out


def csv_text(report: ComparisonReport) -> str:
    """:func:`csv_rows` as CSV (undefined values as empty cells)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(report):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def write_csv(report: ComparisonReport, path: str | Path) -> Path:
    """Write :func:`csv_text` to ``path`` (temporary name, then rename)."""
    from AdaptiveBrushDicomLib.io.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(csv_text(report), encoding="utf-8")
    return path


__all__ = ["TABLE_COLUMNS", "CSV_COLUMNS", "metrics_table", "metrics_table_rows", "report_text", "csv_rows", "csv_text",
           "write_csv", "fmt"]
