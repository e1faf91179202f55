"""Missing slices of a DICOM image series: a gap in its slice positions.

A series whose slices are irregularly spaced is read exactly (``Grid.slice_positions_mm``,
issue 14): `export` writes frames onto the series' own slices and refuses labels between
them, `decode` writes onto the regular grid that holds them all. A *gap* is different: one
distance between neighbouring slices of at least :data:`GAP_FACTOR` times the series'
usual (median) spacing is what a slice lost in copying looks like, and a reader that
assumes equal spacing (GDCM via SimpleITK, which ``synth`` used) spreads the remaining
slices over the whole extent: every slice after the gap lands at a wrong position,
silently.

Decision: commands that turn a DICOM folder into a new volume (``abdicom synth``) refuse
a series with a gap, naming the series, the gap (both slice positions, LPS mm) and the
files on either side, unless ``--allow-missing-slices`` (then the slices are written at
their own positions, the gap kept). Spacing that varies by less than that (1.25 / 1.3 mm
reconstructions) is no gap. Commands that only *reference* the series (export, decode)
keep issue 14's exact irregular handling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import median_spacing
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.errors import InputFileError

#: A distance between neighbouring slices this many times the median spacing (or more) is a gap.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class SliceGap:
    """One gap between slice ``k`` and ``k + 1`` (in slice order along the normal).

    Attributes
    ----------
    k : int
        Index of the slice before the gap.
    gap_mm, spacing_mm : float
        The gap and the series' median slice spacing (mm).
    before_lps, after_lps : tuple of float
        Positions (LPS mm) of the slices on either side (their first voxel).
    before, after : Path
        Their files.
    """

    k: int
    gap_mm: float
    spacing_mm: float
    before_lps: tuple[float, float, float]
    after_lps: tuple[float, float, float]
    before: Path
    after: Path

    @property
    def missing(self) -> int:
        """How many slices of the usual spacing would fill the gap."""
        return max(1, round(self.gap_mm / self.spacing_mm) - 1)


def slice_gaps(series: ReferenceSeries) -> list[SliceGap]:
    """The gaps of ``series`` (empty for a regular series or fewer than 3 slices)."""
    grid = series.grid
    if grid.slice_positions_mm is None or grid.shape_kji[0] < 3 or len(series.paths) != grid.shape_kji[0]:
        return []
    gaps = np.diff(np.asarray(grid.slice_positions_mm, dtype=float))
    spacing = median_spacing(gaps)
    origins = grid.slice_origins()
    out = []
    for k in map(int, np.nonzero(gaps >= GAP_FACTOR * spacing)[0]):
        out.append(SliceGap(k, float(gaps[k]), float(spacing), _lps(origins[k]), _lps(origins[k + 1]),
                            Path(series.paths[k]), Path(series.paths[k + 1])))
    return out


def _lps(p: np.ndarray) -> tuple[float, float, float]:
    return float(p[0]), float(p[1]), float(p[2])


def refuse_slice_gaps(series: ReferenceSeries, where: str | Path, option: str = "--allow-missing-slices") -> None:
    """Refuse a series with a gap in its slice positions (see module docstring).

    ``option``: the command's option that allows the gap ("" when it has none).

    Raises
    ------
    InputFileError
        A gap: names the series, the first gap's positions (LPS mm) and files, how many
        gaps there are, and what to do.
    """
    gaps = slice_gaps(series)
    if not gaps:
        return
    g = gaps[0]
    fmt = ", ".join
    more = f" ({len(gaps)} gaps in all)" if len(gaps) > 1 else ""
    raise InputFileError(
        f"series {series.series_instance_uid} has a gap in its slice positions{more}: {g.gap_mm:.2f} mm between "
        f"{g.before.name} at LPS ({fmt(f'{v:.2f}' for v in g.before_lps)}) mm and {g.after.name} at LPS "
        f"({fmt(f'{v:.2f}' for v in g.after_lps)}) mm, where the slices are {g.spacing_mm:.2f} mm apart "
        f"(about {g.missing} slice(s) missing); copy the series again from its source"
        + (f", or give {option} to keep the slices at their own positions" if option else ""), where)


__all__ = ["GAP_FACTOR", "SliceGap", "refuse_slice_gaps", "slice_gaps"]
