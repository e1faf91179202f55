"""Text values of a SegmentSequence item: VR limits, and AlgorithmParameters as JSON.

Over-long values raise :class:`SegmentMetadataError` naming the segment and the
attribute; nothing is cut silently. Pure Python (no pydicom, no highdicom).
"""

from __future__ import annotations

import json
from typing import Any

from AdaptiveBrushDicomLib.errors import UserError

__all__ = [
    "SegmentMetadataError",
    "UNSPECIFIED",
    "VR_LIMITS",
    "check_text",
    "format_parameters",
    "parse_parameters",
]

#: Maximum lengths (characters) of the attributes we write (PS3.5 Table 6.2-1).
VR_LIMITS: dict[str, tuple[str, int]] = {
    "SegmentLabel": ("LO", 64),
    "SegmentDescription": ("ST", 1024),
    "SegmentAlgorithmName": ("LO", 64),
    "AlgorithmName": ("LO", 64),
    "AlgorithmVersion": ("LO", 64),
    "AlgorithmParameters": ("LT", 10240),
    "CodeMeaning": ("LO", 64),
    "TrackingID": ("LO", 64),
}

#: Written as AlgorithmName / AlgorithmVersion when a non-MANUAL segment does not say
#: (both are Type 1 in the Algorithm Identification macro); read back as None.
UNSPECIFIED = "unspecified"


class SegmentMetadataError(UserError):
    """A segment attribute cannot be written to DICOM as it is."""


def check_text(value: str, attribute: str, segment_name: str, what: str | None = None) -> str:
    """Check that ``value`` fits ``attribute``'s VR (:data:`VR_LIMITS`).

    Parameters
    ----------
    value : the text to write.
    attribute : DICOM keyword, a key of :data:`VR_LIMITS`.
    segment_name : named in the message.
    what : names the field when the attribute alone is ambiguous (e.g. which code's
        CodeMeaning).

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    SegmentMetadataError
        When the value is longer than the VR allows, an LO value contains a backslash, or
        the value contains control characters (LT/ST allow CR, LF, TAB, FF, ESC).
    """
    vr, limit = VR_LIMITS[attribute]
    field = f"{what} {attribute}" if what else attribute
    if len(value) > limit:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: {field} ({vr}) is {len(value)} characters, the limit is {limit}; "
            f"shorten it: {value[:40]!r}..."
        )
    if vr == "LO" and "\\" in value:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: {field} ({vr}) must not contain a backslash: {value!r}"
        )
    bad = [c for c in value if ord(c) < 32 and (vr == "LO" or c not in "\r\n\t\f\x1b")]
    if bad:
        raise SegmentMetadataError(f"segment {segment_name!r}: {field} ({vr}) contains control characters: {value!r}")
    return value


def format_parameters(parameters: dict[str, Any], segment_name: str = "?") -> str:
    """Algorithm parameters as compact, key-sorted JSON (the AlgorithmParameters value).

    ``json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``:
    non-ASCII characters are escaped, so the value stays in the default character
    repertoire, and ``json.loads`` gives the dict back exactly.

    Raises
    ------
    SegmentMetadataError
        When the parameters are not JSON-serialisable (NaN / infinity included) or the
        JSON is longer than 10240 characters (LT).
    """
    try:
        text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: algorithm parameters are not JSON-serialisable ({exc})"
        ) from None
    return check_text(text, "AlgorithmParameters", segment_name)


def parse_parameters(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Read AlgorithmParameters: our JSON, or highdicom's ``key=value,key=value``.

    Returns
    -------
    (parameters, raw)
        ``parameters`` is a dict when the text is a JSON object or ``k=v`` pairs, else
        None and ``raw`` is the unparsed text.
    """
    text = str(text).strip()
    if not text:
        return None, None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value, None
    pairs = text.split(",")
    if all("=" in p for p in pairs):
        return {k.strip(): v for k, v in (p.split("=", 1) for p in pairs)}, None
    return None, text
