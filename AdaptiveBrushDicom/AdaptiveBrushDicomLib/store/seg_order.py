"""The order and grouping of SEG series lists: gold first, then trials by run and number.

Pure functions over :class:`~.records.SegSeriesInfo`; every
:class:`~.database_protocol.DicomDatabase` returns its lists in this order.
"""

from __future__ import annotations

from typing import Any, Iterable

from AdaptiveBrushDicomLib.store.records import SegSeriesInfo
from AdaptiveBrushDicomLib.store.series_kind import KIND_GOLD, KIND_OTHER, KIND_TRIAL


_KIND_ORDER = {KIND_GOLD: 0, KIND_TRIAL: 1, KIND_OTHER: 2}


def seg_sort_key(info: SegSeriesInfo) -> tuple[Any, ...]:
    """Within a study: gold first, then trials by run and number, then others; SeriesNumber,
    description and UID break ties."""
    return (
        _KIND_ORDER.get(info.kind, 3),
        info.run,
        info.trial_number if info.trial_number is not None else -1,
        info.series_number if info.series_number is not None else -1,
        info.series_description,
        info.series_instance_uid,
    )


def sort_segs(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Group by study (run name, then study UID), each group in :func:`seg_sort_key` order."""
    return sorted(segs, key=lambda s: (s.study_description, s.study_instance_uid) + seg_sort_key(s))


def group_by_study(segs: Iterable[SegSeriesInfo]) -> dict[str, list[SegSeriesInfo]]:
    """``{study_uid: [SegSeriesInfo, ...]}`` in :func:`sort_segs` order (dicts keep order)."""
    out: dict[str, list[SegSeriesInfo]] = {}
    for s in sort_segs(segs):
        out.setdefault(s.study_instance_uid, []).append(s)
    return out


def group_by_run(segs: Iterable[SegSeriesInfo]) -> dict[tuple[str, str], list[SegSeriesInfo]]:
    """``{(study_uid, run_name): [...]}`` in :func:`sort_segs` order; gold standards and
    other SEGs of a study are under its StudyDescription."""
    out: dict[tuple[str, str], list[SegSeriesInfo]] = {}
    for s in sort_segs(segs):
        out.setdefault((s.study_instance_uid, s.run_name), []).append(s)
    return out


def in_run(segs: Iterable[SegSeriesInfo], run_name: str) -> list[SegSeriesInfo]:
    """Only the SEGs of run ``run_name`` (see :attr:`SegSeriesInfo.run_name`)."""
    return [s for s in segs if s.run_name == run_name]


def referencing(segs: Iterable[SegSeriesInfo], volume_series_uid: str) -> list[SegSeriesInfo]:
    """Only the SEGs whose ReferencedSeriesSequence names ``volume_series_uid``."""
    return [s for s in segs if volume_series_uid in s.referenced_series_uids]


def trials_in_order(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Trial SEGs only, by trial number (then SeriesNumber, UID)."""
    return sorted((s for s in segs if s.kind == KIND_TRIAL), key=seg_sort_key)


def gold_only(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Gold-standard SEGs only, in :func:`sort_segs` order."""
    return [s for s in sort_segs(segs) if s.kind == KIND_GOLD]
