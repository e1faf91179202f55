"""Segment metadata between a core :class:`~.core.segment.Segment` and what a Slicer
``vtkSegment`` holds (name, 0..1 colour, string tags).

Plain Python; never imports slicer, vtk, qt or ctk. The Slicer glue
(``AdaptiveBrushDicom.py``) copies a :class:`SlicerSegmentRecord` onto a ``vtkSegment``
(``SetName``, ``SetColor``, ``SetTag``, ``RemoveTag``) and reads one back by tag name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from AdaptiveBrushDicomLib.core.segment import TISSUE, AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.core.terminology import format_terminology_entry, parse_terminology_entry
from AdaptiveBrushDicomLib.errors import UserError

#: Slicer segment tag names (vtkSegment::GetTerminologyEntryTagName() is "TerminologyEntry";
#: "Description" and "DICOM.SegmentAlgorithm*" are the tags Slicer's dcmqi plugin uses).
TAG_TERMINOLOGY = "TerminologyEntry"
TAG_DESCRIPTION = "Description"
TAG_ALGORITHM_TYPE = "DICOM.SegmentAlgorithmType"
TAG_ALGORITHM_NAME = "DICOM.SegmentAlgorithmName"
TAG_ALGORITHM_VERSION = "AdaptiveBrushDicom.AlgorithmVersion"
TAG_ALGORITHM_PARAMETERS = "AdaptiveBrushDicom.AlgorithmParameters"
#: Original label value of a segment, so labels survive Slicer (which renumbers on export).
TAG_LABEL_VALUE = "AdaptiveBrushDicom.LabelValue"
_KNOWN_TAGS = frozenset({
    TAG_TERMINOLOGY,
    TAG_DESCRIPTION,
    TAG_ALGORITHM_TYPE,
    TAG_ALGORITHM_NAME,
    TAG_ALGORITHM_VERSION,
    TAG_ALGORITHM_PARAMETERS,
    TAG_LABEL_VALUE,
})

#: Segment tags read back from Slicer on export (vtkSegment::GetTags takes a std::map and is
#: not available from Python, so tags are read by name).
TAGS_TO_READ: tuple[str, ...] = tuple(sorted(_KNOWN_TAGS)) + ("Segmentation.Status",)


@dataclass
class SlicerSegmentRecord:
    """The parts of a Slicer ``vtkSegment`` the glue reads or writes.

    Attributes
    ----------
    segment_id : str
        Segment ID in the segmentation (``GetSegmentIDs``).
    name : str
        ``vtkSegment.GetName``.
    color : (r, g, b) floats 0..1 or None
        ``vtkSegment.GetColor`` (Slicer colours are 0..1 floats, DICOM/core 0..255).
    tags : dict
        ``vtkSegment.SetTag(key, value)`` string tags: terminology, description, algorithm,
        original label value, plus the core segment's ``extra["tags"]``.
    remove_tags : list
        Tags to remove after creation (e.g. the default "Tissue" TerminologyEntry that
        Slicer puts on every new segment, when the core segment has no terminology).
    """

    segment_id: str
    name: str
    color: tuple[float, float, float] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    remove_tags: list[str] = field(default_factory=list)


def color_to_slicer(color: Sequence[int] | None) -> tuple[float, float, float] | None:
    """8-bit RGB -> Slicer 0..1 floats."""
    if color is None:
        return None
    r, g, b = (float(c) / 255.0 for c in color)
    return r, g, b


def color_from_slicer(color: Sequence[float] | None) -> tuple[int, int, int] | None:
    """Slicer 0..1 floats -> 8-bit RGB (rounded, clipped)."""
    if color is None:
        return None
    r, g, b = (int(min(255, max(0, round(float(c) * 255.0)))) for c in color)
    return r, g, b


def segment_to_record(segment: Segment, segment_id: str | None = None) -> SlicerSegmentRecord:
    """Core :class:`Segment` -> Slicer name, colour and tags."""
    sid = segment_id or segment.segment_id or f"Segment_{segment.label}"
    tags: dict[str, str] = {}
    remove: list[str] = []
    if segment.terminology is not None:
        tags[TAG_TERMINOLOGY] = format_terminology_entry(segment.terminology)
    else:
        remove.append(TAG_TERMINOLOGY)
    if segment.description:
        tags[TAG_DESCRIPTION] = segment.description
    if segment.algorithm_type is not None:
        tags[TAG_ALGORITHM_TYPE] = AlgorithmType(segment.algorithm_type).value
    if segment.algorithm_name:
        tags[TAG_ALGORITHM_NAME] = segment.algorithm_name
    if segment.algorithm_version:
        tags[TAG_ALGORITHM_VERSION] = segment.algorithm_version
    if segment.algorithm_parameters is not None:
        tags[TAG_ALGORITHM_PARAMETERS] = json.dumps(segment.algorithm_parameters, sort_keys=True)
    tags[TAG_LABEL_VALUE] = str(int(segment.label))
    # Slicer segment tags travel in extra["tags"] (the convention of volume_io / slicerio);
    # other extra keys are core-internal (e.g. a foreign TrackingID) and stay out of Slicer.
    for key, value in dict((segment.extra or {}).get("tags") or {}).items():
        if key in _KNOWN_TAGS:
            continue
        tags[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return SlicerSegmentRecord(sid, segment.name, color_to_slicer(segment.color), tags, remove)


def is_placeholder_terminology(terminology: Terminology | None) -> bool:
    """True for Tissue / Tissue without modifier or region: what Slicer puts on every new
    segment (vtkSegment constructor) and what a SEG without terminology holds because the
    standard requires a category and type. It is treated as "no terminology": exported with
    the unset flag, loaded without a TerminologyEntry (so CrossSegmentationExplorer matches
    such segments by name instead of merging them into one "Tissue" row)."""

    def same(a: Code | None, b: Code) -> bool:
        return a is not None and (a.value, a.scheme) == (b.value, b.scheme)

    return (terminology is not None and same(terminology.category, TISSUE) and same(terminology.type, TISSUE)
            and terminology.type_modifier is None and terminology.anatomic_region is None)


def _terminology_from_tag(record: SlicerSegmentRecord, entry: str) -> Terminology | None:
    """The TerminologyEntry tag's terminology (None for empty or Slicer's placeholder).

    Raises
    ------
    UserError
        The tag is not a valid Slicer terminology entry (names the segment).
    """
    if not entry:
        return None
    try:
        terminology = parse_terminology_entry(entry)
    except UserError as exc:
        raise UserError(f"segment {record.name!r}: {exc}; fix it in the Segment Editor's terminology dialog") from None
    return None if is_placeholder_terminology(terminology) else terminology  # placeholder: not the user's choice


def _algorithm_type(record: SlicerSegmentRecord, raw: str) -> AlgorithmType:
    """The algorithm type tag's value (SEMIAUTOMATIC when absent).

    Raises
    ------
    UserError
        The tag holds something else than MANUAL, SEMIAUTOMATIC or AUTOMATIC.
    """
    raw = raw.strip().upper()
    if not raw:
        return AlgorithmType.SEMIAUTOMATIC
    try:
        return AlgorithmType(raw)
    except ValueError:
        raise UserError(
            f"segment {record.name!r}: tag {TAG_ALGORITHM_TYPE} is {raw!r}; use MANUAL, SEMIAUTOMATIC or AUTOMATIC"
        ) from None


def segment_from_record(record: SlicerSegmentRecord, label: int, layer: int = 0) -> Segment:
    """Slicer name, colour and tags -> core :class:`Segment` with ``label``.

    Raises
    ------
    UserError
        An invalid TerminologyEntry or algorithm type tag (the message names the segment).
    """
    tags = dict(record.tags)
    parameters: Any = None
    if tags.get(TAG_ALGORITHM_PARAMETERS):
        try:
            parameters = json.loads(tags[TAG_ALGORITHM_PARAMETERS])
        except json.JSONDecodeError:
            parameters = {"value": tags[TAG_ALGORITHM_PARAMETERS]}
    other_tags = {k: v for k, v in tags.items() if k not in _KNOWN_TAGS}
    extra: dict[str, Any] = {"tags": other_tags} if other_tags else {}
    return Segment(
        label=int(label),
        name=record.name,
        color=color_from_slicer(record.color),
        terminology=_terminology_from_tag(record, tags.get(TAG_TERMINOLOGY, "")),
        description=tags.get(TAG_DESCRIPTION) or None,
        algorithm_type=_algorithm_type(record, tags.get(TAG_ALGORITHM_TYPE, "")),
        algorithm_name=tags.get(TAG_ALGORITHM_NAME) or None,
        algorithm_version=tags.get(TAG_ALGORITHM_VERSION) or None,
        algorithm_parameters=parameters,
        segment_id=record.segment_id,
        layer=layer,
        extra=extra,
    )
