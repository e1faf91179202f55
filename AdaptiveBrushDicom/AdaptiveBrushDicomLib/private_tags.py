"""Our private data elements: Slicer-only facts with no standard DICOM attribute.

Only what a Slicer round trip needs and no standard attribute holds is stored here, in a
private block of each SegmentSequence item (other readers ignore it):

=====================  ======  ====================================================
element                VR      meaning
=====================  ======  ====================================================
(0071,00xx)            LO      private creator ``"AdaptiveBrushDicom 1"``
(0071,xx01)            LO      Slicer terminology context (category/type list name)
(0071,xx02)            LO      Slicer anatomic context name
=====================  ======  ====================================================

Label value, Slicer segment ID and layer are in the standard TrackingID (see
``segment_dicom.encode_slicer_extras``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .segment import DEFAULT_ANATOMIC_CONTEXT, DEFAULT_CATEGORY_CONTEXT, Segment

PRIVATE_GROUP = 0x0071
PRIVATE_CREATOR = "AdaptiveBrushDicom 1"
_CONTEXT = 0x01
_ANATOMIC_CONTEXT = 0x02


def write_segment_private(dataset, segments: Sequence[Segment]) -> None:
    """Add the private block to SegmentSequence items 1..N (``segments`` in number order).
    Nothing is written for segments whose contexts are the defaults."""
    for item in getattr(dataset, "SegmentSequence", []):
        number = int(item.SegmentNumber)
        if not 1 <= number <= len(segments):
            continue
        t = segments[number - 1].terminology
        if t is None:
            continue
        values = {}
        if t.context_name and t.context_name != DEFAULT_CATEGORY_CONTEXT:
            values[_CONTEXT] = t.context_name[:64]
        if t.anatomic_context_name and t.anatomic_context_name != DEFAULT_ANATOMIC_CONTEXT:
            values[_ANATOMIC_CONTEXT] = t.anatomic_context_name[:64]
        if not values:
            continue
        block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
        for offset, value in values.items():
            block.add_new(offset, "LO", value)


def read_segment_private(item, segment: Segment) -> Segment:
    """Restore what :func:`write_segment_private` stored on one SegmentSequence item."""
    if segment.terminology is None:
        return segment
    try:
        block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return segment
    t = segment.terminology
    changes = {}
    if _CONTEXT in block:
        changes["context_name"] = str(block[_CONTEXT].value)
    if _ANATOMIC_CONTEXT in block:
        changes["anatomic_context_name"] = str(block[_ANATOMIC_CONTEXT].value)
    if not changes:
        return segment
    return replace(segment, terminology=replace(t, **changes))
