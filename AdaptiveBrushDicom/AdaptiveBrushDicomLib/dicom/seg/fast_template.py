"""Per-series templates of the fast SEG writer (:mod:`.fast`).

highdicom builds a LABELMAP Segmentation once per reference series (on 2x2 frames, every
slice holding one labelled voxel, so that every slice has its per-frame functional group
item); the template keeps its top-level elements and per-frame items pre-encoded. A
:class:`TemplateCache` holds the templates of the series written to.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import _encoder, _item

_PFFG_TAG = 0x52009230
_SEGMENT_SEQUENCE_TAG = 0x00620002
_PIXEL_DATA_TAG = 0x7FE00010
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
    from pydicom.uid import ExplicitVRLittleEndian

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
            transfer_syntax_uid=ExplicitVRLittleEndian,
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
        skip.add(int(tag_for_keyword(kw)))
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
