"""What the index reads of one file: its SHA-256 and the top-level header, without pixels.

Files are read and hashed outside any transaction (in worker processes for big imports:
:func:`parse_outcome` returns a picklable value). Only the top-level elements in
:data:`HEADER_TAGS` are parsed (through the raw walker, :mod:`~AdaptiveBrushDicomLib.dicom.walker`),
so big SEG headers stay cheap; a file whose pixel data ends before its declared length is
refused as truncated.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.core.value_enum import ValueEnum
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS
from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io.digest import sha256_stream
from AdaptiveBrushDicomLib.store.dicom_files import looks_like_dicom
from AdaptiveBrushDicomLib.store.records import SegSummary
from AdaptiveBrushDicomLib.store.seg_records import seg_summary_from_dataset

#: Top-level tags read from every file (SEG sequences included; per-frame groups skipped).
HEADER_TAGS = [
    "PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyDescription", "StudyID",
    "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "Modality", "FrameOfReferenceUID",
    "SOPClassUID", "SOPInstanceUID", "InstanceNumber", "ContentLabel", "ContentDescription", "SegmentationType",
    "ReferencedSeriesSequence", "SegmentSequence",
]

#: Files up to this size are read into memory once (hash + parse); larger ones are hashed
#: in chunks and parsed from disk.
IN_MEMORY_MAX_BYTES = 64 * 1024 * 1024
_TAIL_BYTES = 4096
_TAG_CACHE: dict[str, int] = {}


@dataclass
class ParsedFile:
    """What import keeps of one file (built outside any transaction)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    header: dict[str, Any]
    transfer_syntax_uid: str
    seg: SegSummary | None


class ParseOutcome(ValueEnum):
    """How reading one file for the index ended (:func:`parse_outcome`)."""

    OK = "ok"
    NON_DICOM = "non_dicom"
    ERROR = "error"


class NotDicom(Exception):
    """The file has no DICOM preamble or an unparseable header: skipped, not an error."""


class BadDicom(Exception):
    """A DICOM file the index cannot take (truncated, no SOPInstanceUID...).

    Parameters
    ----------
    reason : str
        What is wrong and what to do, for the import report.
    uid : str, optional
        The file's SOPInstanceUID when it was read.
    """

    def __init__(self, reason: str, uid: str | None = None) -> None:
        super().__init__(reason)
        self.uid = uid


def header_text(ds: Any, name: str) -> str:
    """Top-level text value of ``name`` ("" if absent), decoding plain ASCII values straight
    from the raw element (pydicom's keyword lookup and value conversion dominate import time)."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = _TAG_CACHE.get(name)
    if tag is None:
        tag = _TAG_CACHE[name] = int(tag_for_keyword(name))  # type: ignore[arg-type]
    elem = ds.get_item(tag)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if raw is None:
            return ""
        if isinstance(raw, bytes) and raw.isascii():
            return raw.decode("ascii").strip("\x00 ").strip()
        elem = ds[tag]  # non-ASCII text: let pydicom apply SpecificCharacterSet
    value = elem.value
    return "" if value is None else str(value).strip()


def _pixel_data_truncated(head: bytes, offset: int, total: int, tail: bytes, explicit_vr: bool) -> bool:
    """True if the (7FE0,xxxx) element whose first bytes ``head`` start at ``offset`` runs past
    ``total`` bytes (little endian). ``tail`` = the last bytes of the file, where an
    encapsulated pixel data element must end with its sequence delimitation item."""
    if offset >= total:
        return False  # no pixel data at all (SR, headers only...)
    if len(head) < 8:
        return True
    if head[0:2] != b"\xe0\x7f":
        return False  # not a pixel data element: nothing to check
    if explicit_vr and head[4:6] in walker.LONG_VRS:
        if len(head) < 12:
            return True
        length, start = struct.unpack("<I", head[8:12])[0], offset + 12
    elif explicit_vr:
        length, start = struct.unpack("<H", head[6:8])[0], offset + 8
    else:
        length, start = struct.unpack("<I", head[4:8])[0], offset + 8
    if length == 0xFFFFFFFF:  # encapsulated
        return b"\xfe\xff\xdd\xe0" not in tail
    return bool(start + length > total)


def parse_file(path: Path) -> ParsedFile:
    """Read, hash and parse one file.

    Raises
    ------
    NotDicom
        No DICOM preamble or an unparseable header.
    BadDicom
        A DICOM file we cannot index (truncated, no SOPInstanceUID...).
    OSError
        The file cannot be read.
    """
    st = path.stat()
    with open(path, "rb") as fh:
        if st.st_size <= IN_MEMORY_MAX_BYTES:
            data = fh.read()
            if not looks_like_dicom(path, data[:132]):
                raise NotDicom()
            digest = hashlib.sha256(data).hexdigest()
            return _parse_open(path, st, io.BytesIO(data), len(data), digest)
        if not looks_like_dicom(path, fh.read(132)):
            raise NotDicom()
        fh.seek(0)
        digest = sha256_stream(fh)
        fh.seek(0)
        return _parse_open(path, st, fh, st.st_size, digest)


def _read_header(path: Path, fp: Any) -> Any:
    """The :data:`HEADER_TAGS` of the open file ``fp`` (a pydicom Dataset).

    Raises
    ------
    BadDicom
        The header cannot be parsed (corrupt Deflated data, a deflate bomb, truncated...).
    """
    from pydicom.errors import InvalidDicomError

    try:
        return walker.dcmread(path, fh=fp, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except InputFileError as exc:  # the walker's: corrupt Deflated data, a deflate bomb
        raise BadDicom(exc.message) from None
    except InvalidDicomError as exc:
        raise BadDicom(f"not a valid DICOM file ({exc})") from None
    except Exception as exc:  # EOFError, struct/zlib errors, ValueError on truncated files
        raise BadDicom(f"truncated or corrupt DICOM header ({type(exc).__name__}: {exc}); "
                       "copy the file again from its source") from None


def _check_pixel_data(fp: Any, ts: str, end_of_header: int, total: int, uid: str) -> None:
    """Refuse a little-endian file whose pixel data ends before its declared length.

    Raises
    ------
    BadDicom
        The pixel data is truncated. An unknown transfer syntax is not checked.
    """
    try:
        from pydicom.uid import UID

        tsu = UID(ts) if ts else None
        deflated = tsu is not None and tsu.is_deflated
        if tsu is not None and not deflated and tsu.is_little_endian and end_of_header < total:
            fp.seek(end_of_header)
            head = fp.read(12)
            fp.seek(max(end_of_header, total - _TAIL_BYTES))
            tail = fp.read()
            if _pixel_data_truncated(head, end_of_header, total, tail, tsu.is_implicit_VR is False):
                raise BadDicom("truncated: the pixel data ends before its declared length; "
                               "copy the file again from its source", uid)
    except BadDicom:
        raise
    except Exception:  # unknown transfer syntax: keep the header-level check only
        pass


def _parse_open(path: Path, st: os.stat_result, fp: Any, total: int, digest: str) -> ParsedFile:
    """Parse the header from the open binary file object ``fp`` (``total`` bytes long).

    Raises
    ------
    BadDicom
        The header cannot be parsed, has no SOP Instance / Study / Series UID, or the pixel
        data is truncated.
    """
    ds = _read_header(path, fp)
    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    uid = header_text(ds, "SOPInstanceUID") or str(getattr(meta, "MediaStorageSOPInstanceUID", "") or "")
    end_of_header = fp.tell()
    if not uid:
        if end_of_header >= total:
            raise BadDicom("truncated: the header ends before SOPInstanceUID (0008,0018); "
                           "copy the file again from its source")
        raise BadDicom("no SOPInstanceUID (0008,0018); the file cannot be identified, fix or remove it")
    if not header_text(ds, "SeriesInstanceUID") or not header_text(ds, "StudyInstanceUID"):
        raise BadDicom("no StudyInstanceUID (0020,000D) or SeriesInstanceUID (0020,000E); fix or remove it", uid)
    _check_pixel_data(fp, ts, end_of_header, total, uid)
    header = {name: header_text(ds, name) for name in HEADER_TAGS
              if name not in ("ReferencedSeriesSequence", "SegmentSequence")}
    header["SOPInstanceUID"] = uid
    seg = None
    if header["SOPClassUID"] in SEG_SOP_CLASS_UIDS or header["Modality"].upper() == "SEG":
        seg = seg_summary_from_dataset(ds)
    return ParsedFile(str(path.resolve()), st.st_size, st.st_mtime_ns, digest, header, ts, seg)


def parse_outcome(path: Path) -> tuple[ParseOutcome, Any]:
    """:func:`parse_file` with its outcome as a picklable value (for worker processes).

    Returns
    -------
    (ParseOutcome.OK, ParsedFile), (ParseOutcome.NON_DICOM, None) or
    (ParseOutcome.ERROR, (reason, uid or None)).
    """
    try:
        return ParseOutcome.OK, parse_file(path)
    except NotDicom:
        return ParseOutcome.NON_DICOM, None
    except BadDicom as exc:
        return ParseOutcome.ERROR, (str(exc), exc.uid)
    except OSError as exc:
        return ParseOutcome.ERROR, (f"cannot read ({exc.strerror or exc})", None)
