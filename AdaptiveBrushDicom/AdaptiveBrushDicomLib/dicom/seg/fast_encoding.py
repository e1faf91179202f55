"""Explicit VR Little Endian encoding helpers of the fast SEG writer (:mod:`.fast`).

Elements and items are encoded once (with pydicom's own element writer, so values are
exactly what pydicom writes) and then concatenated as bytes: a sequence is its items'
bytes behind one header with an explicit length.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Sequence

from AdaptiveBrushDicomLib.dicom.walker.elements import LONG_VRS as _WALKER_LONG_VRS


class NotSupported(Exception):
    """This SEG is not one the fast path writes (e.g. non-ASCII text, which needs the
    dataset-wide SpecificCharacterSet of the highdicom path); use highdicom."""



def _encoder(encodings: Sequence[str]) -> tuple[Callable[[Any], bytes], Callable[[Any], bytes]]:
    """(element, dataset) -> bytes encoders for Explicit VR LE with ``encodings``."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element, write_dataset

    def element(elem: Any) -> bytes:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_data_element(buf, elem, list(encodings))
        return buf.getvalue()

    def dataset(ds: Any) -> bytes:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, ds, parent_encoding=list(encodings))
        return buf.getvalue()

    return element, dataset


def _item(body: bytes) -> bytes:
    return b"\xfe\xff\x00\xe0" + struct.pack("<I", len(body)) + body


def _sequence(tag: int, items: Sequence[bytes]) -> bytes:
    value = b"".join(items)
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"SQ\x00\x00" + struct.pack("<I", len(value)) + value


def _encode_text(tag: int, vr: str, text: str) -> bytes:
    """One short ASCII text element (LT/ST/...), padded to even length with a space."""
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b" "
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode() + struct.pack("<H", len(raw)) + raw


#: VRs with a 4-byte length in Explicit VR Little Endian (PS3.5 7.1.2): the walker's set, as str.
LONG_VRS = frozenset(vr.decode("ascii") for vr in _WALKER_LONG_VRS)


def encode_element(tag: int, vr: str, value: bytes) -> bytes:
    """One element from its already-encoded (even-length) value."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in LONG_VRS:
        return head + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def encode_text(tag: int, vr: str, text: str) -> bytes:
    """An ASCII string element, padded to even length as pydicom pads it (UI with NULL,
    other VRs with a space)."""
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return encode_element(tag, vr, raw)


def encode_sequence(tag: int, item_bodies: Sequence[bytes]) -> bytes:
    """A sequence with explicit lengths from its items' encoded bodies."""
    return _sequence(tag, [_item(body) for body in item_bodies])


#: Text VRs :func:`encode_small_dataset` writes itself (ASCII values only).
_TEXT_VRS = frozenset({"AE", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
#: Binary VRs it writes itself: struct format of one value.
_BINARY_VRS = {"US": "<H", "UL": "<I", "SS": "<h", "SL": "<i"}


def _value_bytes(vr: str, value: Any) -> bytes:
    """The encoded, even-length value of one element.

    Raises
    ------
    NotSupported
        A VR or value this encoder leaves to pydicom (numbers as text, person names,
        non-ASCII text, floats, bytes).
    """
    if value is None or value == "":
        return b""
    many = isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"
    values = list(value) if many else [value]
    if vr in _TEXT_VRS:
        if not all(isinstance(v, str) for v in values):
            raise NotSupported(f"{vr} value that is not a str")
        text = "\\".join(values)
        if not text.isascii():
            raise NotSupported("non-ASCII text")
        raw = text.encode("ascii")
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
        return raw
    fmt = _BINARY_VRS.get(vr)
    if fmt is None or not all(isinstance(v, int) for v in values):
        raise NotSupported(f"VR {vr}")
    return b"".join(struct.pack(fmt, v) for v in values)


def encode_small_dataset(ds: Any) -> bytes:
    """A small dataset (a SegmentSequence item: text, integers, sequences) in Explicit VR
    Little Endian, byte for byte what pydicom's ``write_dataset`` writes for it (tested in
    ``Testing/Python/test_fast_path.py``), ~10x faster: sequences and items get explicit
    lengths, text is padded to even length (UI with NULL, other VRs with a space).

    Raises
    ------
    NotSupported
        An element this encoder leaves to pydicom (see :func:`_value_bytes`).
    """
    return b"".join(encode_small_element(elem) for elem in ds)


def encode_small_element(elem: Any) -> bytes:
    """One element of a small dataset (see :func:`encode_small_dataset`).

    Raises
    ------
    NotSupported
        An element this encoder leaves to pydicom (see :func:`_value_bytes`).
    """
    tag, vr = int(elem.tag), elem.VR
    if vr == "SQ":
        return _sequence(tag, [_item(encode_small_dataset(item)) for item in elem.value])
    return encode_element(tag, vr, _value_bytes(vr, elem.value))
