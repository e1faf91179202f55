"""Walking Explicit VR Little Endian bytes already in memory: elements, items, sequences.

Offsets only, never copies: a raw sequence value pydicom has not converted yet, or a
whole inflated dataset, is walked in place. The two signals of the walker live here:
:class:`NotSupported` ("valid maybe, but not something the walker reads": the caller may
use pydicom) and :class:`Malformed` (the bytes are broken).
"""

from __future__ import annotations

import struct
from typing import Any, Iterator

from AdaptiveBrushDicomLib.io.limits import MAX_SEQUENCE_DEPTH

#: VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF

#: A parsed dataset level: tag -> (VR, raw value bytes, or a list of item datasets for SQ).
RawDataset = dict[int, tuple[str, Any]]

Buffer = bytes | bytearray | memoryview


class NotSupported(Exception):
    """The walker does not read this (valid or not): the caller may use pydicom instead."""


class Malformed(ValueError):
    """The bytes are not a well-formed Explicit VR Little Endian dataset."""


class Truncated(Malformed):
    """The data ends inside an element, an item, a sequence or the Deflated stream: the
    file was cut short.

    Attributes
    ----------
    where : str
        Where the data ends ("byte 2,648", or "byte 9,120 of the inflated dataset").
    inside : str
        What it ends inside ("the 64-byte value", "an element header", "the Deflated data stream").
    start : str
        Where that starts ("" when not known).
    tag : int or None
        The element it ends inside (``0xGGGGEEEE``), when known.
    sequence : int or None
        The top-level sequence that element belongs to, when it is nested.
    """

    def __init__(self, where: str, inside: str, start: str = "", tag: int | None = None) -> None:
        self.where, self.inside, self.start, self.tag = where, inside, start, tag
        self.sequence: int | None = None
        super().__init__(f"truncated: the data ends at {where}, inside {inside}" + (f" at {start}" if start else ""))


class NotDicom(NotSupported):
    """No DICOM preamble and File Meta header ("DICM" at byte 128): empty, cut short in the
    first bytes, or not a DICOM Part-10 file (the message says which)."""


def element_at(buf: Buffer, pos: int, end: int) -> tuple[int, bytes, int, int]:
    """(tag, vr, value_start, length) of the element header at ``pos`` (length may be UNDEFINED).

    Raises
    ------
    Malformed
        Header past ``end`` or an invalid VR.
    """
    if pos + 8 > end:
        raise Malformed(f"element header at byte {pos} runs past the end")
    group, elem = struct.unpack_from("<HH", buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE:
        return tag, b"", pos + 8, struct.unpack_from("<I", buf, pos + 4)[0]
    vr = bytes(buf[pos + 4:pos + 6])
    if vr in LONG_VRS:
        if pos + 12 > end:
            raise Malformed(f"element header at byte {pos} runs past the end")
        return tag, vr, pos + 12, struct.unpack_from("<I", buf, pos + 8)[0]
    if not (vr.isalpha() and vr.isupper()):
        # the transfer syntax said Explicit VR: garbage here is a broken file, not another encoding
        raise Malformed(f"no valid VR at byte {pos} (corrupt data)")
    return tag, vr, pos + 8, struct.unpack_from("<H", buf, pos + 6)[0]


def iter_elements(buf: Buffer, pos: int, end: int, depth: int = 0) -> Iterator[tuple[int, bytes, int, int, int]]:
    """(tag, vr, value_start, value_end, element_start) of one dataset level in ``buf[pos:end]``.

    Stops at an item delimiter. An undefined-length SQ is skipped to its delimiter (its
    ``value_end`` is the delimiter's offset).

    Raises
    ------
    Malformed
        An element that runs past ``end`` or a broken header.
    NotSupported
        An undefined length on an element that is not a sequence.
    """
    while pos < end:
        tag, vr, start, length = element_at(buf, pos, end)
        if tag == ITEM_END:
            return
        if length == UNDEFINED:
            if vr != b"SQ":
                raise NotSupported(f"undefined length outside a sequence at byte {pos}")
            vend = skip_sequence(buf, start, end, depth + 1)
            nxt = vend + 8
        else:
            vend = nxt = start + length
            if vend > end:
                raise Malformed(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {pos} runs past the end")
        yield tag, vr, start, vend, pos
        pos = nxt


def iter_items(buf: Buffer, pos: int, end: int, depth: int = 0) -> Iterator[tuple[int, int, int]]:
    """(body_start, body_end, next_position) of each item of a sequence value ``buf[pos:end]``.

    Raises
    ------
    Malformed
        Not an item, an item past ``end``, or nested deeper than MAX_SEQUENCE_DEPTH.
    """
    if depth > MAX_SEQUENCE_DEPTH:
        raise Malformed(f"sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels")
    while pos < end:
        if pos + 8 > end:
            raise Malformed(f"item header at byte {pos} runs past the end")
        group, elem, length = struct.unpack_from("<HHI", buf, pos)
        tag = group << 16 | elem
        if tag == SEQ_END:
            return
        if tag != ITEM:
            raise Malformed(f"expected an item at byte {pos}")
        start = pos + 8
        if length == UNDEFINED:
            after = _find_item_end(buf, start, end, depth)
            yield start, after - 8, after
            pos = after
        else:
            if start + length > end:
                raise Malformed(f"item at byte {pos} runs past the end")
            yield start, start + length, start + length
            pos = start + length


def _find_item_end(buf: Buffer, start: int, end: int, depth: int) -> int:
    """Position after the item delimiter of an undefined-length item starting at ``start``.

    Raises
    ------
    Malformed
        No delimiter before ``end``.
    """
    pos = start
    while pos < end:
        tag, _vr, vstart, length = element_at(buf, pos, end)
        if tag == ITEM_END:
            return pos + 8
        if length == UNDEFINED:
            pos = skip_sequence(buf, vstart, end, depth + 1) + 8
        else:
            pos = vstart + length
    raise Malformed("item without delimiter")


def skip_sequence(buf: Buffer, pos: int, end: int, depth: int = 0) -> int:
    """Offset of the sequence delimiter of an undefined-length sequence value at ``pos``.

    Raises
    ------
    Malformed
        No delimiter, or a broken item inside.
    """
    for _s, _e, after in iter_items(buf, pos, end, depth):
        pos = after
    if pos + 8 > end or struct.unpack_from("<I", buf, pos)[0] != 0xE0DDFFFE:
        raise Malformed("sequence without delimiter")
    return pos


def find_element(buf: Buffer, start: int, end: int, tag: int) -> tuple[bytes, int, int] | None:
    """(vr, value_start, value_end) of ``tag`` in one dataset level (tags ascending), or None."""
    for t, vr, vs, ve, _es in iter_elements(buf, start, end):
        if t == tag:
            return vr, vs, ve
        if t > tag:
            return None
    return None


__all__ = ["ITEM", "ITEM_END", "LONG_VRS", "PIXEL_DATA", "SEQ_END", "UNDEFINED", "Buffer", "Malformed",
           "NotDicom", "NotSupported", "Truncated", "RawDataset", "element_at", "find_element", "iter_elements", "iter_items",
           "skip_sequence"]
