"""Deflate: which zlib does it, and deflating large data in parallel parts.

* **Backend.** zlib-ng (``pip install zlib-ng``, the optional extra ``fast``) writes and
  reads the same format as the standard ``zlib`` module, 2-3x faster at the same level.
  It is used when installed; the environment variable ``ABDICOM_ZLIB=stdlib`` forces the
  standard ``zlib`` (what a plain ``pip install`` or Slicer's Python has), so the
  benchmark measures both in one run. zlib-ng is not a requirement: Slicer users install
  into Slicer's Python, and the default install is plain CPython.
* **Parallel parts** (as pigz does it): the data is cut into contiguous parts, each
  deflated by its own compressor in its own thread (zlib and zlib-ng release the GIL while
  they compress). Every part but the last ends with a sync flush (an empty stored block:
  byte-aligned, not final), the last one with the final block, so the concatenation is
  one valid raw deflate stream that any inflater reads. A part starts without the
  previous part's 32 KiB window, which costs a few bytes per part boundary.
* **gzip** (RFC 1952, one member) of such a stream, for the ``.seg.nrrd`` files we write.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from typing import Any, BinaryIO, Sequence

__all__ = ["BACKEND", "THREADS", "deflate_parallel", "raw_inflater", "write_gzip", "zlib_module"]


def zlib_module() -> Any:
    """``zlib_ng.zlib_ng`` when installed, else the standard ``zlib``; the environment
    variable ABDICOM_ZLIB=stdlib forces the standard ``zlib`` (both have the same API)."""
    if os.environ.get("ABDICOM_ZLIB", "").lower() != "stdlib":
        try:
            from zlib_ng import zlib_ng

            return zlib_ng
        except ImportError:  # pragma: no cover - depends on the environment
            pass
    return zlib



def raw_inflater() -> Any:
    """A decompressor of a raw deflate stream (no zlib or gzip wrapper), from
    :func:`zlib_module` as it is now (the environment is read on each call)."""
    return zlib_module().decompressobj(-zlib.MAX_WBITS)

_ZLIB: Any = zlib_module()
#: Name of the module that deflates (``zlib_ng.zlib_ng`` or ``zlib``).
BACKEND: str = _ZLIB.__name__

#: Threads deflating parts at once (ABDICOM_DEFLATE_THREADS, default 2, at most the CPUs).
THREADS = max(1, min(int(os.environ.get("ABDICOM_DEFLATE_THREADS", "2")), os.cpu_count() or 1))

#: Below this many bytes per part, threads cost more than they save.
MIN_PART_BYTES = 512 << 10


def _deflate_part(pieces: Sequence[Any], level: int, last: bool) -> bytes:
    comp = _ZLIB.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(p) for p in pieces]
    out.append(comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(out)


def deflate_parallel(pieces: Sequence[Any], level: int, threads: int | None = None) -> list[bytes]:
    """``pieces`` (buffers: bytes, memoryviews) as one raw deflate stream (no zlib or gzip
    wrapper), final block included, returned as consecutive parts to write in order.

    Parameters
    ----------
    pieces : the data, in order; each piece goes whole into one part.
    level : zlib compression level (0-9).
    threads : parts deflated at once (default :data:`THREADS`); fewer when there are fewer
        than 4 pieces per part or less than :data:`MIN_PART_BYTES` per part. The first
        parts run in threads started per call (nothing outlives the call), the last one in
        the calling thread.

    Raises
    ------
    ValueError
        A level out of range (from the compressor; raised in the calling thread whichever
        thread met it).
    """
    total = sum(memoryview(p).nbytes for p in pieces)
    n = max(1, min(THREADS if threads is None else threads, len(pieces) // 4, total // MIN_PART_BYTES))
    if n == 1:
        return [_deflate_part(pieces, level, True)]
    bounds = [round(i * len(pieces) / n) for i in range(n + 1)]
    parts = [pieces[bounds[i]:bounds[i + 1]] for i in range(n)]
    out: list[bytes] = [b""] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            out[i] = _deflate_part(parts[i], level, False)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,), name="abdicom-deflate") for i in range(n - 1)]
    for t in workers:
        t.start()
    try:
        out[-1] = _deflate_part(parts[-1], level, True)
    finally:
        for t in workers:
            t.join()
    if errors:
        raise errors[0]
    return out


#: Bytes per piece when one buffer is cut up for :func:`write_gzip`.
GZIP_PIECE = 256 << 10


def write_gzip(fh: BinaryIO, data: Any, level: int, threads: int | None = None) -> int:
    """Write ``data`` (a buffer) to ``fh`` as one gzip member (RFC 1952: no file name, no
    modification time, so equal data gives equal bytes), deflated with
    :func:`deflate_parallel`.

    Returns
    -------
    int
        Bytes written.

    Raises
    ------
    ValueError
        A level out of range (from the compressor).
    """
    view = memoryview(data).cast("B")
    pieces = [view[i:i + GZIP_PIECE] for i in range(0, len(view), GZIP_PIECE)] or [view]
    # XFL 2 = slowest/best, 4 = fastest, 0 otherwise; OS 255 = unknown
    xfl = 2 if level >= 9 else 4 if level == 1 else 0
    head = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + bytes((xfl, 255))
    fh.write(head)
    size = len(head)
    for part in deflate_parallel(pieces, level, threads):
        fh.write(part)
        size += len(part)
    fh.write(struct.pack("<II", zlib.crc32(view) & 0xFFFFFFFF, len(view) & 0xFFFFFFFF))
    return size + 8
