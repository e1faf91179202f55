"""Putting segment metadata read from a user's file on the segments of a segmentation.

The readers (:mod:`.dcmqi_metadata` for dcmqi JSON, :mod:`.segment_table` for CSV / TSV
tables) give :class:`~AdaptiveBrushDicomLib.core.segment.Segment` records;
:func:`merge_segments` puts them on a labelmap's segments by label value (and layer), and
:func:`check_matched` refuses, like dcmqi, a table and a segmentation that do not name the
same labels. Every error is a :class:`MetadataError` naming the file, and the entry / row
and field.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.errors import InputFileError


class MetadataError(InputFileError):
    """A metadata file is malformed; the message names file, entry/row and field."""


# ------------------------------------------------------------------ apply to labelmap
#: Segment fields a metadata source may set (the others -- label, layer, segment ID --
#: belong to the segmentation itself).
_DESCRIBED_FIELDS = (
    "name", "color", "terminology", "description", "algorithm_type", "algorithm_name", "algorithm_version",
    "algorithm_parameters",
)


def merge_segments(
    existing: Sequence[Segment],
    described: Iterable[Segment],
    *,
    keep_layers: bool = True,
    fields: Sequence[str] = _DESCRIBED_FIELDS,
) -> list[Segment]:
    """Put described metadata on existing segments, matched by label value (and layer).

    Parameters
    ----------
    existing : the segmentation's segments.
    described : segments read from a metadata file.
    keep_layers : match on (layer, label) when True, on label alone when False.
    fields : which :class:`Segment` fields ``described`` may set. A field is only taken
        when the described value is not None; ``extra`` entries are merged.

    Returns
    -------
    list of Segment
        Existing segments in their order (updated), then described labels that had no
        segment (empty segments are allowed in a SEG).
    """
    out = list(existing)
    index: dict[tuple[int, int], int] = {}
    for n, s in enumerate(out):
        index.setdefault(((s.layer if keep_layers else 0), s.label), n)
    for d in described:
        key = ((d.layer if keep_layers else 0), d.label)
        i = index.get(key)
        if i is None:
            out.append(replace(d, layer=key[0]))
            index[key] = len(out) - 1
            continue
        e = out[i]
        changes = {f: getattr(d, f) for f in fields if getattr(d, f) is not None}
        out[i] = replace(e, **changes, extra={**e.extra, **d.extra})
    return out


def _is_undescribed(segment: Segment) -> bool:
    """A segment that only exists because its value is in a label image ("Label_<n>",
    no colour, no terminology, see ``volumes.read_label_image``)."""
    return segment.name == f"Label_{segment.label}" and segment.color is None and segment.terminology is None


def check_matched(
    labelmap: LabelMap,
    described: Sequence[Segment],
    path: str | Path,
    *,
    allow_unmatched: bool = False,
    warnings: list[str] | None = None,
) -> None:
    """Check that a metadata table and a segmentation describe the same labels.

    Unmatched are: labels the table names that the segmentation does not have (they would
    become empty segments), and labels of a label image the table does not name. dcmqi
    refuses such a pair; so do we, unless ``allow_unmatched`` (then one line is appended to
    ``warnings`` and the empty segments are kept).

    Raises
    ------
    MetadataError
        Unmatched labels without ``allow_unmatched``; the message lists them.
    """
    present = {s.label for s in labelmap.segments}
    named = {d.label for d in described}
    absent = sorted(named - present)
    unnamed = sorted({s.label for s in labelmap.segments if _is_undescribed(s)} - named)
    if not absent and not unnamed:
        return
    parts = []
    if absent:
        parts.append(f"label(s) {absent[:10]}{' ...' if len(absent) > 10 else ''} are not in the segmentation")
    if unnamed:
        parts.append(f"label(s) {unnamed[:10]}{' ...' if len(unnamed) > 10 else ''} of the segmentation have "
                     "no entry")
    text = "; ".join(parts)
    if not allow_unmatched:
        raise MetadataError(f"does not match the segmentation: {text}; fix the table or pass --allow-unmatched",
                            path)
    if warnings is not None:
        warnings.append(f"{path}: does not match the segmentation ({text}); --allow-unmatched: "
                        "absent labels written as empty segments, unnamed ones as Label_<n>")

