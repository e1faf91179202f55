"""Walking a DICOM file's header from disk: streaming, inflating Deflated data with a cap.

:func:`read_header` parses a file's meta group and its dataset up to the pixel data,
reading (and inflating) at most :data:`~.limits.MAX_BYTES` of header; :func:`read_pixels`
also gives the native pixel data, inflated no further than the size the header implies
(Rows x Columns x NumberOfFrames, itself capped by ``--max-voxels``), so a deflate bomb is
refused before it grows. The inflater is :func:`~AdaptiveBrushDicomLib.io.deflate.raw_inflater`'s
(zlib-ng when installed, unless ``ABDICOM_ZLIB=stdlib``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.dicom.walker.elements import (
    ITEM, ITEM_END, LONG_VRS, PIXEL_DATA, SEQ_END, UNDEFINED, Malformed, NotDicom, NotSupported, RawDataset, Truncated,
    element_at,
)
from AdaptiveBrushDicomLib.dicom.walker.incomplete import (
    check_pixel_length, not_part10_reason, pixel_data_message, truncated_message, walked_dimensions,
)
from AdaptiveBrushDicomLib.dicom.walker.values import value
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io.deflate import raw_inflater
from AdaptiveBrushDicomLib.io.limits import (
    MAX_BYTES,
    MAX_SEQUENCE_DEPTH,
    FileKind,
    LimitError,
    check_file,
    check_voxels,
)

EXPLICIT_LE = Compression.EXPLICIT.uid
DEFLATED = Compression.DEFLATE.uid
#: Transfer syntaxes whose dataset is Explicit VR Little Endian (native or encapsulated pixels):
#: every one we know except Implicit VR and Explicit VR Big Endian.
EXPLICIT_LE_SYNTAXES = frozenset(
    [m.uid for m in Compression]
    + [m.uid for m in ReadOnlySyntax if m not in (ReadOnlySyntax.IMPLICIT, ReadOnlySyntax.EXPLICIT_BIG_ENDIAN)]
)
#: Slack allowed after the pixel data of a Deflated file (trailing padding elements).
TRAILING_SLACK = 1 << 20


_unpack_tag = struct.Struct("<HH").unpack_from

#: How far past the requested end a Deflated stream is inflated per step.
_INFLATE_AHEAD = 1 << 16


class _Source:
    """Dataset bytes read (and inflated) on demand from a stream, at most ``cap`` bytes.

    A Deflated stream is inflated only :data:`_INFLATE_AHEAD` bytes past what was asked for
    (the rest stays in the inflater's ``unconsumed_tail``), so walking a header does not
    inflate the pixel data behind it."""

    def __init__(self, fh: BinaryIO, deflated: bool, cap: int, initial: bytes = b"", base: int = 0) -> None:
        self.fh, self.cap, self.base = fh, cap, base
        self.want = _INFLATE_AHEAD
        self.data = bytearray()
        self.inflater: Any = raw_inflater() if deflated else None
        self._feed(initial)

    def _feed(self, raw: bytes) -> None:
        """Append ``raw`` (inflated when Deflated, at most ``cap + 1`` bytes in all).

        Raises
        ------
        Malformed
            Corrupt Deflated data.
        """
        if self.inflater is None:
            self.data += raw
            return
        room = min(self.cap + 1, self.want) - len(self.data)
        try:
            self.data += self.inflater.decompress(self.inflater.unconsumed_tail + raw, max(room, 1))
        except Exception as exc:  # zlib.error (zlib-ng raises its own error class)
            raise Malformed(f"Deflated data is corrupt ({exc})") from None

    def where(self, pos: int) -> str:
        """``pos`` in words: the file offset, or (``base`` < 0) the offset in the inflated dataset."""
        if self.base < 0:
            return f"byte {pos:,} of the inflated dataset"
        return f"byte {pos + self.base:,}"

    def need(self, end: int) -> bool:
        """Make ``data[:end]`` available; False at a clean end of data.

        Raises
        ------
        LimitError
            ``end`` beyond the cap.
        Truncated
            The file ends inside the Deflated data stream.
        Malformed
            Corrupt Deflated data.
        """
        if end > self.cap:
            raise LimitError(f"header is larger than {self.cap // 2**20} MiB; this is not a SEG we can read")
        self.want = max(self.want, end + _INFLATE_AHEAD)
        while len(self.data) < end:
            if self.inflater is not None and self.inflater.unconsumed_tail:
                before = len(self.data)
                self._feed(b"")
                if len(self.data) > before:
                    continue
            chunk = self.fh.read(1 << 16)
            if not chunk:
                if self.inflater is not None:
                    complete = self.inflater.eof
                    try:
                        self.data += self.inflater.flush()
                    except Exception as exc:
                        raise Malformed(f"Deflated data is corrupt ({exc})") from None
                    self.inflater = None
                    if not complete:  # the file ends inside the deflate stream
                        raise Truncated(f"byte {self.fh.tell():,}",
                                        f"the Deflated data stream ({len(self.data):,} bytes of the dataset inflated)")
                    if len(self.data) >= end:
                        return True
                return False
            self._feed(chunk)
        return True

    def inflate_rest(self, limit: int) -> None:
        """Inflate everything, refusing more than ``limit`` bytes in all.

        Raises
        ------
        LimitError
            More than ``limit`` bytes.
        Malformed
            Corrupt Deflated data.
        """
        self.cap, self.want = limit, limit + 1
        while len(self.data) <= limit and self.inflater is not None and not self.inflater.eof:
            if self.inflater.unconsumed_tail:
                self._feed(b"")
                continue
            chunk = self.fh.read(1 << 20)
            if not chunk:
                break
            self._feed(chunk)
        if len(self.data) > limit:
            raise LimitError(f"Deflated data inflates to more than {limit:,} bytes, more than its header "
                             "implies (a deflate bomb?)")

    def read_rest(self, limit: int) -> None:
        """Read (or inflate) everything up to ``limit + 1`` bytes in all: more is the caller's
        to refuse.

        Raises
        ------
        LimitError
            A Deflated body larger than ``limit``.
        Malformed
            Corrupt Deflated data.
        """
        if self.inflater is not None:
            self.inflate_rest(limit)
            return
        while len(self.data) <= limit:
            chunk = self.fh.read(min(1 << 22, limit + 1 - len(self.data)))
            if not chunk:
                return
            self.data += chunk


def _parse(src: _Source, pos: int, end: int | None, depth: int, top: bool,
           stop: int = PIXEL_DATA) -> tuple[RawDataset, int]:
    """One dataset level from ``src``: {tag: (vr, value)}, SQ values as lists of datasets;
    the top level stops before the first tag >= ``stop``.

    Raises
    ------
    Truncated
        The data ends inside an element (names it, and its top-level sequence).
    Malformed
        An item tag out of place, lengths that overrun their item.
    NotSupported
        An undefined length outside a sequence.
    """
    out: RawDataset = {}
    data = src.data  # grows in place; need() is called only when it has something to do
    while end is None or pos < end:
        if pos + 12 > len(data) or pos + 12 > src.cap:
            if not src.need(pos + 8):
                if top and len(data) == pos:
                    return out, pos  # clean end of file
                raise Truncated(src.where(len(data)), "an element header", src.where(pos))
        group, elem = _unpack_tag(data, pos)
        tag = group << 16 | elem
        if tag == ITEM_END and not top:
            return out, pos + 8
        if top and tag >= stop:
            return out, pos  # stop before pixels (or the first tag not asked for)
        if (pos + 12 > len(data) or pos + 12 > src.cap) and not src.need(pos + 12) \
                and (len(data) < pos + 8 or bytes(data[pos + 4:pos + 6]) in LONG_VRS):  # short VRs take 8 bytes
            raise Truncated(src.where(len(data)), "the element header", src.where(pos), tag)
        tag, vr, start, length = element_at(data, pos, len(data))
        if group == 0xFFFE:
            raise Malformed(f"unexpected item tag at byte {pos}")
        if end is not None and length != UNDEFINED and start + length > end:  # corrupt, not cut short
            raise Malformed(f"element ({group:04X},{elem:04X}) at byte {pos} overruns its item (ends at {end})")
        if vr == b"SQ":
            try:
                items, pos = _parse_items(src, start, None if length == UNDEFINED else start + length, depth + 1)
            except Truncated as exc:
                if exc.tag is None and exc.start:  # an item header of this sequence
                    exc.tag = tag
                elif exc.sequence is None and top and exc.tag != tag:
                    exc.sequence = tag
                raise
            out[tag] = ("SQ", items)
            continue
        if length == UNDEFINED:
            raise NotSupported(f"undefined length outside a sequence at byte {pos}")
        stop_at = start + length
        if (stop_at > len(data) or stop_at > src.cap) and not src.need(stop_at):
            raise Truncated(src.where(len(data)), f"the {length:,}-byte value", src.where(pos), tag)
        out[tag] = (vr.decode("ascii"), bytes(data[start:stop_at]))
        pos = stop_at
    if end is not None and pos != end:
        raise Malformed(f"element lengths overrun their item (byte {pos}, item ends at {end})")
    return out, pos


def _parse_items(src: _Source, pos: int, end: int | None, depth: int) -> tuple[list[RawDataset], int]:
    """The items of one sequence value from ``src`` (``end`` None: undefined length).

    Raises
    ------
    Truncated
        The data ends inside an item header.
    Malformed
        Nested too deeply, not an item, items that overrun their sequence.
    """
    if depth > MAX_SEQUENCE_DEPTH:
        raise Malformed(f"sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels")
    items: list[RawDataset] = []
    while end is None or pos < end:
        if not src.need(pos + 8):
            raise Truncated(src.where(len(src.data)), "an item header", src.where(pos))
        group, elem, length = struct.unpack_from("<HHI", src.data, pos)
        tag = group << 16 | elem
        if tag == SEQ_END:
            return items, pos + 8
        if tag != ITEM:
            raise Malformed(f"expected an item at byte {pos}")
        if length == UNDEFINED:
            item, pos = _parse(src, pos + 8, None, depth, False)
        elif end is not None and pos + 8 + length > end:  # corrupt, not cut short
            raise Malformed(f"item at byte {pos} overruns its sequence (ends at {end})")
        else:
            item, _ = _parse(src, pos + 8, pos + 8 + length, depth, False)
            pos = pos + 8 + length
        items.append(item)
    if end is not None and pos != end:
        raise Malformed(f"items overrun their sequence (byte {pos}, sequence ends at {end})")
    return items, pos


@dataclass
class Header:
    """A file's header as walked: meta group, transfer syntax, dataset up to the pixels.

    Attributes
    ----------
    meta, dataset : RawDataset
    transfer_syntax_uid : str
    preamble_and_meta : bytes
        The file's first bytes up to the end of the meta group (as stored).
    pixel_offset : int
        Offset of the pixel data element (or the end of data) in the (inflated) dataset bytes.
    """

    meta: RawDataset
    transfer_syntax_uid: str
    dataset: RawDataset
    preamble_and_meta: bytes
    pixel_offset: int
    _source: _Source

    @property
    def deflated(self) -> bool:
        """True for the Deflated Explicit VR Little Endian transfer syntax."""
        return self.transfer_syntax_uid == DEFLATED


def _read_meta(fh: BinaryIO) -> tuple[RawDataset, str, bytes, bytes]:
    """(meta, transfer syntax, preamble+meta bytes, bytes read past the meta).

    Raises
    ------
    NotDicom
        Empty, too short, or no preamble ("DICM" at byte 128).
    NotSupported
        No meta group length.
    Truncated
        The file ends inside its File Meta header.
    Malformed
        A meta group longer than 1 MiB or broken.
    """
    head = fh.read(144)
    reason = not_part10_reason(head)
    if reason:
        raise NotDicom(reason)
    if len(head) < 144:
        raise Truncated(f"byte {len(head)}", "the File Meta header")
    if head[132:136] != b"\x02\x00\x00\x00" or head[136:138] != b"UL":
        raise NotSupported("no file meta group length")
    meta_end = 144 + struct.unpack_from("<I", head, 140)[0]
    if meta_end > 1 << 20:
        raise Malformed("file meta group longer than 1 MiB")
    src = _Source(fh, False, 1 << 20, head[132:], base=132)
    meta, _ = _parse(src, 0, meta_end - 132, 1, False)
    ts = value(meta, 0x00020010, "")
    return meta, str(ts), head[:132] + bytes(src.data[:meta_end - 132]), bytes(src.data[meta_end - 132:])


def read_header(path: str | Path, fh: BinaryIO | None = None, *, stop_before: int = PIXEL_DATA) -> Header:
    """Walk the header of the DICOM file at ``path`` (or the open ``fh``), stopping before the pixels.

    ``stop_before`` (a tag as ``0xGGGGEEEE``) stops earlier, before the first top-level
    element at or after it: only that much of a Deflated file is inflated (e.g. the
    ReferencedSeriesSequence of a SEG without its per-frame items). ``pixel_offset`` is
    then the offset of that element.

    Raises
    ------
    NotSupported
        Not Explicit VR Little Endian (implicit VR, big endian ...); :class:`NotDicom` for
        an empty file or one without preamble.
    IncompleteFileError
        The file ends inside its header (names where, the element and its sequence), or
        (not Deflated) inside its PixelData: its declared length is compared with the
        file's size, so a series of slices is checked at no cost.
    InputFileError
        Corrupt header (names the byte offset).
    LimitError
        A header past :data:`MAX_BYTES` (inflated) or nested deeper than MAX_SEQUENCE_DEPTH.
    """
    if fh is None:
        check_file(path, what="DICOM file")
        with open(path, "rb") as own:
            return read_header(path, own, stop_before=stop_before)
    try:
        meta, ts, pre, rest = _read_meta(fh)
        if ts not in EXPLICIT_LE_SYNTAXES:
            raise NotSupported(f"transfer syntax {ts or 'missing'}")
        src = _Source(fh, ts == DEFLATED, MAX_BYTES[FileKind.DICOM_HEADER], rest,
                      base=-1 if ts == DEFLATED else len(pre))
        ds, pos = _parse(src, 0, None, 0, True, stop_before)
    except Truncated as exc:
        raise IncompleteFileError(truncated_message(exc), path) from None
    except Malformed as exc:
        raise InputFileError(f"not a readable DICOM file: {exc}; copy it again from its source", path) from None
    except LimitError as exc:
        raise LimitError(str(exc), path) from None
    if src.base >= 0:
        _check_pixel_length(src, pos, ds, fh, path)
    return Header(meta, ts, ds, pre, pos, src)


def _check_pixel_length(src: _Source, pos: int, ds: RawDataset, fh: BinaryIO, path: str | Path) -> None:
    """:func:`~.incomplete.check_pixel_length` once the PixelData element header at ``pos`` is read.

    Raises
    ------
    IncompleteFileError
        The file ends inside PixelData.
    """
    if len(src.data) < pos + 12:
        try:
            if not src.need(pos + 12):
                return
        except (Malformed, LimitError):
            return
    check_pixel_length(src.data, pos, src.base, ds, fh, path)


def implied_pixel_bytes(ds: RawDataset, path: str | Path | None) -> int:
    """Bytes of native pixel data the header implies (Rows x Columns x NumberOfFrames x
    SamplesPerPixel x BitsAllocated / 8), after checking the voxel count against ``--max-voxels``.

    Raises
    ------
    LimitError
        More voxels than allowed.
    InputFileError
        Rows/Columns/BitsAllocated missing or not numbers.
    """
    try:
        rows = int(value(ds, 0x00280010, 0) or 0)
        cols = int(value(ds, 0x00280011, 0) or 0)
        frames = int(value(ds, 0x00280008, 1) or 1)
        spp = int(value(ds, 0x00280002, 1) or 1)
        bits = int(value(ds, 0x00280100, 8) or 8)
    except (NotSupported, ValueError, TypeError) as exc:
        raise InputFileError(f"Rows/Columns/NumberOfFrames are not numbers ({exc})", path) from None
    check_voxels(rows * cols * max(frames, 1) * max(spp, 1), "Rows x Columns x NumberOfFrames x SamplesPerPixel",
                 path)
    return (rows * cols * max(frames, 1) * max(spp, 1) * max(bits, 1) + 7) // 8




def read_pixels(path: str | Path) -> tuple[Header, memoryview]:
    """The header and the native (not encapsulated) PixelData value of the file at ``path``.

    A Deflated body is inflated no further than the header implies (plus
    :data:`TRAILING_SLACK`). Anything this does not read the way pydicom would is
    :class:`NotSupported`: no PixelData, encapsulated or undefined-length pixel data,
    elements after the pixel data. A file that ends inside PixelData (or its Deflated
    stream) is an :class:`~.errors.IncompleteFileError` saying how many bytes and frames
    are there (one length comparison, no extra pass over the data).

    Returns
    -------
    (Header, memoryview)
        The view is of the walked bytes (no copy); its length is PixelData's declared length.

    Raises
    ------
    NotSupported
        See above; also everything :func:`read_header` does not read.
    IncompleteFileError
        The file ends inside its header or its PixelData.
    InputFileError
        Corrupt header or Deflated data.
    LimitError
        More voxels than ``--max-voxels``, or a body that inflates past what the header implies.
    """
    check_file(path, what="DICOM file")
    with open(path, "rb") as fh:
        header = read_header(path, fh)
        src, pos = header._source, header.pixel_offset
        limit = pos + 12 + implied_pixel_bytes(header.dataset, path) + TRAILING_SLACK
        try:
            src.cap = max(src.cap, limit)
            if not src.need(pos + 12):
                raise NotSupported("no PixelData")
            tag, vr, start, length = element_at(src.data, pos, len(src.data))
            if tag != PIXEL_DATA or vr not in (b"OB", b"OW") or length == UNDEFINED:
                raise NotSupported("PixelData not native")
            src.read_rest(limit)
        except LimitError as exc:
            raise LimitError(str(exc), path) from None
        except Truncated as exc:
            raise IncompleteFileError(truncated_message(exc), path) from None
        except Malformed as exc:
            raise InputFileError(f"not a readable DICOM file: {exc}; copy it again from its source", path) from None
    if len(src.data) < start + length:
        raise IncompleteFileError(pixel_data_message(len(src.data) - start, length, walked_dimensions(header.dataset)),
                                  path)
    if len(src.data) != start + length:
        raise NotSupported("elements after PixelData")
    return header, memoryview(src.data)[start:start + length]
