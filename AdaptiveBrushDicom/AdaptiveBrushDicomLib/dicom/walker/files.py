"""Whole DICOM files: ``pydicom.dcmread`` with a capped inflate, and checks for readers
that inflate on their own (GDCM via SimpleITK).

pydicom would inflate a Deflated body without any limit; :func:`dcmread` inflates it here,
capped by the size its header implies, so a deflate bomb is refused before it grows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from AdaptiveBrushDicomLib.dicom.walker.elements import Malformed, NotSupported
from AdaptiveBrushDicomLib.dicom.walker.stream import (
    DEFLATED,
    TRAILING_SLACK,
    _read_meta,
    implied_pixel_bytes,
    read_header,
)
from AdaptiveBrushDicomLib.dicom.walker.values import value
from AdaptiveBrushDicomLib.errors import InputFileError
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


def check_dicom_folder(folder: str | Path) -> None:
    """Before a reader that inflates on its own (GDCM via SimpleITK) reads a DICOM folder:
    every file in it a regular file inside it, no deflate bomb among them, and the first
    image's Rows x Columns x files within ``--max-voxels``.

    Raises
    ------
    LimitError
        A deflate bomb, or more voxels than ``--max-voxels``.
    InputFileError
        A file that is not a regular file inside ``folder``, or corrupt Deflated data.
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


__all__ = ["check_dicom_folder", "check_inflated_size", "dcmread"]
