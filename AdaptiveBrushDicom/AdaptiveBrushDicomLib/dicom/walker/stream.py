"""The one raw DICOM byte walker: Explicit VR Little Endian (plain or Deflated), capped.

Used where pydicom's per-element conversion costs more than the work (``abdicom info``,
the per-frame sequences of a SEG, the index) and where pydicom would inflate a Deflated
file without any limit. Three layers:

* :func:`iter_elements` / :func:`iter_items` walk bytes already in memory (a raw sequence
  value pydicom has not converted yet), yielding offsets, never copies;
* :func:`read_header` parses a file's meta group and its dataset up to the pixel data,
  streaming and inflating at most :data:`~.limits.MAX_BYTES` of header;
* :func:`dcmread` is ``pydicom.dcmread`` for any file, except that a Deflated body is
  inflated here, capped by the size its header implies (Rows x Columns x NumberOfFrames,
  itself capped by ``--max-voxels``), so a deflate bomb is refused before it grows.

Signals: :class:`NotSupported` means "valid maybe, but not something this walker reads"
(implicit VR, big endian, a character set, a VR it does not convert); callers may then use
pydicom. :class:`Malformed` means the bytes are broken; the file-level functions turn it
into an :class:`~.errors.InputFileError` naming the file and the offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io.limits import (
    MAX_BYTES,
    MAX_SEQUENCE_DEPTH,
    FileKind,
    LimitError,
    check_file,
    check_voxels,
)

#: VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
#: Transfer syntaxes whose dataset is Explicit VR Little Endian (native or encapsulated pixels).
EXPLICIT_LE_SYNTAXES = frozenset({
    EXPLICIT_LE, DEFLATED, "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
})
#: Slack allowed after the pixel data of a Deflated file (trailing padding elements).
TRAILING_SLACK = 1 << 20

#: A parsed dataset level: tag -> (VR, raw value bytes, or a list of item datasets for SQ).
RawDataset = dict[int, tuple[str, Any]]


class NotSupported(Exception):
    """The walker does not read this (valid or not): the caller may use pydicom instead."""


class Malformed(ValueError):
    """The bytes are not a well-formed Explicit VR Little Endian dataset."""


# ------------------------------------------------------------- in-memory walking
def element_at(buf: bytes | bytearray | memoryview, pos: int, end: int) -> tuple[int, bytes, int, int]:
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


def iter_elements(buf: bytes | memoryview, pos: int, end: int, depth: int = 0
                  ) -> Iterator[tuple[int, bytes, int, int, int]]:
    """(tag, vr, value_start, value_end, element_start) of one dataset level in ``buf[pos:end]``.

    Stops at an item delimiter. An undefined-length SQ is skipped to its delimiter (its
    ``value_end`` is the delimiter's offset).

    Raises
    ------
    Malformed, NotSupported
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


def iter_items(buf: bytes | memoryview, pos: int, end: int, depth: int = 0) -> Iterator[tuple[int, int, int]]:
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


def _find_item_end(buf: bytes | memoryview, start: int, end: int, depth: int) -> int:
    """Position after the item delimiter of an undefined-length item starting at ``start``."""
    pos = start
    while pos < end:
        tag, vr, vstart, length = element_at(buf, pos, end)
        if tag == ITEM_END:
            return pos + 8
        if length == UNDEFINED:
            pos = skip_sequence(buf, vstart, end, depth + 1) + 8
        else:
            pos = vstart + length
    raise Malformed("item without delimiter")


def skip_sequence(buf: bytes | memoryview, pos: int, end: int, depth: int = 0) -> int:
    """Offset of the sequence delimiter of an undefined-length sequence value at ``pos``."""
    for _s, _e, after in iter_items(buf, pos, end, depth):
        pos = after
    if pos + 8 > end or struct.unpack_from("<I", buf, pos)[0] != 0xE0DDFFFE:
        raise Malformed("sequence without delimiter")
    return pos


def find_element(buf: bytes | memoryview, start: int, end: int, tag: int) -> tuple[bytes, int, int] | None:
    """(vr, value_start, value_end) of ``tag`` in one dataset level (tags ascending), or None."""
    for t, vr, vs, ve, _es in iter_elements(buf, start, end):
        if t == tag:
            return vr, vs, ve
        if t > tag:
            return None
    return None


# ------------------------------------------------------------- streaming source
#: How far past the requested end a Deflated stream is inflated per step.
_INFLATE_AHEAD = 1 << 16


class _Source:
    """Dataset bytes read (and inflated) on demand from a stream, at most ``cap`` bytes.

    A Deflated stream is inflated only :data:`_INFLATE_AHEAD` bytes past what was asked for
    (the rest stays in the inflater's ``unconsumed_tail``), so walking a header does not
    inflate the pixel data behind it."""

    def __init__(self, fh: BinaryIO, deflated: bool, cap: int, initial: bytes = b"") -> None:
        self.fh, self.cap = fh, cap
        self.want = _INFLATE_AHEAD
        self.data = bytearray()
        self.inflater = None
        if deflated:
            self.inflater = _decompressobj()
        self.exhausted = False
        self._feed(initial)

    def _feed(self, raw: bytes) -> None:
        if self.inflater is None:
            self.data += raw
            return
        room = min(self.cap + 1, self.want) - len(self.data)
        try:
            self.data += self.inflater.decompress(self.inflater.unconsumed_tail + raw, max(room, 1))
        except Exception as exc:  # zlib.error (zlib-ng raises its own error class)
            raise Malformed(f"Deflated data is corrupt ({exc})") from None

    def need(self, end: int) -> bool:
        """Make ``data[:end]`` available; False at a clean end of data."""
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
                        raise Malformed(f"truncated: the Deflated data ends before its end (byte {len(self.data)})")
                    if len(self.data) >= end:
                        return True
                return False
            self._feed(chunk)
        return True

    def inflate_rest(self, limit: int) -> None:
        """Inflate everything, refusing more than ``limit`` bytes in all (:class:`LimitError`)."""
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


def _decompressobj() -> Any:
    try:  # zlib-ng inflates 2-3x faster than zlib (optional 'fast' extra)
        from zlib_ng import zlib_ng

        return zlib_ng.decompressobj(-15)
    except ImportError:
        import zlib

        return zlib.decompressobj(-15)


def _parse(src: _Source, pos: int, end: int | None, depth: int, top: bool,
           stop: int = PIXEL_DATA) -> tuple[RawDataset, int]:
    """One dataset level from ``src``: {tag: (vr, value)}, SQ values as lists of datasets;
    the top level stops before the first tag >= ``stop``."""
    out: RawDataset = {}
    while end is None or pos < end:
        if not src.need(pos + 8):
            if top and len(src.data) == pos:
                return out, pos  # clean end of file
            raise Malformed(f"truncated at byte {len(src.data)} (inside the element at byte {pos})")
        group, elem = struct.unpack_from("<HH", src.data, pos)
        tag = group << 16 | elem
        if tag == ITEM_END and not top:
            return out, pos + 8
        if top and tag >= stop:
            return out, pos  # stop before pixels (or the first tag not asked for)
        if not src.need(pos + 12):
            raise Malformed(f"truncated at byte {len(src.data)} (inside the element at byte {pos})")
        tag, vr, start, length = element_at(src.data, pos, len(src.data))
        if group == 0xFFFE:
            raise Malformed(f"unexpected item tag at byte {pos}")
        if vr == b"SQ":
            items, pos = _parse_items(src, start, None if length == UNDEFINED else start + length, depth + 1)
            out[tag] = ("SQ", items)
            continue
        if length == UNDEFINED:
            raise NotSupported(f"undefined length outside a sequence at byte {pos}")
        if not src.need(start + length):
            raise Malformed(f"truncated: element ({group:04X},{elem:04X}) at byte {pos} declares {length} bytes, "
                            f"the data ends at byte {len(src.data)}")
        out[tag] = (vr.decode("ascii"), bytes(src.data[start:start + length]))
        pos = start + length
    if end is not None and pos != end:
        raise Malformed(f"element lengths overrun their item (byte {pos}, item ends at {end})")
    return out, pos


def _parse_items(src: _Source, pos: int, end: int | None, depth: int) -> tuple[list[RawDataset], int]:
    if depth > MAX_SEQUENCE_DEPTH:
        raise Malformed(f"sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels")
    items: list[RawDataset] = []
    while end is None or pos < end:
        if not src.need(pos + 8):
            raise Malformed(f"truncated inside a sequence at byte {len(src.data)}")
        group, elem, length = struct.unpack_from("<HHI", src.data, pos)
        tag = group << 16 | elem
        if tag == SEQ_END:
            return items, pos + 8
        if tag != ITEM:
            raise Malformed(f"expected an item at byte {pos}")
        if length == UNDEFINED:
            item, pos = _parse(src, pos + 8, None, depth, False)
        else:
            item, _ = _parse(src, pos + 8, pos + 8 + length, depth, False)
            pos = pos + 8 + length
        items.append(item)
    if end is not None and pos != end:
        raise Malformed(f"items overrun their sequence (byte {pos}, sequence ends at {end})")
    return items, pos


# ------------------------------------------------------------- files
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
        return self.transfer_syntax_uid == DEFLATED


def _read_meta(fh: BinaryIO) -> tuple[RawDataset, str, bytes, bytes]:
    """(meta, transfer syntax, preamble+meta bytes, bytes read past the meta)."""
    head = fh.read(144)
    if len(head) < 144 or head[128:132] != b"DICM":
        raise NotSupported("no DICOM preamble")
    if head[132:136] != b"\x02\x00\x00\x00" or head[136:138] != b"UL":
        raise NotSupported("no file meta group length")
    meta_end = 144 + struct.unpack_from("<I", head, 140)[0]
    if meta_end > 1 << 20:
        raise Malformed("file meta group longer than 1 MiB")
    src = _Source(fh, False, 1 << 20, head[132:])
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
        Not Explicit VR Little Endian (implicit VR, big endian, no preamble ...).
    InputFileError
        Truncated or corrupt header (names the byte offset); :class:`LimitError` for a
        header past :data:`MAX_BYTES` (inflated) or nested deeper than MAX_SEQUENCE_DEPTH.
    """
    if fh is None:
        check_file(path, what="DICOM file")
        with open(path, "rb") as own:
            return read_header(path, own, stop_before=stop_before)
    try:
        meta, ts, pre, rest = _read_meta(fh)
        if ts not in EXPLICIT_LE_SYNTAXES:
            raise NotSupported(f"transfer syntax {ts or 'missing'}")
        src = _Source(fh, ts == DEFLATED, MAX_BYTES[FileKind.DICOM_HEADER], rest)
        ds, pos = _parse(src, 0, None, 0, True, stop_before)
    except Malformed as exc:
        raise InputFileError(f"not a readable DICOM file: {exc}; copy it again from its source", path) from None
    except LimitError as exc:
        raise LimitError(str(exc), path) from None
    return Header(meta, ts, ds, pre, pos, src)


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


def dcmread(path: str | Path, *, stop_before_pixels: bool = False, specific_tags: list[Any] | None = None,
            fh: BinaryIO | None = None) -> Any:
    """``pydicom.dcmread`` with a capped inflate for Deflated files (see module docstring).

    Parameters
    ----------
    path : the file (for messages; opened unless ``fh`` is given)
    fh : an open binary file positioned at 0 (e.g. ``BytesIO`` of the file's bytes)

    Raises
    ------
    LimitError
        The header implies more voxels than ``--max-voxels``, or the body inflates past
        what the header implies.
    InputFileError
        Corrupt Deflated data.
    pydicom.errors.InvalidDicomError, OSError, ...
        As pydicom raises them for the non-Deflated case.
    """
    import pydicom

    if fh is None:
        check_file(path, what="DICOM file")
        with open(path, "rb") as own:
            return dcmread(path, stop_before_pixels=stop_before_pixels, specific_tags=specific_tags, fh=own)
    start = fh.tell()
    try:
        ts = _read_meta(fh)[1]
    except (NotSupported, Malformed):
        ts = None  # pydicom decides (and words the error)
    fh.seek(start)
    if ts != DEFLATED:
        return pydicom.dcmread(fh, stop_before_pixels=stop_before_pixels, specific_tags=specific_tags)
    try:
        header = read_header(path, fh)
    except NotSupported as exc:
        raise InputFileError(f"Deflated dataset not readable ({exc})", path) from None
    src = header._source
    if stop_before_pixels:
        body = bytes(src.data[:header.pixel_offset])
    else:
        limit = header.pixel_offset + 12 + implied_pixel_bytes(header.dataset, path) + TRAILING_SLACK
        try:
            src.inflate_rest(limit)
        except LimitError as exc:
            raise LimitError(str(exc), path) from None
        except Malformed as exc:
            raise InputFileError(f"not a readable DICOM file: {exc}; copy it again from its source", path) from None
        body = bytes(src.data)
    return _file_dataset(path, header.preamble_and_meta, body, specific_tags)


def _file_dataset(path: str | Path, pre: bytes, body: bytes, specific_tags: list[Any] | None) -> Any:
    """A pydicom FileDataset from preamble+meta bytes and an inflated Explicit VR LE body."""
    from io import BytesIO

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.filereader import read_dataset

    meta = FileMetaDataset(read_dataset(BytesIO(pre[132:]), is_implicit_VR=False, is_little_endian=True))
    if specific_tags is not None:
        from pydicom.tag import Tag

        specific_tags = [Tag(t) for t in specific_tags] + [0x00080005]
    ds = read_dataset(BytesIO(body), is_implicit_VR=False, is_little_endian=True, specific_tags=specific_tags)
    out = FileDataset(str(path), ds, preamble=pre[:128], file_meta=meta, is_implicit_VR=False,
                      is_little_endian=True)
    return out


def check_inflated_size(path: str | Path) -> None:
    """Refuse a Deflated file whose body inflates past what its header implies (a bomb);
    nothing for other files. For readers that inflate on their own (GDCM via SimpleITK).

    Raises
    ------
    LimitError, InputFileError
    """
    with open(path, "rb") as fh:
        try:
            header = read_header(path, fh)
        except NotSupported:
            return
        if not header.deflated:
            return
        limit = header.pixel_offset + 12 + implied_pixel_bytes(header.dataset, path) + TRAILING_SLACK
        try:
            header._source.inflate_rest(limit)
        except LimitError as exc:
            raise LimitError(str(exc), path) from None
        except Malformed as exc:
            raise InputFileError(f"not a readable DICOM file: {exc}; copy it again from its source", path) from None


def check_dicom_folder(folder: str | Path) -> None:
    """Before a reader that inflates on its own (GDCM via SimpleITK) reads a DICOM folder:
    every file in it a regular file inside it, no deflate bomb among them, and the first
    image's Rows x Columns x files within ``--max-voxels``.

    Raises
    ------
    LimitError, InputFileError
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_file() or p.is_symlink()))
    rows = cols = 0
    for p in files:
        check_file(p, root=folder, what="DICOM file")
        check_inflated_size(p)
        if not rows:
            try:
                ds = read_header(p).dataset
                rows, cols = int(value(ds, 0x00280010, 0) or 0), int(value(ds, 0x00280011, 0) or 0)
            except (NotSupported, Malformed, InputFileError, ValueError, TypeError):
                rows = cols = 0
    check_voxels(rows * cols * len(files), "Rows x Columns x files", folder)


# ------------------------------------------------------------- values
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
    if vr in ("US", "SS", "UL", "SL"):
        fmt = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}[vr]
        n = len(raw) // struct.calcsize(fmt)
        vals = list(struct.unpack(f"<{n}{fmt}", raw[:n * struct.calcsize(fmt)]))
        return None if n == 0 else vals[0] if n == 1 else vals
    if vr in ("OB", "OW", "UN", "OF", "OD", "OL", "OV", "FL", "FD", "AT", "SV", "UV"):
        raise NotSupported(f"VR {vr}")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise NotSupported("non-ASCII text") from None
    if vr == "UI":
        text = text.rstrip("\x00 ")
    elif vr in ("LT", "ST", "UT"):
        return text.rstrip(" \x00")
    else:
        text = text.strip(" \x00") if vr in ("IS", "DS", "DA", "TM", "DT", "CS", "AS") else text.rstrip(" \x00")
    if "\\" in text:
        raise NotSupported("multi-valued")
    try:
        if vr == "IS":
            return int(text) if text else None
        if vr == "DS":
            return float(text) if text else None
    except ValueError:
        raise Malformed(f"{vr} value {text[:20]!r} is not a number") from None
    return text


__all__ = [
    "DEFLATED", "EXPLICIT_LE", "EXPLICIT_LE_SYNTAXES", "ITEM", "ITEM_END", "LONG_VRS", "PIXEL_DATA", "SEQ_END",
    "Header", "Malformed", "NotSupported", "RawDataset", "dcmread", "element_at", "find_element",
    "check_dicom_folder", "check_inflated_size", "implied_pixel_bytes", "iter_elements", "iter_items", "read_header", "skip_sequence", "value",
]
