"""Segmentations to compare: read any SEG or ``.seg.nrrd``, put several on one voxel grid.

A SEG is decoded with :func:`~.dicom.seg.read.read_seg` (onto the reference series' full
grid when one is given), anything else with :func:`~.io.volumes.read_segmentation`
(Slicer ``.seg.nrrd`` or a plain label image). Segmentations on one voxel lattice (same
spacing and orientation up to axis order, any extent) are re-indexed exactly onto the
smallest grid holding all of them; others are refused unless nearest-neighbour
resampling onto the gold standard's grid is asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from AdaptiveBrushDicomLib.core.align import Resample, align_to_grid, reorient
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.errors import InputFileError, ReferenceMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

_TRIAL_RE = re.compile(r"trial[_\-\s]*0*(\d+)", re.IGNORECASE)


@dataclass
class Segmentation:
    """One segmentation read for comparison.

    Attributes
    ----------
    path : the file
    labelmap : voxels (k, j, i) [or (layer, k, j, i)] on its own grid (LPS)
    series_instance_uid : of a SEG, None for other files
    trial_number : from ContentLabel ``TRIAL_NNN`` or the file name ``trial_NNN...``, else None
    """

    path: Path
    labelmap: LabelMap
    series_instance_uid: str | None = None
    trial_number: int | None = None
    notes: list[str] = field(default_factory=list)


def is_dicom_file(path: Path) -> bool:
    """True when the file has the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def trial_number_from(*texts: str | None) -> int | None:
    """First ``trial_NNN`` / ``TRIAL_NNN`` number found in ``texts``, else None."""
    for text in texts:
        if text:
            m = _TRIAL_RE.search(text)
            if m:
                return int(m.group(1))
    return None


def read_for_compare(path: str | Path, reference: "ReferenceSeries | None" = None) -> Segmentation:
    """Read a SEG (any writer) or a ``.seg.nrrd`` / label image.

    Parameters
    ----------
    path : the file
    reference : the image series a SEG refers to (gives the full grid); None decodes a
        SEG onto the extent of its own frames

    Raises
    ------
    InputFileError
        Missing, unreadable or not a segmentation (message names the file).
    ReferenceMismatchError
        A SEG that does not refer to ``reference``.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError("no such file; check the path", path)
    if path.is_dir():
        raise InputFileError("expected a SEG or .seg.nrrd file, got a folder", path)
    if is_dicom_file(path):
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

        decoded = read_seg(path, reference=reference)
        content_label = str(getattr(decoded.dataset, "ContentLabel", "") or "")
        decoded.dataset = None  # headers are not needed any more; keeps workers' results small
        return Segmentation(path, decoded.labelmap, decoded.series_instance_uid,
                            trial_number_from(content_label, path.name), list(decoded.notes))
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    return Segmentation(path, read_segmentation(path), None, trial_number_from(path.name))


def _extent_in(base: Grid, other: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) (k, j, i) index range of ``other`` in ``base``'s index space, or None when
    ``other`` is not on ``base``'s lattice (after reordering its axes)."""
    view = reorient(np.broadcast_to(np.uint8(0), tuple(other.shape_kji)), other, base)
    if view is None:
        return None
    reindexed = view[1]
    offset = base.lattice_offset_kji(reindexed)
    if offset is None:
        return None
    lo = np.array(offset)
    return lo, lo + np.array(reindexed.shape_kji)


def common_grid(base: Grid, others: Sequence[Grid]) -> Grid:
    """Smallest grid on ``base``'s lattice (and orientation) holding ``base`` and every
    grid of ``others`` that is on that lattice (others are ignored here)."""
    lo, hi = np.zeros(3, dtype=int), np.array(base.shape_kji)
    for g in others:
        ext = _extent_in(base, g)
        if ext is not None:
            lo, hi = np.minimum(lo, ext[0]), np.maximum(hi, ext[1])
    if not lo.any() and np.array_equal(hi, base.shape_kji):
        return base
    origin = base.index_to_lps(np.array([lo[2], lo[1], lo[0]], dtype=float))
    nk, nj, ni = (int(v) for v in hi - lo)
    return Grid((nk, nj, ni), base.spacing_ijk, (float(origin[0]), float(origin[1]), float(origin[2])), base.direction)


def on_grid(seg: Segmentation, grid: Grid, resample: Resample | str = Resample.NONE) -> tuple[np.ndarray, bool]:
    """The segmentation's array on ``grid``; True as second value when it was resampled.

    Raises
    ------
    ReferenceMismatchError
        Not on ``grid``'s lattice and ``resample`` is none (message names the file and
        says to pass ``--resample nearest``).
    """
    src = seg.labelmap.grid
    if _extent_in(grid, src) is not None or Resample(resample) is Resample.NONE:
        try:
            return align_to_grid(seg.labelmap.array, src, grid, what=str(seg.path)), False
        except ReferenceMismatchError as exc:
            raise ReferenceMismatchError(
                f"{seg.path}: not on the gold standard's voxel lattice ({src.describe()} vs gold {grid.describe()}); "
                "pass --resample nearest to compare it after nearest-neighbour resampling onto the gold grid"
            ) from exc
    return align_to_grid(seg.labelmap.array, src, grid, resample=Resample.NEAREST, what=str(seg.path)), True


__all__ = ["Segmentation", "is_dicom_file", "trial_number_from", "read_for_compare", "common_grid", "on_grid"]
