"""Fast LABELMAP SEG writer: a template once per reference series, then each segmentation
only fills in what differs. Built with pydicom alone (what highdicom would build, tested
element by element); an export through this writer never imports highdicom.

Why: ``highdicom.seg.Segmentation`` spends most of its time on work that is the same for
every segmentation of one image series (checking each source image against the IOD,
sorting plane positions, building one DerivationImageSequence per frame), and pydicom's
writer then encodes several thousand small nested datasets one element at a time. In a
migration of 100 trials on one series that work is repeated 100 times.

How:

* **Template** (per reference series, bit depth and the arguments that are constant
  across trials): the LABELMAP header highdicom would build (:mod:`.fast_header`), with
  a per-frame functional group item for every slice. We keep its top-level elements pre-encoded (Explicit VR Little Endian bytes, one entry per
  tag) and each per-frame item pre-encoded, together with the slice (k) it belongs to and
  the byte offset of its DimensionIndexValues.
* **Per segmentation**: the frames present are the non-empty slices (one vectorised
  ``any`` per slice); the PerFrameFunctionalGroupsSequence is the concatenation of the
  template items of those slices in highdicom's frame order, with DimensionIndexValues
  renumbered 1..n (what highdicom writes when empty frames are omitted). The
  SegmentSequence items are built with :mod:`~AdaptiveBrushDicomLib.dicom.segment_dataset`
  (cached per segment; only AlgorithmParameters is re-encoded when just the parameters
  change). Elements are merged in tag order and written with the pixel frames streamed
  straight from the array into the file (or into a zlib stream for Deflated Explicit VR
  Little Endian): no copy of the pixel data is made.

Modules: :mod:`.fast_template` (the per-series template and its cache), :mod:`.fast_header`
(its header, with pydicom), :mod:`.fast_segments` (SegmentSequence items, from
:mod:`~AdaptiveBrushDicomLib.dicom.segment_dataset`), :mod:`.fast_encoding` (byte
encoding); this module assembles and writes one SEG. Any failure of the pydicom APIs these
use makes :func:`~.write.write_seg` write the SEG with highdicom instead.

``Testing/Python/test_fast_path.py`` proves that the result equals the highdicom path
element by element (except UIDs highdicom makes up and dates) and decodes voxel-exactly.
Only LABELMAP with Explicit VR LE or Deflated Explicit VR LE goes this way; BINARY and the
encapsulated syntaxes (RLE, JPEG 2000, JPEG-LS) use the highdicom path.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import NotSupported, _encoder, _item, _sequence, encode_text
from AdaptiveBrushDicomLib.dicom.seg.fast_segments import _background_item, _segment_item
from AdaptiveBrushDicomLib.dicom.seg.fast_template import (
    _CONTRIBUTION_DATETIME, _PFFG_TAG, _SEGMENT_SEQUENCE_TAG, TEMPLATES, TemplateCache, _Template,
)
from AdaptiveBrushDicomLib.io import deflate

# zlib-ng when installed, else the standard zlib (ABDICOM_ZLIB=stdlib forces it): io/deflate.py
_zlib: Any = deflate.zlib_module()

#: Module that deflates (``zlib_ng.zlib_ng`` when installed, else the standard ``zlib``).
DEFLATE_BACKEND = deflate.BACKEND

EXPLICIT_VR_LE = Compression.EXPLICIT.uid
DEFLATED_EXPLICIT_VR_LE = Compression.DEFLATE.uid

#: Set ABDICOM_FAST_PATH=0 to write every SEG with highdicom (the reference path).
ENABLED = os.environ.get("ABDICOM_FAST_PATH", "1") != "0"

#: zlib level of the pixel frames in Deflated Explicit VR Little Endian. 8 rather than
#: zlib's default 6: on labelmaps it gives ~12 % smaller files (smaller than dcmqi's) at
#: about twice the CPU time, which the frames being deflated in parallel pays back.
DEFLATE_LEVEL = 8
#: Threads deflating parts of the pixel data at once (each part is its own deflate
#: stream ending in a sync flush; concatenated they are one valid stream, as pigz does:
#: :func:`~AdaptiveBrushDicomLib.io.deflate.deflate_parallel`). ABDICOM_DEFLATE_THREADS.
DEFLATE_THREADS = deflate.THREADS


def supported(compression_uid: str, binary: bool) -> bool:
    """True when :func:`write_labelmap` can write this case."""
    return ENABLED and not binary and compression_uid in (EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE)


# ------------------------------------------------------------------------ writing
@dataclass
class FastResult:
    sop_class_uid: str
    transfer_syntax_uid: str
    n_frames: int
    #: the dataset as encoded up to the PixelData value (before any deflate): what a check
    #: of the file read back compares its header with (``runs/verify.py``)
    header: bytes = b""


def write_labelmap(
    pixel: np.ndarray,
    segments: Sequence[Any],
    reference: Any,
    out_path: Path,
    *,
    transfer_syntax_uid: str,
    hd_kwargs: dict[str, Any],
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int,
    series_description: str | None,
    content_label: str,
    content_description: str | None,
    content_datetime: datetime | None,
    messages: list[str],
) -> FastResult:
    """Write a LABELMAP SEG of ``pixel`` to ``out_path`` (written directly; the caller renames).

    Parameters
    ----------
    pixel
        SegmentNumbers, array (k, j, i) on ``reference.grid``; uint8 for < 256 segments,
        else uint16.
    segments
        The :class:`~.segment.Segment` of each SegmentNumber 1..N, in order.
    reference
        The :class:`~.reference.ReferenceSeries` the SEG references.
    hd_kwargs
        The keyword arguments of highdicom's ``Segmentation`` that are constant across
        trials (manufacturer, software versions, ...): part of the template's key.
    content_datetime
        Content/instance date and time; ``None`` = now. Given, the file is byte-identical
        for identical inputs.
    messages
        Warnings about segment metadata are appended here.

    Raises
    ------
    NotSupported
        Text this writer does not encode (non-ASCII): use the highdicom path.
    ValueError
        A value highdicom's VR checks refuse (e.g. a LO over 64 characters).
    """
    pixel = _pixel_array(pixel, len(segments))
    _check_text(series_description, content_description, content_label)
    tpl = TEMPLATES.get(reference, 8 if pixel.dtype.itemsize == 1 else 16, hd_kwargs, segments[0])
    enc_element, _ = _encoder(list(tpl.encodings))
    seg_items, seg_messages = _segment_items(segments, reference.study_instance_uid, list(tpl.encodings))
    order, frames = _frames(tpl, pixel)
    per = _per_write_elements(
        tpl, enc_element, order, content_datetime,
        sop_instance_uid=sop_instance_uid, series_instance_uid=series_instance_uid,
        series_number=series_number, series_description=series_description,
        content_label=content_label, content_description=content_description,
    )
    per[_SEGMENT_SEQUENCE_TAG] = _sequence(_SEGMENT_SEQUENCE_TAG, seg_items)
    per[_PFFG_TAG] = _sequence(_PFFG_TAG, frames)
    merged = dict(tpl.elements)
    merged.update(per)
    header = b"".join(merged[t] for t in sorted(merged))
    rows, cols = pixel.shape[1:]
    nbytes = len(order) * rows * cols * pixel.dtype.itemsize
    pad = nbytes % 2
    header += struct.pack("<HH", 0x7FE0, 0x0010) + tpl.pixel_vr + b"\x00\x00" + struct.pack("<I", nbytes + pad)
    _write_file(out_path, tpl, header, pixel, order, pad, sop_instance_uid, transfer_syntax_uid)
    messages.extend(seg_messages)
    return FastResult(tpl.sop_class_uid, transfer_syntax_uid, len(order), header)


def _pixel_array(pixel: np.ndarray, n_segments: int) -> np.ndarray:
    """C-contiguous little-endian uint8 (< 256 segments) or uint16 SegmentNumbers."""
    want = np.uint8 if n_segments < 256 else np.dtype("<u2")
    if pixel.dtype != want:
        pixel = pixel.astype(want)
    return np.ascontiguousarray(pixel)


#: What highdicom accepts as a ContentLabel (``highdicom.valuerep._check_code_string``):
#: 1-16 upper-case letters, digits, spaces or underscores, not starting with a digit,
#: space or underscore, not ending with a space or underscore.
_CODE_STRING = re.compile(r"[A-Z][A-Z0-9_ ]{0,14}[A-Z0-9]$|[A-Z]$")


def _check_text(series_description: str | None, content_description: str | None, content_label: str) -> None:
    """ASCII only, and the VR rules highdicom enforces on these values.

    Raises
    ------
    NotSupported
        Non-ASCII text (the highdicom path writes it with a UTF-8 character set), or a
        value highdicom refuses (a ContentLabel that is not a code string, a LO value over
        64 characters or with a backslash): the highdicom path then reports it.
    """
    for value in (series_description, content_description, content_label):
        if value is not None and not str(value).isascii():
            raise NotSupported("non-ASCII series text")
    if not isinstance(content_label, str) or _CODE_STRING.match(content_label) is None:
        raise NotSupported("ContentLabel is not a code string highdicom accepts")
    for value in (content_description, series_description):
        if value is not None and (len(value) > 64 or "\\" in value):
            raise NotSupported("a LO value highdicom refuses")


def _segment_items(segments: Sequence[Any], study: str, encodings: list[str]) -> tuple[list[bytes], list[str]]:
    """The encoded SegmentSequence items (Background first) and their warnings."""
    items = [_background_item(segments[0], study, encodings)]
    msgs: list[str] = []
    for number, seg in enumerate(segments, start=1):
        data, seg_msgs = _segment_item(seg, number, study, encodings)
        items.append(data)
        msgs.extend(seg_msgs)
    return items, msgs


def _frames(tpl: _Template, pixel: np.ndarray) -> tuple[list[int], list[bytes]]:
    """Slices (k) with a labelled voxel in the template's frame order, and their per-frame
    items with DimensionIndexValues renumbered 1..n (empty frames omitted)."""
    nk = pixel.shape[0]
    present = np.asarray(pixel.reshape(nk, -1).any(axis=1))
    order = [k for k in tpl.frame_k if present[k]]
    frames = []
    for n, k in enumerate(order, start=1):
        b = bytearray(tpl.items[k])
        o = tpl.dim_offset[k]
        b[o:o + 4] = struct.pack("<I", n)
        frames.append(bytes(b))
    return order, frames


def _short_element(tag: int, vr: str, text: str) -> bytes | None:
    """A short ASCII string element encoded as pydicom would (even length: UI padded with
    NULL, others with a space), or ``None`` when pydicom must encode it."""
    if vr not in ("UI", "IS", "LO", "CS", "DA", "TM") or not text.isascii() or len(text) >= 0xFFFF:
        return None
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode() + struct.pack("<H", len(raw)) + raw


def _per_write_elements(tpl: _Template, enc_element: Any, order: list[int], content_datetime: datetime | None,
                        **values: Any) -> dict[int, bytes]:
    """The top-level elements that differ per SEG (UIDs, names, dates, frame count)."""
    from pydicom.dataelem import DataElement

    now = content_datetime or datetime.now()
    date = now.strftime("%Y%m%d")
    tm = now.strftime("%H%M%S") if content_datetime is not None else now.strftime("%H%M%S.%f")
    per: dict[int, bytes] = {}

    def put(tag: int, vr: str, value: Any) -> None:
        encoded = _short_element(tag, vr, "" if value is None else str(value))
        per[tag] = encoded if encoded is not None else enc_element(DataElement(tag, vr, value))

    put(0x00080018, "UI", values["sop_instance_uid"])
    put(0x0020000E, "UI", values["series_instance_uid"])
    put(0x00200011, "IS", int(values["series_number"]))
    if values["series_description"] is not None:
        put(0x0008103E, "LO", values["series_description"])
    put(0x00700080, "CS", values["content_label"])
    put(0x00700081, "LO", values["content_description"])
    for tag, vr, value in ((0x00080012, "DA", date), (0x00080013, "TM", tm), (0x00080023, "DA", date),
                           (0x00080033, "TM", tm)):
        put(tag, vr, value)
    if content_datetime is not None:
        put(0x00080021, "DA", date)
        put(0x00080031, "TM", tm)
    if tpl.contributing is not None:
        # highdicom stamps ContributionDateTime with the template's build time: use this
        # write's time (content_datetime when given, so re-writing gives identical bytes),
        # between the template's pre-encoded parts (the template stays as built)
        stamp = encode_text(_CONTRIBUTION_DATETIME, "DT", date + tm)
        items = [_item(before + (stamp if has else b"") + after) for before, after, has in tpl.contributing_parts]
        per[int(tpl.contributing.tag)] = _sequence(int(tpl.contributing.tag), items)
    put(0x00280008, "IS", len(order))
    # highdicom: "3D" when more than one frame remains and the frames are regularly spaced
    steps = np.diff(order)
    if len(order) > 1 and steps[0] != 0 and np.all(steps == steps[0]):
        put(0x00209311, "CS", "3D")
    return per


def _write_file(out_path: Path, tpl: _Template, header: bytes, pixel: np.ndarray, order: list[int], pad: int,
                sop_instance_uid: str, transfer_syntax_uid: str) -> None:
    """Preamble, file meta, then the dataset: ``header`` and the frames streamed from the
    array (deflated for Deflated Explicit VR Little Endian)."""
    from pydicom.dataelem import DataElement
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_file_meta_info

    meta = FileMetaDataset()
    for tag, vr, value in tpl.file_meta:
        meta.add(DataElement(tag, vr, value))
    meta.add(DataElement(0x00020003, "UI", sop_instance_uid))
    meta.add(DataElement(0x00020010, "UI", transfer_syntax_uid))
    with open(out_path, "wb") as fh:
        fp = DicomFileLike(fh)
        fp.is_little_endian, fp.is_implicit_VR = True, False
        fh.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, meta, enforce_standard=True)
        if transfer_syntax_uid != DEFLATED_EXPLICIT_VR_LE:
            for chunk in _chunks(header, pixel, order, pad):
                fh.write(chunk)
            return
        # Two deflate streams back to back form one valid stream: the header (UIDs, text)
        # at level 9 ends with a sync flush (byte-aligned, not final), the pixel frames
        # follow from a fresh compressor at DEFLATE_LEVEL. Separate blocks let each part get
        # its own Huffman codes: ~5% smaller than one stream, not slower.
        head = _zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        size = 0
        for out in (head.compress(header), head.flush(zlib.Z_SYNC_FLUSH), *_deflate_frames(pixel, order, pad)):
            size += len(out)
            fh.write(out)
        if size % 2:
            fh.write(b"\x00")


def _deflate_frames(pixel: np.ndarray, order: list[int], pad: int) -> list[bytes]:
    """The frames (and the pad byte) as raw deflate data at :data:`DEFLATE_LEVEL`, in up to
    :data:`DEFLATE_THREADS` parts deflated at once."""
    pieces: list[Any] = [memoryview(pixel[k]).cast("B") for k in order]
    if pad:
        pieces.append(b"\x00")
    return deflate.deflate_parallel(pieces, DEFLATE_LEVEL, DEFLATE_THREADS)


def _chunks(header: bytes, pixel: np.ndarray, order: list[int], pad: int) -> Iterator[bytes | memoryview]:
    """The header, then each frame as a zero-copy view of the (C-contiguous) array."""
    yield header
    for k in order:
        yield memoryview(pixel[k]).cast("B")
    if pad:
        yield b"\x00"


__all__ = ["ENABLED", "DEFLATE_LEVEL", "NotSupported", "TEMPLATES", "TemplateCache", "supported", "write_labelmap"]
