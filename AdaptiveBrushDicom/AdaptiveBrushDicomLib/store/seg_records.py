"""SEG records built the same way by every database: from a SEG header or from plain rows.

:func:`seg_summary_from_dataset` is what an index keeps of one SEG instance's header;
:func:`build_seg_info` assembles a :class:`~.records.SegSeriesInfo` from a series row, its
instance rows and their summaries (SQLite rows, Slicer's database tags, DICOMweb metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.store.records import SegSeriesInfo, SegSummary
from AdaptiveBrushDicomLib.store.series_kind import KIND_TRIAL, classify_series, run_name_from_content


def text_value(value: Any) -> str:
    """A header value as stripped text ("" for None)."""
    return "" if value is None else str(value).strip()


def seg_summary_from_dataset(ds: Any) -> SegSummary:
    """:class:`SegSummary` of a SEG header (a pydicom Dataset read without pixels).

    Works on any object with the same attribute names (``getattr`` based), so callers may
    pass a partial header read with ``specific_tags``.
    """
    refs: list[str] = []
    for item in getattr(ds, "ReferencedSeriesSequence", None) or []:
        uid = text_value(getattr(item, "SeriesInstanceUID", ""))
        if uid and uid not in refs:
            refs.append(uid)
    labelmap = text_value(getattr(ds, "SOPClassUID", "")) == SegSopClass.LABELMAP or \
        text_value(getattr(ds, "SegmentationType", "")).upper() == "LABELMAP"
    items = []
    for pos, item in enumerate(getattr(ds, "SegmentSequence", None) or []):
        number = getattr(item, "SegmentNumber", None)
        number = int(number) if number not in (None, "") else pos + 1
        if labelmap and number == 0:
            continue  # the "Background" item of a LABELMAP is not a user segment
        algo = text_value(getattr(item, "SegmentAlgorithmName", ""))
        if not algo:
            for ident in getattr(item, "SegmentationAlgorithmIdentificationSequence", None) or []:
                algo = text_value(getattr(ident, "AlgorithmName", ""))
                if algo:
                    break
        items.append((number, text_value(getattr(item, "SegmentLabel", "")), algo,
                      text_value(getattr(item, "SegmentAlgorithmType", ""))))
    items.sort(key=lambda t: t[0])
    algos: list[str] = []
    for _, _, a, _ in items:
        if a and a not in algos:
            algos.append(a)
    return SegSummary(
        referenced_series_uids=tuple(refs),
        segment_numbers=tuple(t[0] for t in items),
        segment_labels=tuple(t[1] for t in items),
        algorithm_names=tuple(algos),
        algorithm_types=tuple(t[3] for t in items),
        content_label=text_value(getattr(ds, "ContentLabel", "")),
        content_description=text_value(getattr(ds, "ContentDescription", "")),
    )


def int_value(value: Any) -> int | None:
    """A header value as an int (None when absent or not an integer)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def build_seg_info(
    series: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    summaries: Sequence[SegSummary],
) -> SegSeriesInfo:
    """Assemble a :class:`SegSeriesInfo` from plain rows.

    Parameters
    ----------
    series : mapping with keys ``series_instance_uid``, ``study_instance_uid`` and optional
        ``study_description``, ``series_description``, ``series_number``, ``content_label``,
        ``content_description`` (else taken from the summaries).
    instances : mappings with ``sop_instance_uid``, ``path``, optional ``sop_class_uid``,
        ``instance_number`` (sorted here by instance number, then UID).
    summaries : one :class:`SegSummary` per instance (any order; merged).
    """
    inst = sorted(instances, key=lambda r: (int_value(r.get("instance_number")) or 0, str(r["sop_instance_uid"])))
    refs: list[str] = []
    labels: list[str] = []
    algos: list[str] = []
    content_label = text_value(series.get("content_label"))
    content_description = text_value(series.get("content_description"))
    for s in summaries:
        refs += [r for r in s.referenced_series_uids if r not in refs]
        labels += [lab for lab in s.segment_labels if lab not in labels]
        algos += [a for a in s.algorithm_names if a not in algos]
        content_label = content_label or s.content_label
        content_description = content_description or s.content_description
    tag = classify_series(text_value(series.get("series_description")), content_label)
    if tag.algorithm and tag.algorithm not in algos:
        algos.append(tag.algorithm)
    return SegSeriesInfo(
        series_instance_uid=str(series["series_instance_uid"]),
        study_instance_uid=text_value(series.get("study_instance_uid")),
        study_description=text_value(series.get("study_description")),
        series_description=text_value(series.get("series_description")),
        series_number=int_value(series.get("series_number")),
        sop_class_uid=text_value(inst[0].get("sop_class_uid")) if inst else "",
        sop_instance_uids=tuple(str(r["sop_instance_uid"]) for r in inst),
        files=tuple(Path(str(r["path"])) for r in inst),
        referenced_series_uids=tuple(refs),
        segment_labels=tuple(labels),
        algorithms=tuple(algos),
        kind=tag.kind,
        trial_number=tag.trial_number,
        run=run_name_from_content(content_description) if tag.kind == KIND_TRIAL else "",
    )
