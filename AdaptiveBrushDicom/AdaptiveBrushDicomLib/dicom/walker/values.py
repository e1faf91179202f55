"""Element values of a walked dataset, converted as pydicom converts them.

Only what can be converted without a character set or a data dictionary: ASCII text,
integers, decimal and integer strings. Anything else is :class:`~.elements.NotSupported`,
so the caller reads the file with pydicom instead of getting a different answer.
"""

from __future__ import annotations

import struct
from typing import Any

from AdaptiveBrushDicomLib.dicom.walker.elements import Malformed, NotSupported, RawDataset

_INT_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}
_BINARY_VRS = frozenset({"OB", "OW", "UN", "OF", "OD", "OL", "OV", "FL", "FD", "AT", "SV", "UV"})
_STRIPPED_BOTH = frozenset({"IS", "DS", "DA", "TM", "DT", "CS", "AS"})
#: The VRs of PS3.5 Table 6.2-1 (the walker reads any two capital letters).
KNOWN_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
                       "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
                       "UR", "US", "UT", "UV"})


def _integers(vr: str, raw: bytes) -> list[int]:
    fmt = _INT_FORMATS[vr]
    size = struct.calcsize(fmt)
    n = len(raw) // size
    return list(struct.unpack(f"<{n}{fmt}", raw[:n * size]))


def _ascii(raw: bytes) -> str:
    """``raw`` as ASCII text.

    Raises
    ------
    NotSupported
        A non-ASCII byte (the character set decides: pydicom's job).
    """
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise NotSupported("non-ASCII text") from None


def _strip(vr: str, text: str) -> str:
    """Padding removed the way pydicom removes it for ``vr``."""
    if vr == "UI":
        return text.rstrip("\x00 ")
    if vr in _STRIPPED_BOTH:
        return text.strip(" \x00")
    return text.rstrip(" \x00")


def _number(vr: str, text: str) -> Any:
    """An IS/DS string as int/float (None when empty); other VRs unchanged.

    Raises
    ------
    Malformed
        A number that does not parse.
    """
    try:
        if vr == "IS":
            return int(text) if text else None
        if vr == "DS":
            return float(text) if text else None
    except ValueError:
        raise Malformed(f"{vr} value {text[:20]!r} is not a number") from None
    return text


def value(ds: RawDataset, tag: int, default: Any = None) -> Any:
    """Element value as pydicom would give it (str / int / float / list / items), or ``default``.

    Raises
    ------
    NotSupported
        Non-ASCII text (the character set decides: pydicom's job), multi-valued strings,
        binary VRs.
    Malformed
        A number that does not parse.
    """
    if tag not in ds:
        return default
    vr, raw = ds[tag]
    if vr == "SQ":
        return raw
    if vr in _INT_FORMATS:
        vals = _integers(vr, raw)
        return None if not vals else vals[0] if len(vals) == 1 else vals
    if vr in _BINARY_VRS:
        raise NotSupported(f"VR {vr}")
    text = _ascii(raw)
    if vr in ("LT", "ST", "UT"):
        return text.rstrip(" \x00")
    text = _strip(vr, text)
    if "\\" in text:
        raise NotSupported("multi-valued")
    return _number(vr, text)


def numbers(ds: RawDataset, tag: int) -> list[float] | None:
    """All values of a numeric element (DS, IS, US, SS, UL, SL) as floats; None when absent.

    An empty element gives ``[]``.

    Raises
    ------
    NotSupported
        Another VR (binary floats, text).
    Malformed
        A value that does not parse as a number.
    """
    if tag not in ds:
        return None
    vr, raw = ds[tag]
    if vr in _INT_FORMATS:
        return [float(v) for v in _integers(vr, raw)]
    if vr not in ("DS", "IS"):
        raise NotSupported(f"VR {vr} is not a number string")
    text = _ascii(raw).strip(" \x00")
    if not text:
        return []
    try:
        return [float(v) for v in text.split("\\")]
    except ValueError:
        raise Malformed(f"{vr} value {text[:40]!r} is not numbers") from None


def check_vrs(ds: RawDataset) -> None:
    """Every element of ``ds`` (and of its items) has a VR of the standard.

    Raises
    ------
    NotSupported
        An unknown VR (pydicom refuses those; the walker does not guess what it would do).
    """
    stack = [ds]
    while stack:
        level = stack.pop()
        for tag, (vr, raw) in level.items():
            if vr not in KNOWN_VRS:
                raise NotSupported(f"unknown VR {vr!r} in ({tag >> 16:04X},{tag & 0xFFFF:04X})")
            if vr == "SQ":
                stack.extend(raw)


def items(ds: RawDataset, tag: int) -> list[RawDataset]:
    """The items of sequence ``tag`` (``[]`` when absent).

    Raises
    ------
    NotSupported
        The element is not a sequence.
    """
    if tag not in ds:
        return []
    vr, raw = ds[tag]
    if vr != "SQ":
        raise NotSupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a sequence")
    return list(raw)


__all__ = ["KNOWN_VRS", "check_vrs", "items", "numbers", "value"]
