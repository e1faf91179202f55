"""Checks of image and segmentation files before SimpleITK, pynrrd or slicerio reads them.

:func:`check_image` applies the limits of :mod:`.limits` to what an image header
declares: a regular file, the sizes within ``--max-voxels``, a detached NRRD ``data file``
inside the header's folder, gzip/bzip2 data stream-inflated (output discarded) and refused
past what the sizes imply. Refusals are :class:`~.limits.LimitError` or
:class:`~.errors.InputFileError`: one line naming the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

from AdaptiveBrushDicomLib.errors import COPY_AGAIN, IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io.limits import LimitError, check_file, check_voxels, gzip_size_at_most

_NRRD_TYPE_BYTES = {
    "int8": 1, "uint8": 1, "signed char": 1, "uchar": 1, "unsigned char": 1, "int16": 2, "uint16": 2,
    "short": 2, "ushort": 2, "unsigned short": 2, "signed short": 2, "short int": 2, "int32": 4, "uint32": 4,
    "int": 4, "uint": 4, "unsigned int": 4, "signed int": 4, "float": 4, "int64": 8, "uint64": 8,
    "longlong": 8, "ulonglong": 8, "double": 8, "long long": 8, "unsigned long long": 8,
}
#: The most header text read from an NRRD before its blank line.
MAX_NRRD_HEADER_BYTES = 1 << 20


def check_image(path: str | Path, *, inflate: bool = True) -> None:
    """Check an image / segmentation file before SimpleITK or slicerio reads it.

    * a regular file (not a FIFO or device);
    * NRRD (``.nrrd``, ``.nhdr``): the header's sizes within ``--max-voxels``; a detached
      ``data file`` must be a regular file inside the header's folder; gzip/bzip2 data is
      stream-inflated once, discarding output, and refused past what the sizes imply
      (``inflate=False`` leaves that out, for a reader that never inflates past the
      sizes itself: :func:`~.nrrd_data.read_nrrd_data`);
    * any other format: the size SimpleITK reads from the header within ``--max-voxels``.

    Raises
    ------
    LimitError
        Not a regular file, sizes over ``--max-voxels``, a detached data file outside the
        header's folder, or compressed data longer than the sizes imply.
    IncompleteFileError
        An empty NRRD file, or one that ends inside its header.
    InputFileError
        A broken or unsupported NRRD header (not positive sizes, a list of data files),
        or a ``.nrrd`` / ``.nhdr`` that does not start with "NRRD".
    """
    path = Path(path)
    check_file(path, what="image file")
    if path.suffix.lower() in (".nrrd", ".nhdr"):
        _check_nrrd(path, inflate)
        return
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return  # not an image SimpleITK knows: its reader words the error later
    count = 1
    for n in reader.GetSize():
        count *= int(n)
    check_voxels(count * max(1, reader.GetNumberOfComponents()), "the image header's size", path)


def _check_nrrd(path: Path, inflate: bool = True) -> None:
    import nrrd

    with open(path, "rb") as fh:
        head = fh.read(MAX_NRRD_HEADER_BYTES)
    if not head.startswith(b"NRRD"):
        what = "is empty (0 bytes)" if not head else "does not start with 'NRRD' (the magic of every NRRD file)"
        raise IncompleteFileError(f"{what}: it is not a NRRD file, or it was cut short; {COPY_AGAIN}", path) \
            if len(head) < 4 else InputFileError(f"{what}; give a .nrrd / .seg.nrrd file", path)
    end = head.find(b"\n\n")
    crlf = head.find(b"\r\n\r\n")
    if crlf >= 0 and (end < 0 or crlf < end):
        end = crlf + 2  # so that end + 2 is the first data byte, as for "\n\n"
    if end < 0 and path.suffix.lower() == ".nrrd":
        if len(head) >= MAX_NRRD_HEADER_BYTES:
            raise LimitError(f"NRRD header longer than {MAX_NRRD_HEADER_BYTES // 2**20} MiB", path)
        raise IncompleteFileError(f"ends at byte {len(head):,}, inside its NRRD header (no blank line before the "
                                  f"data): the file is incomplete, or not a NRRD file; {COPY_AGAIN}", path)
    text = head[: end if end >= 0 else len(head)].decode("utf-8", errors="replace")
    try:
        header = nrrd.read_header(text.splitlines())
    except Exception as exc:  # pynrrd raises NRRDError, ValueError, KeyError ... for broken headers
        raise InputFileError(f"not a readable NRRD header ({type(exc).__name__}: {exc})", path) from None
    sizes = [int(v) for v in header.get("sizes", [])]
    if not sizes or min(sizes) <= 0:
        raise InputFileError(f"NRRD sizes {sizes} are not positive", path)
    count = 1
    for v in sizes:
        count *= v
    check_voxels(count, "the NRRD header's sizes", path)
    implied = count * _NRRD_TYPE_BYTES.get(str(header.get("type", "")).lower(), 8)
    data_file = header.get("data file") or header.get("datafile")
    if data_file:
        if str(data_file).split()[0] == "LIST" or "%" in str(data_file):
            raise InputFileError("NRRD 'data file' lists are not supported; give one data file", path)
        target = Path(str(data_file))
        target = target if target.is_absolute() else path.parent / target
        check_file(target, root=path.parent, what="NRRD data file")
        offset = 0
    else:
        offset = end + 2 if end >= 0 else 0
        target = path
    encoding = str(header.get("encoding", "raw")).lower()
    if not inflate:
        return
    if encoding in ("gzip", "gz"):
        with open(target, "rb") as fh:
            fh.seek(offset)
            gzip_size_at_most(fh, implied + (1 << 16), target, what="NRRD gzip data")
    elif encoding in ("bzip2", "bz2"):
        _bzip2_size_at_most(target, offset, implied + (1 << 16))


def _bzip2_size_at_most(path: Path, offset: int, limit: int) -> None:
    import bz2

    d = bz2.BZ2Decompressor()
    total = 0
    with open(path, "rb") as fh:
        fh.seek(offset)
        while not d.eof:
            chunk = fh.read(1 << 20) if d.needs_input else b""
            if not chunk and d.needs_input:
                break
            try:
                total += len(d.decompress(chunk, 1 << 22))
            except (OSError, ValueError) as exc:
                raise InputFileError(f"NRRD bzip2 data is corrupt ({exc}); {COPY_AGAIN}", path) from None
            if total > limit:
                raise LimitError(f"NRRD bzip2 data inflates to more than {limit:,} bytes, more than its header "
                                 "implies (a bomb?)", path)

