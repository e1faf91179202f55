"""NRRD headers with non-ASCII text (UTF-8), read and written through slicerio / pynrrd.

3D Slicer writes segment names, IDs and tags into the ``.seg.nrrd`` header as UTF-8
bytes (``Segment0_Name:=Läsion``). pynrrd 1.x decodes header lines as ASCII and drops
every other byte (``Lsion``), and encodes them as ASCII on writing (``UnicodeEncodeError``).
slicerio uses pynrrd for both. This module keeps slicerio for what it does well (the
Slicer segmentation fields) and handles the text itself:

* reading: the header lines are decoded as UTF-8 (Latin-1 when they are not valid
  UTF-8: older Windows builds), parsed with ``nrrd.read_header``, the voxels read with
  ``nrrd.read_data``; slicerio then converts that header, handed to it in place of its own
  ``nrrd.read`` call (under a lock, for the duration of one call);
* writing: every character from U+007F up is replaced by an ASCII token before slicerio
  and pynrrd format the header, and the tokens are turned into UTF-8 bytes as the header
  lines pass to the file.
"""

from __future__ import annotations

import io
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

#: Longest NRRD header read (bytes); Slicer headers with hundreds of segments stay well below.
MAX_HEADER_BYTES = 16 * 1024 * 1024

_LOCK = threading.Lock()
_TOKEN = re.compile(rb"\x7f([0-9a-f]{1,6})\x7f")


class NrrdHeaderError(ValueError):
    """The NRRD header cannot be read (message says why)."""


def decode_header_line(raw: bytes) -> str:
    """One header line as text: UTF-8 when valid, else Latin-1 (never drops a byte)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_header(fh: BinaryIO) -> tuple[dict[str, Any], int]:
    """Parse the header at the start of ``fh`` (binary), text decoded as UTF-8.

    Returns
    -------
    (header, size)
        pynrrd's header dict and the header's length in bytes (the attached data start).

    Raises
    ------
    NrrdHeaderError
        Not a NRRD header, longer than :data:`MAX_HEADER_BYTES`, or a field pynrrd refuses.
    """
    import nrrd

    lines: list[str] = []
    size = 0
    while True:
        raw = fh.readline(MAX_HEADER_BYTES + 1)
        size += len(raw)
        if size > MAX_HEADER_BYTES:
            raise NrrdHeaderError(f"NRRD header longer than {MAX_HEADER_BYTES} bytes")
        lines.append(decode_header_line(raw))
        if not raw or raw.strip() == b"":
            break
    try:
        header = nrrd.read_header(lines)
    except (nrrd.NRRDError, ValueError, IndexError, StopIteration) as exc:
        raise NrrdHeaderError(f"not a readable NRRD header ({exc})") from None
    return header, size


#: Reads the voxels after the header: ``(header, file at the data, path) -> array``.
DataReader = Callable[[dict[str, Any], BinaryIO, str], np.ndarray]


def read_nrrd(path: str | Path, read_data: DataReader | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """``nrrd.read`` (Fortran index order), with the header text decoded as UTF-8.

    ``read_data`` reads the voxels instead of ``nrrd.read_data`` (which it must equal),
    e.g. :func:`~.nrrd_data.read_nrrd_data`, which inflates into a preallocated array.
    """
    import nrrd

    with open(path, "rb") as fh:
        header, size = read_header(fh)
        fh.seek(size)
        data = (read_data or nrrd.read_data)(header, fh, str(path))
    return data, header


@contextmanager
def _slicerio_reads(voxels: np.ndarray | None, header: dict[str, Any]) -> Iterator[None]:
    """Make slicerio's ``nrrd.read`` / ``nrrd.read_header`` return what we already read."""
    import nrrd

    with _LOCK:
        saved = nrrd.read, nrrd.read_header
        nrrd.read = lambda *_a, **_k: (voxels, header)
        nrrd.read_header = lambda *_a, **_k: header
        try:
            yield
        finally:
            nrrd.read, nrrd.read_header = saved


def read_segmentation(path: str | Path, read_data: DataReader | None = None) -> dict[str, Any]:
    """``slicerio.read_segmentation`` with UTF-8 header text (see module docstring);
    ``read_data`` as for :func:`read_nrrd`."""
    from AdaptiveBrushDicomLib.io.slicerio_import import import_slicerio

    slicerio = import_slicerio()

    voxels, header = read_nrrd(path, read_data)
    with _slicerio_reads(voxels, header):
        segmentation: dict[str, Any] = slicerio.read_segmentation(str(path))  # slicerio is untyped
    return segmentation


# ------------------------------------------------------------------------- writing
def _tokenise(value: Any) -> Any:
    """Strings (recursively in dicts / lists) with characters >= U+007F as ASCII tokens."""
    if isinstance(value, str):
        if all(ord(c) < 0x7F for c in value):
            return value
        return "".join(c if ord(c) < 0x7F else f"\x7f{ord(c):x}\x7f" for c in value)
    if isinstance(value, dict):
        return {_tokenise(k): _tokenise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_tokenise(v) for v in value)
    return value


def _untokenise(raw: bytes) -> bytes:
    return _TOKEN.sub(lambda m: chr(int(m.group(1), 16)).encode("utf-8"), raw)


class _Utf8HeaderWriter(io.RawIOBase):
    """File wrapper: header lines (up to the first empty line) get their tokens replaced
    by UTF-8 bytes; the data after them pass unchanged, or, with ``gzip_later``, are
    dropped: the header's ``encoding: raw`` line is written as ``encoding: gzip`` and the
    caller appends the gzip data itself (:attr:`header_ok` says whether the header looked
    as expected: one line per write, one ``encoding: raw`` line, then an empty line)."""

    def __init__(self, target: BinaryIO, gzip_later: bool = False) -> None:
        super().__init__()
        self._target = target
        self._in_header = True
        self._gzip_later = gzip_later
        self._encoding_lines = 0

    @property
    def header_ok(self) -> bool:
        return not self._in_header and self._encoding_lines == 1

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        if self._in_header:
            if data == b"\n":
                self._in_header = False
            elif self._gzip_later and data.startswith(b"encoding:"):
                self._encoding_lines += 1
                if data == b"encoding: raw\n":
                    data = b"encoding: gzip\n"
            self._target.write(_untokenise(data))
        elif not self._gzip_later:
            self._target.write(data)
        return len(data)


def write_segmentation(path: str | Path, segmentation: dict[str, Any], compression_level: int = 9) -> None:
    """``slicerio.write_segmentation`` that writes non-ASCII text as UTF-8 (as Slicer does)
    and deflates gzip-encoded voxels with :func:`~.deflate.write_gzip` (zlib-ng when
    installed, in parallel parts; the same gzip format pynrrd writes, read by pynrrd,
    slicerio, ITK/Slicer). slicerio and pynrrd still write the header: they are asked for
    raw encoding and the header's encoding line is changed to gzip; should that header not
    look as expected (another pynrrd), the file is written again by pynrrd alone.

    Raises
    ------
    ValueError
        From slicerio: no voxels, or not 3 or 4 dimensions.
    OSError
        The file cannot be written.
    """
    from AdaptiveBrushDicomLib.io.slicerio_import import import_slicerio

    slicerio = import_slicerio()

    seg = dict(segmentation)
    seg["segments"] = [_tokenise(s) for s in segmentation.get("segments", [])]
    voxels = segmentation.get("voxels")
    gzip_later = str(seg.get("encoding", "gzip")).lower() in ("gzip", "gz") and isinstance(voxels, np.ndarray)
    if gzip_later:
        seg["encoding"] = "raw"
        with open(path, "wb") as fh:
            wrapper = _Utf8HeaderWriter(fh, gzip_later=True)
            slicerio.write_segmentation(wrapper, seg, compression_level=compression_level)
            if wrapper.header_ok:
                from AdaptiveBrushDicomLib.io.deflate import write_gzip

                # pynrrd writes the voxels in Fortran index order: the C order of the transpose
                write_gzip(fh, np.ascontiguousarray(np.asarray(voxels).T), compression_level)
                return
        seg["encoding"] = segmentation.get("encoding", "gzip")
    with open(path, "wb") as fh:
        slicerio.write_segmentation(_Utf8HeaderWriter(fh), seg, compression_level=compression_level)
