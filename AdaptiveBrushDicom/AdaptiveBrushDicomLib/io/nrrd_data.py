"""The voxels of a NRRD file read straight into their array (``.seg.nrrd`` input).

pynrrd's ``nrrd.read_data`` reads the whole compressed data, inflates it into one
``bytes`` object and appends that to a ``bytearray``: two transient copies of the voxels
besides the compressed bytes (on a 512x512x300 labelmap 150 MB on top of the 75 MB
result). :func:`read_nrrd_data` returns the same array (dtype, shape, Fortran index order,
values) with one allocation, and is the gzip-bomb check too; :mod:`.volumes` reads every
``.seg.nrrd`` with it. Tested against ``nrrd.read_data`` on corpus files
(``Testing/Python/test_nrrd_data.py``).
"""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np

from AdaptiveBrushDicomLib.errors import COPY_AGAIN, IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io import image_limits, limits
from AdaptiveBrushDicomLib.io.deflate import zlib_module

__all__ = ["read_nrrd_data"]

#: Largest piece inflated per call while reading a ``.seg.nrrd``'s gzip data into its array.
_INFLATE_PIECE = 256 << 10


def read_nrrd_data(header: dict[str, Any], fh: BinaryIO, path: str) -> np.ndarray:
    """The voxels of a NRRD file, read straight into their array: what ``nrrd.read_data``
    returns (Fortran index order), without its copies.

    pynrrd reads the whole compressed data, inflates it into one ``bytes`` object and
    appends that to a ``bytearray``: two transient copies of the voxels besides the
    compressed bytes. Here the array is allocated once from the header's sizes and type,
    and gzip data is inflated into it piece by piece (at most :data:`_INFLATE_PIECE` at a
    time, never far past what the sizes imply: this is also the gzip-bomb check of
    :func:`~.image_limits.check_image`, with its limits and messages); raw data is read into it
    directly. Anything else (a detached data file, line or byte skips, ASCII or bzip2
    encoding) is checked in full by :func:`~.image_limits.check_image` and read by
    ``nrrd.read_data``.

    Raises
    ------
    IncompleteFileError
        The file ends before the data does (raw data short, or a gzip stream cut short).
    nrrd.NRRDError
        A whole gzip stream shorter or (within the limit) longer than the header's sizes and type
        say, as pynrrd words it.
    LimitError
        The gzip data inflates to more than its header implies plus 64 KiB (a gzip bomb).
    InputFileError
        The gzip data is corrupt.
    """
    import nrrd

    try:  # the same type / endian rules as pynrrd; a private name, so a pynrrd without it
        from nrrd.reader import _determine_datatype  # gets its own reader (below), not an error
    except ImportError:  # pragma: no cover - depends on the installed pynrrd
        _determine_datatype = None
    encoding = header.get("encoding")
    special = ("datafile", "data file", "lineskip", "line skip", "byteskip", "byte skip")
    if encoding not in ("gzip", "gz", "raw") or any(k in header for k in special) or \
            header.get("dimension") != len(header.get("sizes", ())) or _determine_datatype is None:
        if path:  # pynrrd inflates without a cap: the full check first
            image_limits.check_image(path)
        data: np.ndarray = nrrd.read_data(header, fh, path)
        return data
    dtype = np.dtype(_determine_datatype(header))
    sizes = tuple(int(v) for v in header["sizes"])
    nbytes = int(np.prod(sizes, dtype=np.int64)) * dtype.itemsize
    out = np.empty(nbytes, dtype=np.uint8)
    if encoding == "raw":
        got = fh.readinto(out.data)  # type: ignore[attr-defined]  # binary files have readinto
        extra = len(fh.read(1))
        cut = got < nbytes
    else:
        got, extra, complete = _inflate_into(out, fh, path)
        cut = got < nbytes and not complete
    if cut:
        raise IncompleteFileError(
            f"the file is incomplete: its NRRD data ({encoding}) ends after {got:,} of the {nbytes:,} voxel bytes "
            f"its header implies (sizes {' '.join(map(str, sizes))}, type {header.get('type')}); {COPY_AGAIN}", path)
    if got != nbytes or extra:
        found = nbytes + extra if extra else got
        raise nrrd.NRRDError(f"Size of the data does not equal the product of all the dimensions: "
                             f"{nbytes}-{found}={nbytes - found} bytes")
    voxels: np.ndarray = out.view(dtype).reshape(sizes[::-1]).T
    return voxels


def _inflate_into(out: np.ndarray, fh: BinaryIO, path: str) -> tuple[int, int, bool]:
    """Inflate the gzip stream at ``fh``'s position into ``out`` (uint8).

    Returns
    -------
    (written, extra, complete)
        Bytes written into ``out``, bytes the stream holds beyond it (counted, not
        kept, up to 64 KiB), and whether the stream reached its end (False: the file ends
        inside it).

    Raises
    ------
    LimitError
        More than 64 KiB beyond ``out`` (the limit :func:`~.image_limits.check_image` applies).
    InputFileError
        Corrupt data.
    """
    z = zlib_module()
    d = z.decompressobj(z.MAX_WBITS | 16)
    size, pos, extra, slack = len(out), 0, 0, 1 << 16
    view = out.data
    data, end_of_file = b"", False
    while not d.eof:
        if not data and not end_of_file:
            data = fh.read(1 << 20)
            end_of_file = not data
        try:
            piece = d.decompress(data, min(_INFLATE_PIECE, size + slack + 1 - pos - extra))
        except z.error as exc:
            raise InputFileError(f"NRRD gzip data is corrupt ({exc}); {COPY_AGAIN}", path) from None
        room = min(len(piece), size - pos)
        view[pos:pos + room] = piece[:room] if room < len(piece) else piece
        pos += room
        extra += len(piece) - room
        if extra > slack:
            raise limits.LimitError(f"NRRD gzip data inflates to more than {size + slack:,} bytes, more than its "
                                    "header implies (a gzip bomb?)", path)
        data = d.unconsumed_tail
        if not piece and not data and end_of_file:
            break  # truncated stream: what it held is all there is
    return pos, extra, bool(d.eof)
