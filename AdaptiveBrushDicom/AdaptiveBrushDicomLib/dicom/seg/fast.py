"""Fast LABELMAP SEG writer: highdicom builds a template once per reference series, then
each segmentation only fills in what differs.

Why: ``highdicom.seg.Segmentation`` spends most of its time on work that is the same for
every segmentation of one image series (checking each source image against the IOD,
sorting plane positions, building one DerivationImageSequence per frame), and pydicom's
writer then encodes several thousand small nested datasets one element at a time. In a
migration of 100 trials on one series that work is repeated 100 times.

How:

* **Template** (per reference series, bit depth and the arguments that are constant
  across trials): highdicom builds a LABELMAP Segmentation whose every slice holds one
  labelled voxel, so it contains a per-frame functional group item for every slice. We
  keep its top-level elements pre-encoded (Explicit VR Little Endian bytes, one entry per
  tag) and each per-frame item pre-encoded, together with the slice (k) it belongs to and
  the byte offset of its DimensionIndexValues.
* **Per segmentation**: the frames present are the non-empty slices (one vectorised
  ``any`` per slice); the PerFrameFunctionalGroupsSequence is the concatenation of the
  template items of those slices in highdicom's frame order, with DimensionIndexValues
  renumbered 1..n (what highdicom writes when empty frames are omitted). The
  SegmentSequence items are built with :func:`~.segment_dicom.to_segment_description`
  (cached per segment; only AlgorithmParameters is re-encoded when just the parameters
  change). Elements are merged in tag order and written with the pixel frames streamed
  straight from the array into the file (or into a zlib stream for Deflated Explicit VR
  Little Endian): no copy of the pixel data is made.

``Testing/Python/test_fast_path.py`` proves that the result equals the highdicom path
element by element (except UIDs highdicom makes up and dates) and decodes voxel-exactly.
Only LABELMAP with Explicit VR LE or Deflated Explicit VR LE goes this way; BINARY and the
encapsulated syntaxes (RLE, JPEG 2000, JPEG-LS) use the highdicom path.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

from AdaptiveBrushDicomLib.dicom.compression import Compression

# zlib-ng (optional extra `fast`): the same deflate format, 2-3x faster at the same level.
# ABDICOM_ZLIB=stdlib forces the standard zlib (what a plain pip install or Slicer has), so
# the benchmark measures both in one run.
_zlib: Any = zlib
if os.environ.get("ABDICOM_ZLIB", "").lower() != "stdlib":
    try:
        from zlib_ng import zlib_ng as _zlib
    except ImportError:  # pragma: no cover - depends on the environment
        _zlib = zlib

#: Module that deflates (``zlib_ng`` when installed, else the standard ``zlib``).
DEFLATE_BACKEND = _zlib.__name__

EXPLICIT_VR_LE = Compression.EXPLICIT.uid
DEFLATED_EXPLICIT_VR_LE = Compression.DEFLATE.uid

#: Set ABDICOM_FAST_PATH=0 to write every SEG with highdicom (the reference path).
ENABLED = os.environ.get("ABDICOM_FAST_PATH", "1") != "0"

#: zlib level of the pixel frames in Deflated Explicit VR Little Endian. 8 rather than
#: zlib's default 6: on labelmaps it gives ~12 % smaller files (smaller than dcmqi's) at
#: about twice the CPU time, which the frames being deflated in parallel pays back.
DEFLATE_LEVEL = 8
#: Threads deflating parts of the pixel data at once (each part is its own deflate
#: stream ending in a sync flush; concatenated they are one valid stream, as pigz does).
DEFLATE_THREADS = max(1, min(int(os.environ.get("ABDICOM_DEFLATE_THREADS", "2")), os.cpu_count() or 1))

_PFFG_TAG = 0x52009230
_SEGMENT_SEQUENCE_TAG = 0x00620002
_PIXEL_DATA_TAG = 0x7FE00010
_DIM_INDEX_VALUES = struct.pack("<HH", 0x0020, 0x9157) + b"UL" + struct.pack("<H", 4)
_ITEM = struct.pack("<HHI", 0xFFFE, 0xE000, 0)[:4]
#: Top-level elements set per segmentation (never taken from the template).
_PER_SEG_KEYWORDS = (
    "SOPInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ContentLabel",
    "ContentDescription", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
    "SeriesDate", "SeriesTime", "NumberOfFrames", "SegmentSequence", "PerFrameFunctionalGroupsSequence",
    "PixelData", "DimensionOrganizationType",
)


def supported(compression_uid: str, binary: bool) -> bool:
    """True when :func:`write_labelmap` can write this case."""
    return ENABLED and not binary and compression_uid in (EXPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE)


# ------------------------------------------------------------------------ encoding
def _encoder(encodings):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element, write_dataset

    def element(elem) -> bytes:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_data_element(buf, elem, encodings)
        return buf.getvalue()

    def dataset(ds) -> bytes:
        buf = DicomBytesIO()
        buf.is_little_endian, buf.is_implicit_VR = True, False
        write_dataset(buf, ds, parent_encoding=encodings)
        return buf.getvalue()

    return element, dataset


def _item(body: bytes) -> bytes:
    return b"\xfe\xff\x00\xe0" + struct.pack("<I", len(body)) + body


def _sequence(tag: int, items: Sequence[bytes]) -> bytes:
    value = b"".join(items)
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"SQ\x00\x00" + struct.pack("<I", len(value)) + value


# ------------------------------------------------------------------------ template
@dataclass(frozen=True)
class _Template:
    """Everything of a SEG that is the same for every segmentation of one reference
    series. Immutable once built: a write copies what it changes (see ``contributing``)."""

    elements: Mapping[int, bytes]  # pre-encoded top-level elements (not per segmentation)
    frame_k: tuple[int, ...]  # slice index of each frame, in highdicom's frame order
    items: Mapping[int, bytes]  # encoded PFFG item (with item header) per slice index
    dim_offset: Mapping[int, int]  # offset of the DimensionIndexValues value inside items[k]
    file_meta: tuple[tuple[int, str, Any], ...]  # (tag, VR, value) of the file meta elements
    encodings: tuple[str, ...]
    pixel_vr: bytes
    sop_class_uid: str
    contributing: Any = None  # ContributingEquipmentSequence element: copied per write (its date)


class TemplateCache:
    """Templates of the series written to, keyed by SeriesInstanceUID (+ the geometry and
    source instances, so a different series that reuses a UID never gets a stale template)
    and the arguments constant across trials. Bounded: least recently used entries go first.

    One process-wide instance (:data:`TEMPLATES`) serves :func:`write_labelmap`; tests and
    long-running hosts (Slicer) may call :meth:`clear`.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, _Template] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(reference: Any, bits: int, hd_kwargs: dict[str, Any], algorithm_type: Any) -> tuple:
        grid = reference.grid
        sources = tuple(str(getattr(ds, "SOPInstanceUID", "")) for ds in reference.datasets)
        return (str(reference.series_instance_uid), grid.describe(), sources, bits,
                repr(sorted(hd_kwargs.items())), str(algorithm_type))

    def get(self, reference: Any, bits: int, hd_kwargs: dict[str, Any], first_segment: Any) -> _Template:
        key = self.key(reference, bits, hd_kwargs, first_segment.algorithm_type)
        with self._lock:
            tpl = self._entries.get(key)
            if tpl is not None:
                self._entries.move_to_end(key)
                return tpl
        tpl = _build_template(reference, bits, hd_kwargs, first_segment)
        with self._lock:
            self._entries[key] = tpl
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return tpl

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The process-wide template cache used by :func:`write_labelmap`.
TEMPLATES = TemplateCache()


def _build_template(reference, bits: int, hd_kwargs: dict[str, Any], first_segment) -> _Template:
    import warnings
    from dataclasses import replace

    import highdicom as hd

    from AdaptiveBrushDicomLib.dicom import uids
    from AdaptiveBrushDicomLib.dicom.segment_item import to_segment_description

    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    nk, rows, cols = reference.grid.shape_kji
    # Nothing in the template depends on the frame size except Rows/Columns, so it is
    # built on 2x2 frames (source headers copied with Rows/Columns 2, the reference's
    # own datasets untouched) and Rows/Columns are set back afterwards: the template of
    # a 512x512x300 series then costs kilobytes, not a second volume and its PixelData.
    small = []
    for ds in reference.datasets:
        d = Dataset()
        d.update(ds)
        if hasattr(ds, "file_meta"):
            d.file_meta = ds.file_meta
        d[0x00280010] = DataElement(0x00280010, "US", 2)
        d[0x00280011] = DataElement(0x00280011, "US", 2)
        small.append(d)
    pixel = np.zeros((nk, 2, 2), dtype=np.uint8 if bits == 8 else np.uint16)
    pixel[:, 0, 0] = 1
    n_segments = 1 if bits == 8 else 256
    pixel[0, 0, 0] = n_segments  # highdicom picks 16 bits from the number of segments
    proto = replace(first_segment, algorithm_parameters=None)
    descriptions = [to_segment_description(replace(proto, label=n), n)[0] for n in range(1, n_segments + 1)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = hd.seg.Segmentation(
            source_images=small,
            pixel_array=pixel,
            segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
            segment_descriptions=descriptions,
            series_instance_uid=uids.derive_uid("template-series", reference.series_instance_uid),
            series_number=1,
            sop_instance_uid=uids.derive_uid("template-instance", reference.series_instance_uid),
            instance_number=1,
            transfer_syntax_uid=Compression.EXPLICIT.uid,
            omit_empty_frames=True,
            content_label="TEMPLATE",
            **hd_kwargs,
        )
    seg.Rows, seg.Columns = rows, cols
    # a deterministic DimensionOrganizationUID (highdicom makes up a random one)
    dim_uid = uids.derive_uid("dimension-organization", reference.series_instance_uid)
    for item in seg.DimensionOrganizationSequence:
        item.DimensionOrganizationUID = dim_uid
    for item in seg.DimensionIndexSequence:
        item.DimensionOrganizationUID = dim_uid

    from pydicom.filewriter import correct_ambiguous_vr

    correct_ambiguous_vr(seg, True)  # e.g. PixelPaddingValue 'US or SS', PixelData 'OB or OW'
    charset = seg.get("SpecificCharacterSet")
    from pydicom.charset import convert_encodings

    encodings = convert_encodings(charset if charset else None) if charset else ["iso8859"]
    enc_element, enc_dataset = _encoder(encodings)
    skip = set()
    from pydicom.datadict import tag_for_keyword

    for kw in _PER_SEG_KEYWORDS:
        skip.add(int(tag_for_keyword(kw)))  # type: ignore[arg-type]  # our keywords all exist
    elements = {int(tag): enc_element(seg[tag]) for tag in seg.keys() if int(tag) not in skip}
    if any(tag > _PIXEL_DATA_TAG for tag in elements):
        raise RuntimeError("template has elements after PixelData")

    grid = reference.grid
    frame_k, items, dim_offset = [], {}, {}
    for fg in seg.PerFrameFunctionalGroupsSequence:
        pos = np.array([float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient])
        k = int(round(float(grid.lps_to_index(pos)[2])))
        body = enc_dataset(fg)
        off = body.find(_DIM_INDEX_VALUES)
        if off < 0 or body.find(_DIM_INDEX_VALUES, off + 1) >= 0:
            raise RuntimeError("cannot locate DimensionIndexValues in a per-frame item")
        frame_k.append(k)
        items[k] = _item(body)
        dim_offset[k] = 8 + off + len(_DIM_INDEX_VALUES)
    if sorted(frame_k) != list(range(nk)):
        raise RuntimeError("template frames do not cover every slice once")
    pixel_vr = seg["PixelData"].VR.encode()
    contributing = seg["ContributingEquipmentSequence"] if "ContributingEquipmentSequence" in seg else None
    meta = tuple((int(e.tag), str(e.VR), e.value) for e in seg.file_meta)
    return _Template(MappingProxyType(elements), tuple(frame_k), MappingProxyType(items),
                     MappingProxyType(dim_offset), meta, tuple(encodings), pixel_vr,
                     str(seg.SOPClassUID), contributing)


# ------------------------------------------------------------------------ segments
_ALG_SEQ_TAG = 0x00620007
_ALG_PARAMS_TAG = 0x00660032


@dataclass
class _EncodedSegment:
    """One SegmentSequence item, pre-encoded around its AlgorithmParameters."""

    before: bytes  # item elements with tags < SegmentationAlgorithmIdentificationSequence
    alg_before: bytes  # elements of the algorithm item before AlgorithmParameters
    alg_after: bytes  # ... and after it
    after: bytes  # item elements after the algorithm sequence
    has_alg: bool
    full: bytes  # the whole item (item header included) when there are no parameters
    first_item: Any  # the Dataset (for the Background item, built from segment 1)
    warnings: list[str]
    non_ascii: bool = False  # finalize_dataset asked for UTF-8: the highdicom path writes it


#: (study, charset, repr(segment with a parameter stand-in), number) -> _EncodedSegment
_SEGMENT_CACHE: dict[tuple, _EncodedSegment] = {}
_BACKGROUND_CACHE: dict[tuple, _EncodedSegment] = {}


def _encode_text(tag: int, vr: str, text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b" "
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode() + struct.pack("<H", len(raw)) + raw


def _segment_item(segment, number: int, study: str, encodings: list[str]) -> tuple[bytes, Any, list[str]]:
    """Encoded SegmentSequence item of one segment, as ``to_segment_description`` +
    ``finalize_dataset`` + ``write_segment_private`` make it. Cached; a segment that
    differs only in its algorithm parameters re-encodes just AlgorithmParameters."""
    from dataclasses import replace

    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset, format_parameters, to_segment_description

    params = segment.algorithm_parameters
    text = None if params is None else format_parameters(params, segment.name)
    # a stand-in for the parameters (truthy, like any real parameter set) so that
    # segments differing only in parameters share one cache entry
    proto = replace(segment, algorithm_parameters=None if params is None else {"_": 0})
    key = (study, tuple(encodings), repr(proto), number)
    enc = _SEGMENT_CACHE.get(key)
    if enc is None:
        desc, msgs = to_segment_description(proto, number)
        holder = Dataset()
        holder.StudyInstanceUID = study
        holder.SegmentSequence = [desc]
        padded = [None] * (number - 1) + [proto]
        finalize_dataset(holder, padded)
        write_segment_private(holder, padded)
        item = holder.SegmentSequence[0]
        enc = _split_encoded(item, encodings, list(msgs), "SpecificCharacterSet" in holder)
        if len(_SEGMENT_CACHE) > 4096:
            _SEGMENT_CACHE.clear()
        _SEGMENT_CACHE[key] = enc
    return _assemble(enc, text), enc.first_item, list(enc.warnings)


class NotSupported(Exception):
    """This SEG is not one the fast path writes (e.g. non-ASCII text, which needs the
    dataset-wide SpecificCharacterSet of the highdicom path); use highdicom."""


def _split_encoded(item, encodings: list[str], warnings: list[str], non_ascii: bool = False) -> _EncodedSegment:
    """Pre-encode an item around its AlgorithmParameters (see _EncodedSegment)."""
    enc_element, enc_dataset = _encoder(encodings)
    before = b"".join(enc_element(item[t]) for t in item.keys() if int(t) < _ALG_SEQ_TAG)
    after = b"".join(enc_element(item[t]) for t in item.keys() if int(t) > _ALG_SEQ_TAG)
    alg = item.get("SegmentationAlgorithmIdentificationSequence")
    alg_before = alg_after = b""
    has_params = bool(alg) and "AlgorithmParameters" in alg[0]
    if has_params:
        a = alg[0]
        alg_before = b"".join(enc_element(a[t]) for t in a.keys() if int(t) < _ALG_PARAMS_TAG)
        alg_after = b"".join(enc_element(a[t]) for t in a.keys() if int(t) > _ALG_PARAMS_TAG)
    if non_ascii:  # never encode it with the template's character set
        return _EncodedSegment(b"", b"", b"", b"", False, b"", item, list(warnings), True)
    return _EncodedSegment(before, alg_before, alg_after, after, has_params, _item(enc_dataset(item)), item,
                           list(warnings))


def _assemble(enc: _EncodedSegment, text: str | None) -> bytes:
    if enc.non_ascii:
        raise NotSupported("non-ASCII segment text")
    if text is None or not enc.has_alg:
        return enc.full
    alg_item = _item(enc.alg_before + _encode_text(_ALG_PARAMS_TAG, "LT", text) + enc.alg_after)
    return _item(enc.before + _sequence(_ALG_SEQ_TAG, [alg_item]) + enc.after)


def _background_item(first_segment, study: str, encodings: list[str]) -> bytes:
    """LABELMAP segment 0 exactly as the installed highdicom adds it.

    highdicom derives it from segment 1's description (algorithm type, and in 0.27 the
    whole algorithm identification, which ``finalize_dataset`` then edits through the
    shared sequence), so it is built the same way: highdicom's own
    ``Segmentation._add_segment_descriptions`` on segment 1, then our post-processing.
    Cached like the segment items: segment 1's parameters only change AlgorithmParameters."""
    from dataclasses import replace

    import highdicom as hd
    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset, format_parameters, to_segment_description

    params = first_segment.algorithm_parameters
    text = None if params is None else format_parameters(params, first_segment.name)
    proto = replace(first_segment, algorithm_parameters=None if params is None else {"_": 0})
    key = (study, tuple(encodings), repr(proto))
    enc = _BACKGROUND_CACHE.get(key)
    if enc is None:
        desc, _ = to_segment_description(proto, 1)
        holder = Dataset()
        holder.StudyInstanceUID = study
        hd.seg.Segmentation._add_segment_descriptions(
            holder, [desc], hd.seg.SegmentationTypeValues.LABELMAP)  # type: ignore[arg-type]  # private API, plain Dataset
        finalize_dataset(holder, [proto])
        write_segment_private(holder, [proto])
        bg = holder.SegmentSequence[0]
        if int(bg.SegmentNumber) != 0:
            raise RuntimeError("highdicom did not add a background segment 0")
        enc = _split_encoded(bg, encodings, [], "SpecificCharacterSet" in holder)
        if len(_BACKGROUND_CACHE) > 1024:
            _BACKGROUND_CACHE.clear()
        _BACKGROUND_CACHE[key] = enc
    return _assemble(enc, text)


# ------------------------------------------------------------------------ writing
@dataclass
class FastResult:
    sop_class_uid: str
    transfer_syntax_uid: str
    n_frames: int


def write_labelmap(
    pixel: np.ndarray,
    segments: Sequence[Any],
    reference,
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
    """Write a LABELMAP SEG of ``pixel`` (SegmentNumbers, (k, j, i) on ``reference.grid``,
    uint8 for < 256 segments else uint16) to ``out_path`` (written directly; the caller
    renames). ``hd_kwargs`` are the constant keyword arguments of highdicom's
    ``Segmentation`` (manufacturer, software versions, ...)."""
    from highdicom.valuerep import _check_code_string, _check_long_string
    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_file_meta_info

    n_seg = len(segments)
    bits = 8 if n_seg < 256 else 16
    want = np.uint8 if bits == 8 else np.dtype("<u2")
    if pixel.dtype != want:
        pixel = pixel.astype(want)
    pixel = np.ascontiguousarray(pixel)
    for value in (series_description, content_description, content_label):
        if value is not None and not str(value).isascii():
            raise NotSupported("non-ASCII series text")
    _check_code_string(content_label)
    if content_description is not None:
        _check_long_string(content_description)
    if series_description is not None:
        _check_long_string(series_description)

    study = reference.study_instance_uid
    tpl = TEMPLATES.get(reference, bits, hd_kwargs, segments[0])
    encodings = list(tpl.encodings)
    enc_element, _ = _encoder(encodings)
    seg_items = [_background_item(segments[0], study, encodings)]
    seg_messages: list[str] = []
    for number, seg in enumerate(segments, start=1):
        data, _item_ds, msgs = _segment_item(seg, number, study, encodings)
        seg_items.append(data)
        seg_messages.extend(msgs)

    nk = pixel.shape[0]
    present = np.asarray(pixel.reshape(nk, -1).any(axis=1))
    order = [k for k in tpl.frame_k if present[k]]
    frames = []
    for n, k in enumerate(order, start=1):
        b = bytearray(tpl.items[k])
        o = tpl.dim_offset[k]
        b[o:o + 4] = struct.pack("<I", n)
        frames.append(bytes(b))

    now = content_datetime or datetime.now()
    date = now.strftime("%Y%m%d")
    tm = now.strftime("%H%M%S") if content_datetime is not None else now.strftime("%H%M%S.%f")
    per: dict[int, bytes] = {}

    def put(tag: int, vr: str, value: Any) -> None:
        # short string VRs by hand (what pydicom writes: ASCII, padded to even length with
        # a space, UI with a NULL); anything else through pydicom
        text = "" if value is None else str(value)
        if vr in ("UI", "IS", "LO", "CS", "DA", "TM") and text.isascii() and len(text) < 0xFFFF:
            raw = text.encode("ascii")
            if len(raw) % 2:
                raw += b"\x00" if vr == "UI" else b" "
            per[tag] = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode() + struct.pack("<H", len(raw)) + raw
        else:
            per[tag] = enc_element(DataElement(tag, vr, value))

    put(0x00080018, "UI", sop_instance_uid)
    put(0x0020000E, "UI", series_instance_uid)
    put(0x00200011, "IS", int(series_number))
    if series_description is not None:
        put(0x0008103E, "LO", series_description)
    put(0x00700080, "CS", content_label)
    put(0x00700081, "LO", content_description)
    put(0x00080012, "DA", date)
    put(0x00080013, "TM", tm)
    put(0x00080023, "DA", date)
    put(0x00080033, "TM", tm)
    if content_datetime is not None:
        put(0x00080021, "DA", date)
        put(0x00080031, "TM", tm)
    if tpl.contributing is not None:
        # highdicom stamps ContributionDateTime with the template's build time: use this
        # write's time (content_datetime when given, so re-writing gives identical bytes),
        # on a copy: the template stays as built
        import copy

        contributing = copy.deepcopy(tpl.contributing)
        for item in contributing.value:
            if "ContributionDateTime" in item:
                item.ContributionDateTime = date + tm
        per[int(contributing.tag)] = enc_element(contributing)
    put(0x00280008, "IS", len(order))
    # highdicom: "3D" when more than one frame remains and the frames are regularly spaced
    steps = np.diff(order)
    if len(order) > 1 and steps[0] != 0 and np.all(steps == steps[0]):
        put(0x00209311, "CS", "3D")
    per[_SEGMENT_SEQUENCE_TAG] = _sequence(_SEGMENT_SEQUENCE_TAG, seg_items)
    per[_PFFG_TAG] = _sequence(_PFFG_TAG, frames)
    merged = dict(tpl.elements)
    merged.update(per)
    header = b"".join(merged[t] for t in sorted(merged))

    rows, cols = pixel.shape[1:]
    nbytes = len(order) * rows * cols * pixel.dtype.itemsize
    pad = nbytes % 2
    header += struct.pack("<HH", 0x7FE0, 0x0010) + tpl.pixel_vr + b"\x00\x00" + struct.pack("<I", nbytes + pad)

    from pydicom.dataset import FileMetaDataset

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
        if transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LE:
            # Two deflate streams back to back form one valid stream: the header (UIDs,
            # text) at level 9 ends with a sync flush (byte-aligned, not final), the pixel
            # frames follow from a fresh compressor at DEFLATE_LEVEL. Separate blocks let
            # each part get its own Huffman codes: ~5% smaller than one stream, not slower.
            head = _zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            size = 0
            for out in (head.compress(header), head.flush(zlib.Z_SYNC_FLUSH)):
                size += len(out)
                fh.write(out)
            for out in _deflate_frames(pixel, order, pad):
                size += len(out)
                fh.write(out)
            if size % 2:
                fh.write(b"\x00")
        else:
            for chunk in _chunks(header, pixel, order, pad):
                fh.write(chunk)
    messages.extend(seg_messages)
    return FastResult(tpl.sop_class_uid, transfer_syntax_uid, len(order))


def _deflate_part(pixel: np.ndarray, frames: list[int], last: bool, pad: int) -> bytes:
    comp = _zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(memoryview(pixel[k]).cast("B")) for k in frames]
    if last and pad:
        out.append(comp.compress(b"\x00"))
    out.append(comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return b"".join(out)


def _deflate_frames(pixel: np.ndarray, order: list[int], pad: int) -> list[bytes]:
    """The frames as raw deflate data: in DEFLATE_THREADS parts deflated at once (zlib
    releases the GIL), each but the last ending in a sync flush."""
    n = DEFLATE_THREADS if len(order) >= 4 * DEFLATE_THREADS and pixel[0].nbytes * len(order) > 1 << 20 else 1
    if n == 1:
        return [_deflate_part(pixel, order, True, pad)]
    from concurrent.futures import ThreadPoolExecutor

    bounds = [round(i * len(order) / n) for i in range(n + 1)]
    parts = [order[bounds[i]:bounds[i + 1]] for i in range(n)]
    # a pool per write (thread start-up is ~0.1 ms): nothing outlives the call
    with ThreadPoolExecutor(n, thread_name_prefix="abdicom-deflate") as pool:
        futures = [pool.submit(_deflate_part, pixel, part, i == n - 1, pad) for i, part in enumerate(parts)]
        return [f.result() for f in futures]


def _chunks(header: bytes, pixel: np.ndarray, order: list[int], pad: int):
    """The header, then each frame as a zero-copy view of the (C-contiguous) array."""
    yield header
    for k in order:
        yield memoryview(pixel[k]).cast("B")
    if pad:
        yield b"\x00"


__all__ = ["ENABLED", "DEFLATE_LEVEL", "NotSupported", "TEMPLATES", "TemplateCache", "supported", "write_labelmap"]
