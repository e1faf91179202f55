"""Per-series templates of the fast SEG writer (:mod:`.fast`).

:mod:`.fast_header` builds the LABELMAP header of a reference series once (with pydicom,
what highdicom's Segmentation would hold: one per-frame functional group item per slice;
only the first source image is read with pydicom, every slice's values come from its walked
header, :mod:`.fast_sources`);
the template keeps its top-level elements and per-frame items pre-encoded. A
:class:`TemplateCache` holds the templates of the series written to.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import NotSupported, _encoder, _item, encode_small_element

_PFFG_TAG = 0x52009230
_SEGMENT_SEQUENCE_TAG = 0x00620002
_PIXEL_DATA_TAG = 0x7FE00010
_CONTRIBUTION_DATETIME = 0x0018A002
_DIM_INDEX_VALUES = struct.pack("<HH", 0x0020, 0x9157) + b"UL" + struct.pack("<H", 4)
#: Top-level elements set per segmentation (never taken from the template).
_PER_SEG_KEYWORDS = (
    "SOPInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ContentLabel",
    "ContentDescription", "ContentDate", "ContentTime", "InstanceCreationDate", "InstanceCreationTime",
    "SeriesDate", "SeriesTime", "NumberOfFrames", "SegmentSequence", "PerFrameFunctionalGroupsSequence",
    "PixelData", "DimensionOrganizationType",
)

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
    contributing: Any = None  # ContributingEquipmentSequence element, as built (not written as is)
    #: ContributingEquipmentSequence items pre-encoded around their ContributionDateTime:
    #: (elements before it, elements after it, whether the item has one); see _contributing
    contributing_parts: tuple[tuple[bytes, bytes, bool], ...] = ()


class TemplateCache:
    """Templates of the series written to, keyed by SeriesInstanceUID (+ the geometry and
    source instances, so a different series that reuses a UID never gets a stale template)
    and the arguments constant across trials. Bounded: least recently used entries go first.

    One process-wide instance (:data:`TEMPLATES`) serves :func:`write_labelmap`; tests and
    long-running hosts (Slicer) may call :meth:`clear`.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], _Template] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(reference: Any, bits: int, hd_kwargs: dict[str, Any], algorithm_type: Any) -> tuple[Any, ...]:
        grid = reference.grid
        sources = tuple(reference.sop_instance_uids)  # walked: no pydicom read of 100 headers
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


def _build_template(reference: Any, bits: int, hd_kwargs: dict[str, Any], first_segment: Any) -> _Template:
    """The template of ``reference`` (see the module docstring).

    Raises
    ------
    NotSupported
        A reference this writer has no template for (multi-frame images, ...).
    RuntimeError
        The header does not have the layout this writer relies on (an element after
        PixelData, a per-frame item without one DimensionIndexValues, frames not covering
        every slice once); :func:`~.write.write_seg` then writes with highdicom.
    """
    from AdaptiveBrushDicomLib.dicom import uids
    from AdaptiveBrushDicomLib.dicom.seg.fast_header import labelmap_header
    from AdaptiveBrushDicomLib.dicom.seg.fast_sources import source_slices

    nk, rows, cols = reference.grid.shape_kji
    if getattr(reference, "is_multiframe", False):
        raise NotSupported("multi-frame reference image")
    # a deterministic DimensionOrganizationUID (highdicom makes up a random one)
    dim_uid = uids.derive_uid("dimension-organization", reference.series_instance_uid)
    slices = source_slices(reference.headers)
    header = labelmap_header(
        reference.dataset(0), slices, bits=bits, rows=rows, columns=cols, hd_kwargs=hd_kwargs,
        series_instance_uid=uids.derive_uid("template-series", reference.series_instance_uid),
        sop_instance_uid=uids.derive_uid("template-instance", reference.series_instance_uid),
        dimension_organization_uid=dim_uid,
    )
    seg = header.dataset

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
    elements.update(header.encoded)
    if any(tag > _PIXEL_DATA_TAG for tag in elements):
        raise RuntimeError("template has elements after PixelData")

    grid = reference.grid
    frame_k, items, dim_offset = [], {}, {}
    for index, body in zip(header.order, header.frames):
        pos = np.array(slices[index].position, dtype=float)
        k = int(round(float(grid.lps_to_index(pos)[2])))
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
    parts = () if contributing is None else tuple(_split_item(item, enc_element, _CONTRIBUTION_DATETIME)
                                                  for item in contributing.value)
    return _Template(MappingProxyType(elements), tuple(frame_k), MappingProxyType(items),
                     MappingProxyType(dim_offset), meta, tuple(encodings), pixel_vr,
                     str(seg.SOPClassUID), contributing, parts)


def _split_item(item: Any, enc_element: Callable[[Any], bytes], tag: int) -> tuple[bytes, bytes, bool]:
    """An item's encoded elements before and after ``tag``, and whether it has ``tag``
    (small elements with :func:`~.fast_encoding.encode_small_element`, the rest with
    pydicom's encoder ``enc_element``)."""

    def encode(elem: Any) -> bytes:
        try:
            return encode_small_element(elem)
        except NotSupported:
            return enc_element(elem)

    tags = sorted(int(t) for t in item.keys())  # keys() is insertion order; files are ascending
    before = b"".join(encode(item[t]) for t in tags if t < tag)
    after = b"".join(encode(item[t]) for t in tags if t > tag)
    return before, after, tag in item
