"""The comparison as one PNG: trials ranked by mean Dice, and the best and the worst trial's
contours against the gold standard on the image slice where the two trials differ most.

matplotlib (a bare ``Figure``, rendered by Agg: no display, pyplot's backend untouched) is
imported inside the functions: it is an
optional dependency (``pip install 'AdaptiveBrushDicom[plot]'``), and Slicer does not
bundle it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.analysis.compare import ComparisonReport, TrialComparison
from AdaptiveBrushDicomLib.analysis.loading import Segmentation, common_grid, on_grid, read_for_compare
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.errors import UserError

GOLD_COLOR = "#ffd400"
BEST_COLOR = "#19c15b"
WORST_COLOR = "#e8334a"
OTHER_COLOR = "#8aa2c0"
#: Above this many trials the ranking is drawn as a curve instead of one bar per trial.
MAX_BARS = 30


def require_matplotlib() -> None:
    """Check that matplotlib can be imported (before any work is done).

    Raises
    ------
    UserError
        matplotlib is missing (one line saying what to install).
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib "
                        "(or pip install 'AdaptiveBrushDicom[plot]')") from None


def _gold_label_space(trial: TrialComparison, seg: Segmentation, grid: Grid) -> np.ndarray:
    """The trial's matched segments on ``grid``, relabelled with the gold label values."""
    arr, _ = on_grid(seg, grid, "nearest" if trial.resampled else "none")
    out = np.zeros(grid.shape_kji, dtype=np.int32)
    layer_of = {s.label: s.layer for s in seg.labelmap.segments}
    for s in trial.segments:
        layer = arr if arr.ndim == 3 else arr[layer_of.get(s.trial_label, 0)]
        out[layer == s.trial_label] = s.gold_label
    return out


def _gold_space(gold: Segmentation, grid: Grid, labels: set[int]) -> np.ndarray:
    arr, _ = on_grid(gold, grid)
    flat = arr if arr.ndim == 3 else arr.max(axis=0)
    return np.where(np.isin(flat, list(labels)), flat, 0).astype(np.int32)


def _image_on(reference: Path | None, grid: Grid) -> np.ndarray | None:
    if reference is None:
        return None
    from AdaptiveBrushDicomLib.core.align import align_to_grid
    from AdaptiveBrushDicomLib.io.volumes import read_volume

    try:
        image, image_grid = read_volume(reference)
        return align_to_grid(image, image_grid, grid, resample="nearest", what="image")
    except UserError:
        return None


def _crop(masks: list[np.ndarray], shape: tuple[int, int]) -> tuple[slice, slice]:
    any_mask = np.zeros(shape, dtype=bool)
    for m in masks:
        any_mask |= m > 0
    if not any_mask.any():
        return slice(0, shape[0]), slice(0, shape[1])
    jj, ii = np.nonzero(any_mask)
    span = max(int(np.ptp(jj)), int(np.ptp(ii))) + 1
    margin = int(0.35 * span) + 6
    return (slice(max(jj.min() - margin, 0), min(jj.max() + margin + 1, shape[0])),
            slice(max(ii.min() - margin, 0), min(ii.max() + margin + 1, shape[1])))


def _ranking(ax: Any, report: ComparisonReport) -> None:
    ranked = [t for t in report.ranked() if t.mean_dice is not None]
    best, worst = report.best, report.worst
    colors = [BEST_COLOR if t is best else WORST_COLOR if t is worst else OTHER_COLOR for t in ranked]
    values = [float(t.mean_dice or 0.0) for t in ranked]
    if len(ranked) <= MAX_BARS:
        y = np.arange(len(ranked))
        ax.barh(y, values, color=colors, height=0.7)
        ax.set_yticks(y, [t.name for t in ranked])
        for tick, color in zip(ax.get_yticklabels(), colors):
            if color != OTHER_COLOR:
                tick.set_color(color)
                tick.set_fontweight("bold")
        ax.invert_yaxis()
        for yi, v, t in zip(y, values, ranked):
            tag = "  best" if t is best else "  worst" if t is worst else ""
            ax.text(0.01 if v > 0.2 else v + 0.01, yi, f"{v:.3f}{tag}", va="center", fontsize=8,
                    color="white" if v > 0.2 else "black", fontweight="bold" if tag else "normal")
        ax.set_xlim(0, 1.0)
        ax.set_xlabel("mean Dice over matched segments (1 = identical to gold)")
    else:
        x = np.arange(1, len(ranked) + 1)
        ax.plot(x, values, "-", color=OTHER_COLOR, lw=1.5)
        ax.scatter(x, values, c=colors, s=[60 if c != OTHER_COLOR else 8 for c in colors], zorder=3)
        for t, xi, v in ((ranked[0], 1, values[0]), (ranked[-1], len(ranked), values[-1])):
            ax.annotate(f"{t.name}\n{v:.3f}", (xi, v), textcoords="offset points", xytext=(6, -12), fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("rank (1 = best)")
        ax.set_ylabel("mean Dice")
    ax.set_title(f"{len(ranked)} trials ranked by mean Dice", fontsize=11)
    ax.grid(axis="x" if len(ranked) <= MAX_BARS else "y", alpha=0.3)


def _summary(t: TrialComparison) -> str:
    hd = [s.metrics.hd95_mm for s in t.segments if s.metrics.hd95_mm is not None]
    hd_text = f", max HD95 {max(hd):.1f} mm" if hd else ""
    empty = [s.name for s in t.segments if s.metrics.empty.value == "trial_empty"]
    empty_text = f" (empty: {', '.join(empty)})" if empty else ""
    return f"{t.name}\nmean Dice {t.mean_dice:.3f}{hd_text}{empty_text}"


def _slice_panel(ax: Any, image: np.ndarray | None, gold: np.ndarray, trial: np.ndarray,
                 crop: tuple[slice, slice], grid: Grid,
                 color: str, title: str) -> None:
    g, t = gold[crop], trial[crop]
    si, sj = grid.spacing_ijk[0], grid.spacing_ijk[1]
    extent = (0, g.shape[1] * si, g.shape[0] * sj, 0)  # mm, so anisotropic pixels keep their shape
    if image is not None:
        im = image[crop].astype(float)
        lo, hi = np.percentile(im, [1, 99.5]) if im.size else (0, 1)
        ax.imshow(im, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, extent=extent, interpolation="nearest")
    else:
        ax.imshow(np.zeros(g.shape), cmap="gray", vmin=0, vmax=1, extent=extent)
    jj = (np.arange(g.shape[0]) + 0.5) * sj
    ii = (np.arange(g.shape[1]) + 0.5) * si
    for value in np.unique(g[g > 0]):
        ax.contour(ii, jj, (g == value).astype(float), levels=[0.5], colors=GOLD_COLOR, linewidths=2.2)
    for value in np.unique(t[t > 0]):
        ax.contour(ii, jj, (t == value).astype(float), levels=[0.5], colors=color, linewidths=1.6,
                   linestyles="--")
    missed, extra = (g > 0) & (t != g), (t > 0) & (g != t)
    overlay = np.zeros(g.shape + (4,))
    overlay[missed] = (0.25, 0.55, 1.0, 0.45)  # in gold, not in trial: blue
    overlay[extra] = (1.0, 0.3, 0.3, 0.45)     # in trial, not in gold: red
    ax.imshow(overlay, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10, color=color, fontweight="bold")
    ax.set_xticks([])
    ax.set_yticks([])


def write_plot(report: ComparisonReport, path: str | Path, *, title: str | None = None) -> Path:
    """Write the comparison PNG (see module docstring) to ``path`` atomically.

    The slice is the one (k index of the comparison grid) with the most voxels where the
    best and the worst trial disagree; the panels are cropped around the segments there.
    Blue: in the gold standard, missed by the trial; red: in the trial, not in the gold.
    """
    # a bare Figure renders with Agg and leaves pyplot's global backend (Slicer's) alone
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from AdaptiveBrushDicomLib.io.atomic import atomic_output

    best, worst = report.best, report.worst
    figure = Figure(figsize=(15, 6.2), dpi=110)
    grid_spec = figure.add_gridspec(1, 3, width_ratios=[1.15, 1, 1], wspace=0.12)
    _ranking(figure.add_subplot(grid_spec[0, 0]), report)
    if best is not None and worst is not None:
        ref = None
        if report.reference is not None:
            from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

            ref = ReferenceSeries.from_folder(report.reference)
        segs = {t.path: read_for_compare(t.path, ref) for t in {best.path: best, worst.path: worst}.values()}
        grid = common_grid(report.gold.labelmap.grid, [s.labelmap.grid for s in segs.values()])
        b = _gold_label_space(best, segs[best.path], grid)
        w = _gold_label_space(worst, segs[worst.path], grid)
        g = _gold_space(report.gold, grid, {s.gold_label for s in best.segments + worst.segments})
        differ = (b != w).sum(axis=(1, 2))
        k = int(np.argmax(differ)) if differ.any() else int(np.argmax(((b != g) | (g > 0)).sum(axis=(1, 2))))
        image = _image_on(report.reference, grid)
        crop = _crop([g[k], b[k], w[k]], g.shape[1:])
        img_k = None if image is None else image[k]
        z = grid.index_to_lps(np.array([0.0, 0.0, k]))[2]
        _slice_panel(figure.add_subplot(grid_spec[0, 1]), img_k, g[k], b[k], crop, grid, BEST_COLOR,
                     "best: " + _summary(best))
        ax = figure.add_subplot(grid_spec[0, 2])
        _slice_panel(ax, img_k, g[k], w[k], crop, grid, WORST_COLOR, "worst: " + _summary(worst))
        handles = [Line2D([], [], color=GOLD_COLOR, lw=2.2, label="gold standard"),
                   Line2D([], [], color=BEST_COLOR, lw=1.6, ls="--", label="best trial"),
                   Line2D([], [], color=WORST_COLOR, lw=1.6, ls="--", label="worst trial"),
                   Line2D([], [], color=(0.25, 0.55, 1.0), lw=6, alpha=0.6, label="missed (gold only)"),
                   Line2D([], [], color=(1.0, 0.3, 0.3), lw=6, alpha=0.6, label="extra (trial only)")]
        figure.legend(handles=handles, loc="lower center", ncol=5, frameon=False, fontsize=9,
                      bbox_to_anchor=(0.62, 0.0))
        figure.text(0.62, 0.93, f"slice k = {k} (z = {z:.1f} mm LPS), where best and worst differ most "
                    f"({int(differ[k])} voxels)", ha="center", fontsize=9, color="#444444")
    heading = "Trials vs gold standard" + (f" - {title}" if title else "")
    figure.suptitle(heading, fontsize=13, fontweight="bold", x=0.02, ha="left")
    path = Path(path)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")
    return path


__all__ = ["require_matplotlib", "write_plot"]
