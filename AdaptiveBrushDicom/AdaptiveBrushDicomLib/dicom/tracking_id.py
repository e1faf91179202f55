"""Slicer's segment ID, label value and layer in a segment's TrackingID (0062,0020).

``"<segment_id> (label <L>[, layer <n>])"``, plus a TrackingUID (0062,0021) derived from
it and the study, so the same Slicer segment is tracked across all SEGs of one study.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from AdaptiveBrushDicomLib.core.segment import Segment

__all__ = ["SlicerExtras", "decode_slicer_extras", "encode_slicer_extras", "tracking_uid"]


@dataclass(frozen=True)
class SlicerExtras:
    """Slicer-only segment attributes with no DICOM attribute of their own."""

    label: int
    layer: int = 0
    segment_id: str | None = None


_EXTRAS_RE = re.compile(r"^(?:(?P<id>.*\S) )?\(label (?P<label>\d+)(?:, layer (?P<layer>\d+))?\)$")


def encode_slicer_extras(segment: Segment) -> tuple[str, list[str]]:
    """Encode Slicer segment ID, label value and layer as a TrackingID (0062,0020) value.

    Format: ``"<segment_id> (label <L>)"``, with ``", layer <n>"`` before the closing
    parenthesis when the layer is not 0, e.g. ``"Segment_1 (label 300)"``,
    ``"Edema (label 2, layer 1)"``, or ``"(label 5)"`` when there is no segment ID.

    TrackingID is a standard Type 1C attribute of the Segment Description macro meant to
    track the same finding across objects: the Slicer segment ID is exactly that (the
    same segment across trial SEGs and the gold standard). It is LO (64 characters).

    Returns
    -------
    (tracking_id, warnings)
        When the segment ID does not fit (too long, backslash, control character) it is
        left out and a warning says so; label and layer are always kept.
    """
    suffix = f"(label {int(segment.label)}" + (f", layer {int(segment.layer)})" if segment.layer else ")")
    sid = segment.segment_id
    warnings: list[str] = []
    if sid is not None and sid.strip():
        sid = sid.strip()
        candidate = f"{sid} {suffix}"
        ok = len(candidate) <= 64 and "\\" not in sid and all(ord(c) >= 32 for c in sid)
        decoded = decode_slicer_extras(candidate) if ok else None
        if decoded is not None and decoded.segment_id == sid:
            return candidate, warnings
        warnings.append(
            f"segment {segment.name!r}: Slicer segment ID {sid!r} does not fit DICOM TrackingID (LO, 64 "
            "characters, no backslash); it is not stored (name, label value and layer are)"
        )
    return suffix, warnings


def decode_slicer_extras(tracking_id: str | None) -> SlicerExtras | None:
    """Inverse of :func:`encode_slicer_extras`; None when ``tracking_id`` is not ours."""
    if not tracking_id:
        return None
    m = _EXTRAS_RE.match(str(tracking_id).strip())
    if m is None:
        return None
    return SlicerExtras(
        label=int(m.group("label")),
        layer=int(m.group("layer") or 0),
        segment_id=m.group("id"),
    )


def tracking_uid(tracking_id: str, scope: str | None = None) -> str:
    """Deterministic TrackingUID for a TrackingID within ``scope`` (e.g. the StudyInstanceUID).

    The same segment ID in the same study (every trial and the gold standard of one run)
    gets the same UID, which is what tracking across objects means in DICOM.
    """
    from AdaptiveBrushDicomLib.dicom.uids import derive_uid

    return derive_uid("segment-tracking", scope or "", tracking_id)
