"""Files that are cut short or are no DICOM file at all, in words a user can act on.

A file copied or downloaded only in part ends inside its header, its PixelData or its
Deflated stream; an empty file or another format has no DICOM preamble. pydicom reads the
first silently as far as it goes (the error then surfaces far away, e.g. "the number of
bytes of pixel data is less than expected") and refuses the second with advice for
programmers ("Use force=True"). These messages name the file, the element (tag and
keyword) and what to do.

* :func:`check_part10`: before reading, refuse an empty, too short or non-DICOM file;
  :func:`check_series_file`: the same for an empty or too short file in a series folder
  (from the stat already taken);
* :func:`truncated_message`: the walker's :class:`~.elements.Truncated` in words, for an
  :class:`~.errors.IncompleteFileError`;
* :func:`pixel_data_message`: PixelData shorter than its declared length (bytes and
  frames there and expected).

The checks cost one comparison where the data is read anyway; nothing here reads the
pixel data again.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from AdaptiveBrushDicomLib.dicom.walker.elements import PIXEL_DATA, UNDEFINED, Buffer, RawDataset, Truncated
from AdaptiveBrushDicomLib.dicom.walker.values import value
from AdaptiveBrushDicomLib.errors import COPY_AGAIN, IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io.limits import check_file
#: (Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsAllocated) of a header.
Dimensions = tuple[int, int, int, int, int]


def not_part10_reason(head: bytes) -> str | None:
    """Why the file whose first bytes are ``head`` is no DICOM Part-10 file (None: it may be one).

    ``head`` is what a read of at least 132 bytes returned (shorter: the file is that short).
    """
    if not head:
        return "is empty (0 bytes)"
    if len(head) < 132:
        return f"is only {len(head)} bytes long, too short for a DICOM file (its preamble and 'DICM' take 132)"
    if head[128:132] != b"DICM":
        return "has no DICOM preamble or File Meta header ('DICM' at byte 128), so it is not a DICOM file"
    return None


def check_part10(path: str | Path, *, what: str = "DICOM file") -> os.stat_result:
    """Refuse anything but a regular file that starts as a DICOM Part-10 file does.

    Reads the first 132 bytes (one open, O(1)); the reader opens the file again.

    Returns
    -------
    os.stat_result
        Of the file (from :func:`~.limits.check_file`).

    Raises
    ------
    IncompleteFileError
        An empty file, or one too short to hold a preamble.
    InputFileError
        No preamble and "DICM" (another format, or a bare dataset).
    LimitError
        Not a regular file (:func:`~.limits.check_file`).
    """
    st = check_file(path, what=what)
    with open(path, "rb") as fh:
        head = fh.read(132)
    reason = not_part10_reason(head)
    if reason is None:
        return st
    if len(head) < 132:
        raise IncompleteFileError(f"{reason}: it is not a {what}, or it was cut short; {COPY_AGAIN}", path)
    raise InputFileError(f"{reason}; give a {what} (a bare DICOM dataset gets its header with DCMTK's "
                         "`dcmconv IN OUT`)", path)


def check_series_file(path: str | Path, folder: str | Path, st: os.stat_result) -> None:
    """Refuse a file of a DICOM series folder that is empty or too short for DICOM: a slice
    cut short while copying (the folder's reader would skip it, and the series would miss a
    slice). ``st`` is the file's stat (already taken); nothing is read.

    Raises
    ------
    IncompleteFileError
        Fewer than 132 bytes (no room for the preamble and "DICM").
    """
    if st.st_size >= 132:
        return
    size = "is empty (0 bytes)" if st.st_size == 0 else f"is only {st.st_size} bytes long"
    raise IncompleteFileError(f"{size}, too short for a DICOM file, in the series folder {folder}: a slice cut short "
                              f"while copying? {COPY_AGAIN[0].upper() + COPY_AGAIN[1:]}, or remove it", path)


def tag_name(tag: int) -> str:
    """``Keyword (GGGG,EEEE)`` (pydicom's dictionary when importable; only on error paths)."""
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    try:
        from pydicom.datadict import keyword_for_tag

        keyword = keyword_for_tag(tag)
    except Exception:  # noqa: BLE001 - no pydicom, or a tag it does not know: the number alone
        keyword = ""
    return f"{keyword} {text}" if keyword else text


def truncated_message(exc: Truncated) -> str:
    """The walker's :class:`~.elements.Truncated` in one line naming where the file ends
    (for an :class:`~.errors.IncompleteFileError`)."""
    text = f"it ends at {exc.where}, inside {exc.inside}"
    if exc.tag is not None:
        text += f" of {tag_name(exc.tag)}"
    if exc.start:
        text += f" at {exc.start}"
    if exc.sequence is not None:
        text += f", in {tag_name(exc.sequence)}"
    return f"the file is incomplete: {text}; {COPY_AGAIN}"


def walked_dimensions(ds: RawDataset) -> Dimensions | None:
    """(Rows, Columns, NumberOfFrames, SamplesPerPixel, BitsAllocated) of a walked header
    (None when one is not a plain positive integer)."""
    try:
        dims = (value(ds, 0x00280010), value(ds, 0x00280011), value(ds, 0x00280008, 1), value(ds, 0x00280002, 1),
                value(ds, 0x00280100))
    except Exception:  # noqa: BLE001 - NotSupported / Malformed values: the message leaves frames out
        return None
    return _plain(dims)


def _plain(dims: tuple[object, ...]) -> Dimensions | None:
    """``dims`` as five positive ints, or None."""
    out = []
    for v in dims:
        try:
            n = int(str(v).strip())
        except (TypeError, ValueError):
            return None
        if n <= 0:
            return None
        out.append(n)
    return out[0], out[1], out[2], out[3], out[4]


def pydicom_dimensions(ds: object) -> Dimensions | None:
    """:func:`walked_dimensions` of a pydicom dataset."""
    try:
        return _plain(tuple(getattr(ds, k, d) for k, d in (("Rows", None), ("Columns", None), ("NumberOfFrames", 1),
                                                             ("SamplesPerPixel", 1), ("BitsAllocated", None))))
    except Exception:  # noqa: BLE001 - pydicom converts lazily: a broken value leaves frames out
        return None


def pixel_data_message(present: int, declared: int, dims: Dimensions | None) -> str:
    """PixelData (7FE0,0010) holds ``present`` of its ``declared`` bytes: the file was cut
    short (for an :class:`~.errors.IncompleteFileError`). With the header's dimensions, the
    message says how many frames are whole."""
    frames = ""
    if dims is not None:
        rows, cols, n, spp, bits = dims
        frame_bytes = rows * cols * spp * bits // 8
        if bits % 8 == 0 and frame_bytes:
            frames = f" ({min(present // frame_bytes, n)} of {n} frames of {rows} rows x {cols} columns x {bits} bits)"
    return (f"the file is incomplete: PixelData (7FE0,0010) ends after {present:,} of its {declared:,} bytes"
            f"{frames}; {COPY_AGAIN}")


def _file_size(fh: BinaryIO) -> int | None:
    """Size of the open file (or buffer) ``fh`` in bytes (None when it cannot be known)."""
    try:
        return os.fstat(fh.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        try:
            here = fh.tell()
            end = fh.seek(0, os.SEEK_END)
            fh.seek(here)
            return end
        except (AttributeError, OSError, ValueError):
            return None


def check_pixel_length(data: Buffer, pos: int, base: int, ds: RawDataset, fh: BinaryIO, path: str | Path) -> None:
    """Refuse a (not Deflated) file that ends before the end of the native PixelData element
    whose header is ``data[pos:pos + 12]`` (``base``: the file offset of ``data[0]``): one
    comparison of its declared length with the file's size, no read of the data.

    Raises
    ------
    IncompleteFileError
        The file ends inside PixelData.
    """
    group, elem = struct.unpack_from("<HH", data, pos)
    if (group << 16 | elem) != PIXEL_DATA or bytes(data[pos + 4:pos + 6]) not in (b"OB", b"OW"):
        return
    length = struct.unpack_from("<I", data, pos + 8)[0]
    size = _file_size(fh)
    if length == UNDEFINED or size is None:
        return
    present = size - (base + pos + 12)
    if present < length:
        raise IncompleteFileError(pixel_data_message(present, length, walked_dimensions(ds)), path)


__all__ = ["COPY_AGAIN", "Dimensions", "check_part10", "check_pixel_length", "check_series_file",
           "not_part10_reason", "pixel_data_message", "pydicom_dimensions", "tag_name", "truncated_message",
           "walked_dimensions"]
