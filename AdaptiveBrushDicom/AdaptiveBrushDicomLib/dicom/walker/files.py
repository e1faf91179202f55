"""Whole DICOM files: ``pydicom.dcmread`` with a capped inflate, and checks for readers
that inflate on their own (GDCM via SimpleITK).

pydicom would inflate a Deflated body without any limit; :func:`dcmread` inflates it here,
capped by the size its header implies, so a deflate bomb is refused before it grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import struct

from AdaptiveBrushDicomLib.dicom.walker.elements import (
    ITEM, PIXEL_DATA, UNDEFINED, Malformed, NotSupported, Truncated, element_at,
)
from AdaptiveBrushDicomLib.dicom.walker.incomplete import (
    COPY_AGAIN, check_series_file, pixel_data_message, truncated_message, walked_dimensions,
)
from AdaptiveBrushDicomLib.dicom.walker.stream import (
    DEFLATED,
    TRAILING_SLACK,
    _read_meta,
    _Source,
    implied_pixel_bytes,
    read_header,
)
from AdaptiveBrushDicomLib.dicom.walker.values import value
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io.limits import LimitError, check_file, check_voxels


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
        Corrupt Deflated data, or a Deflated dataset the walker does not read.
    pydicom.errors.InvalidDicomError
        As pydicom raises it (and OSError, ...) for the non-Deflated case.
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
    return FileDataset(str(path), ds, preamble=pre[:128], file_meta=meta, is_implicit_VR=False,
                       is_little_endian=True)


def check_inflated_size(path: str | Path) -> None:
    """Refuse a Deflated file whose body inflates past what its header implies (a bomb);
    nothing for other files. For readers that inflate on their own (GDCM via SimpleITK).

    Raises
    ------
    LimitError
        The body inflates past what the header implies.
    InputFileError
        Corrupt Deflated data.
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


def diagnose(path: str | Path) -> None:
    """Why a file has no (whole) PixelData, when the reason is that it was cut short.

    For the error paths of readers that let pydicom read the file (pydicom stops quietly
    where a file ends): walks the header and the pixel data element (native: its length;
    encapsulated: the item headers of its fragments) and raises when the file ends inside
    them or right before PixelData. Returns when the file is whole, or is nothing the
    walker reads (the caller's own error then stands).

    Raises
    ------
    IncompleteFileError
        The file ends inside its header, before or inside its PixelData.
    InputFileError
        Corrupt header or Deflated data.
    """
    with open(path, "rb") as fh:
        try:
            header = read_header(path, fh)
            limit = header.pixel_offset + 12 + implied_pixel_bytes(header.dataset, path) + TRAILING_SLACK
            _pixels_complete(header._source, header.pixel_offset, limit, header.dataset, path)
        except (NotSupported, LimitError):
            return
        except Truncated as exc:
            raise IncompleteFileError(truncated_message(exc), path) from None
        except Malformed:
            return  # broken, not cut short: the caller's error stands


def _pixels_complete(src: _Source, pos: int, limit: int, ds: Any, path: str | Path) -> None:
    """:func:`diagnose` past the header: PixelData at ``pos`` whole.

    Raises
    ------
    IncompleteFileError
        The data ends before or inside PixelData.
    Truncated
        The data ends inside an item header of encapsulated PixelData.
    """
    src.cap = max(src.cap, limit)
    if not src.need(pos + 12):
        if len(src.data) == pos and ds:
            raise IncompleteFileError(f"the file is incomplete: it ends at {src.where(pos)}, before its PixelData "
                                      f"(7FE0,0010); {COPY_AGAIN}", path)
        return
    tag, _vr, start, length = element_at(src.data, pos, len(src.data))
    if tag != PIXEL_DATA:
        return
    if length != UNDEFINED:
        src.read_rest(limit)
        if len(src.data) < start + length:
            raise IncompleteFileError(pixel_data_message(len(src.data) - start, length, walked_dimensions(ds)),
                                      path)
        return
    pos, fragment = start, 0
    while True:  # encapsulated: basic offset table, then one item per fragment, then the delimiter
        if not src.need(pos + 8):
            raise Truncated(src.where(len(src.data)), f"the header of fragment item {fragment + 1}", src.where(pos),
                            PIXEL_DATA)
        group, elem, size = struct.unpack_from("<HHI", src.data, pos)
        if group << 16 | elem != ITEM:  # the sequence delimiter, or something the caller words
            return
        if not src.need(pos + 8 + size):
            raise Truncated(src.where(len(src.data)), f"the {size:,}-byte fragment item {fragment + 1}",
                            src.where(pos), PIXEL_DATA)
        pos, fragment = pos + 8 + size, fragment + 1


def check_dicom_folder(folder: str | Path) -> None:
    """Before a reader that inflates on its own (GDCM via SimpleITK) reads a DICOM folder:
    every file in it a regular file inside it, no deflate bomb among them, and the first
    image's Rows x Columns x files within ``--max-voxels``.

    Raises
    ------
    LimitError
        A deflate bomb, or more voxels than ``--max-voxels``.
    IncompleteFileError
        An empty or too short file, or one that ends inside its header or pixel data.
    InputFileError
        A file that is not a regular file inside ``folder``, or corrupt Deflated data.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_file() or p.is_symlink()))
    rows = cols = 0
    for p in files:
        check_series_file(p, folder, check_file(p, root=folder, what="DICOM file"))
        check_inflated_size(p)
        if not rows:
            try:
                ds = read_header(p).dataset
                rows, cols = int(value(ds, 0x00280010, 0) or 0), int(value(ds, 0x00280011, 0) or 0)
            except (NotSupported, Malformed, InputFileError, ValueError, TypeError):
                rows = cols = 0
    check_voxels(rows * cols * len(files), "Rows x Columns x files", folder)


__all__ = ["check_dicom_folder", "check_inflated_size", "dcmread", "diagnose"]
