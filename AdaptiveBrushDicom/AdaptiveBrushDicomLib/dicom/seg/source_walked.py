"""A SEG read with the raw walker alone: what ``abdicom decode`` of our files needs, without
importing pydicom (~0.25 s of a whole process) or converting its elements.

Reads LABELMAP SEGs in Explicit VR Little Endian or Deflated with native pixel data,
per-frame positions, shared orientation and pixel measures, in the default character
repertoire, ISO_IR 100 or ISO_IR 192 with ASCII values (what ours and most writers'
files are). Anything else, or any value it would not convert as pydicom does, is
:class:`~.walker.NotSupported` from the method that meets it: the decoder then reads the
file with pydicom (:class:`~.seg.source_pydicom.PydicomSource`) from the start, so a
file gets one answer whichever source read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.private_tags import written_by_us
from AdaptiveBrushDicomLib.dicom.reference_headers import walked_slice_spacing
from AdaptiveBrushDicomLib.dicom.seg.segments_read import SegmentCollector, segment_of_item
from AdaptiveBrushDicomLib.dicom.seg.source import FrameGeometry, check_pixel_data_length
from AdaptiveBrushDicomLib.dicom.seg.walked_item import WalkedItem
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass

_NotSupported = walker.NotSupported
#: Character sets whose ASCII bytes read as ASCII (non-ASCII bytes are NotSupported anyway).
_PLAIN_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"})
#: Even-group elements a SegmentSequence item may hold here (the Segment Description
#: macro); any other is checked against pydicom's dictionary by the pydicom source.
_ITEM_TAGS = frozenset({0x00620003, 0x00620004, 0x00620005, 0x00620006, 0x00620007, 0x00620008, 0x00620009,
                        0x0062000C, 0x0062000D, 0x0062000F, 0x00620020, 0x00620021, 0x00082218, 0x00082228})
_SLIDE_TAGS = (0x00480006, 0x00480007)  # TotalPixelMatrixColumns / Rows
_PLANE_POSITION_SLIDE, _PLANE_POSITION = 0x0048021A, 0x00209113
_SHARED, _PER_FRAME, _SEGMENTS = 0x52009229, 0x52009230, 0x00620002


def _text(ds: walker.RawDataset, tag: int, required: bool = False) -> str:
    """An ASCII value ("" when absent unless ``required``).

    Raises
    ------
    NotSupported
        Absent but required, or not one text value.
    """
    if tag not in ds:
        if required:
            raise _NotSupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) absent")
        return ""
    value = walker.value(ds, tag)
    if not isinstance(value, str):
        raise _NotSupported("not text")
    return value


def _int(ds: walker.RawDataset, tag: int, default: int | None = None) -> int:
    """One integer value (``default`` when absent).

    Raises
    ------
    NotSupported
        Absent without default, empty, several values.
    """
    value = walker.value(ds, tag) if tag in ds else default
    if not isinstance(value, int):
        raise _NotSupported("not one integer")
    return value


def _first(ds: walker.RawDataset, tag: int) -> walker.RawDataset:
    """The first item of sequence ``tag``.

    Raises
    ------
    NotSupported
        Absent or empty.
    """
    items = walker.items(ds, tag)
    if not items:
        raise _NotSupported("sequence absent or empty")
    return items[0]


def _numbers(ds: walker.RawDataset, tag: int, n: int | None = None) -> list[float]:
    """The numbers of ``tag`` (exactly ``n`` of them when given).

    Raises
    ------
    NotSupported
        Absent, empty, or another count.
    """
    values = walker.numbers(ds, tag)
    if not values or (n is not None and len(values) != n):
        raise _NotSupported("not the numbers expected")
    return values


def _check_item(item: walker.RawDataset, seg_type: str) -> None:
    """Refuse (NotSupported) an item the pydicom source would check differently: unknown
    standard elements, no SegmentNumber/SegmentLabel, a colour not of three values.

    Raises
    ------
    NotSupported
        Anything but a whole, plain item.
    """
    if any(t >> 16 & 1 == 0 and t & 0xFFFF and t not in _ITEM_TAGS for t in item):
        raise _NotSupported("an element outside the Segment Description macro")
    number = _int(item, 0x00620004)
    if not (seg_type == "LABELMAP" and number == 0) and not _text(item, 0x00620005).strip():
        raise _NotSupported("no SegmentLabel")
    lab = walker.value(item, 0x0062000D)
    if lab is not None and not (isinstance(lab, list) and len(lab) == 3):
        raise _NotSupported("colour not three values")


class WalkedSource:
    """The decoder's view of a SEG walked without pydicom (see :class:`~.seg.source.SegSource`)."""

    def __init__(self, path: Path) -> None:
        """Walk the file (header and native pixel data).

        Raises
        ------
        NotSupported
            Not Explicit VR LE / Deflated with native pixel data, or another character set.
        InputFileError
            Truncated or corrupt; LimitError: a deflate bomb or more voxels than allowed.
        """
        self.path = path
        self.header, self.pixel_data = walker.read_pixels(path)
        self.ds = self.header.dataset
        walker.check_vrs(self.ds)
        charset = walker.value(self.ds, 0x00080005)
        if (charset or "") not in _PLAIN_CHARSETS:
            raise _NotSupported(f"SpecificCharacterSet {charset}")

    def loaded_dataset(self) -> Any:
        """None: the file was walked (:attr:`~.seg.read.DecodedSeg.dataset` reads it on first use)."""
        return None

    def sop_class_uid(self) -> str:
        """SOPClassUID ("" when absent)."""
        return _text(self.ds, 0x00080016)

    def segmentation_type(self, sop_class: str) -> str:
        """SegmentationType; only LABELMAP is read here.

        Raises
        ------
        NotSupported
            BINARY, FRACTIONAL or none.
        """
        default = "LABELMAP" if sop_class == SegSopClass.LABELMAP else ""
        seg_type = _text(self.ds, 0x00620001) if 0x00620001 in self.ds else default
        if seg_type != "LABELMAP":
            raise _NotSupported(f"SegmentationType {seg_type}")
        return seg_type

    def referenced_series_uid(self) -> str | None:
        """SeriesInstanceUID of the first ReferencedSeriesSequence item (None: no item)."""
        items = walker.items(self.ds, 0x00081115)
        return _text(items[0], 0x0020000E, required=True) if items else None

    def frame_of_reference_uid(self) -> str | None:
        """FrameOfReferenceUID (None when absent or empty)."""
        return _text(self.ds, 0x00200052) or None

    def dimensions(self) -> tuple[int, int, int]:
        """(Rows, Columns, NumberOfFrames)."""
        return _int(self.ds, 0x00280010), _int(self.ds, 0x00280011), _int(self.ds, 0x00280008, 1)

    def refuse_2d(self) -> None:
        """Slide or 2D SEGs are left to the pydicom source, which words the refusal.

        Raises
        ------
        NotSupported
            Slide tags, or the first frame without a PlanePositionSequence.
        """
        groups = walker.items(self.ds, _SHARED)[:1] + walker.items(self.ds, _PER_FRAME)[:1]
        if any(t in self.ds for t in _SLIDE_TAGS) or any(_PLANE_POSITION_SLIDE in g for g in groups):
            raise _NotSupported("slide microscopy")
        if not groups or not any(_PLANE_POSITION in g for g in groups):
            raise _NotSupported("no plane positions")

    def frame_geometry(self) -> FrameGeometry:
        """Positions from the per-frame groups; orientation and measures from the shared group.

        Raises
        ------
        NotSupported
            Any group missing or elsewhere, values not of the expected count.
        """
        shared = _first(self.ds, _SHARED)
        orient, measures = _first(shared, 0x00209116), _first(shared, 0x00289110)
        per_frame = walker.items(self.ds, _PER_FRAME)
        if len(per_frame) != self.dimensions()[2]:
            raise _NotSupported("per-frame items do not match NumberOfFrames")
        positions = np.array([_numbers(_first(fg, _PLANE_POSITION), 0x00200032, 3) for fg in per_frame],
                             dtype=float).reshape(len(per_frame), 3)
        iop = np.array(_numbers(orient, 0x00200037), dtype=float)
        return positions, iop, _numbers(measures, 0x00280030), walked_slice_spacing(measures)

    def segments(self, seg_type: str) -> dict[int, Segment]:
        """Segments by SegmentNumber, read by the one item reader through :class:`WalkedItem`.

        Raises
        ------
        InputFileError
            Two items with one SegmentNumber, or a value the item reader cannot use.
        """
        ours = written_by_us(cast(Any, WalkedItem(self.ds)))  # the Dataset subset it reads
        collector = SegmentCollector(seg_type, self.path)
        for i, item in enumerate(walker.items(self.ds, _SEGMENTS)):
            _check_item(item, seg_type)
            collector.add(i, *segment_of_item(WalkedItem(item), i, ours, self.path))
        return collector.segments

    def bits_allocated(self) -> int:
        """BitsAllocated (0 when absent)."""
        return _int(self.ds, 0x00280100, 0)

    def check_pixel_data(self, n: int, rows: int, cols: int) -> None:
        """Native PixelData no longer than declared (:func:`~.seg.source.check_pixel_data_length`)."""
        check_pixel_data_length(len(self.pixel_data), n, rows, cols, _int(self.ds, 0x00280002, 1) or 1,
                                _int(self.ds, 0x00280100, 8) or 8, self.path)

    def pixels(self, seg_type: str, n: int, rows: int, cols: int) -> np.ndarray:
        """The frames (n, rows, cols) as a view of the walked pixel data.

        Raises
        ------
        NotSupported
            Not 8/16/32-bit unsigned single-sample frames of at least the declared size.
        """
        bits = _int(self.ds, 0x00280100, 0)
        if bits not in (8, 16, 32) or _int(self.ds, 0x00280002, 1) != 1 or _int(self.ds, 0x00280103, 0) != 0:
            raise _NotSupported("pixel format")
        dtype = np.dtype({8: "<u1", 16: "<u2", 32: "<u4"}[bits])
        count = n * rows * cols
        if len(self.pixel_data) < count * dtype.itemsize:
            raise _NotSupported("PixelData shorter than declared")
        return np.frombuffer(self.pixel_data, dtype=dtype, count=count).reshape(n, rows, cols)

    def padding(self) -> int | None:
        """PixelPaddingValue (None when absent)."""
        return _int(self.ds, 0x00280120) if walker.value(self.ds, 0x00280120) is not None else None

    def frame_segments(self, n: int) -> np.ndarray | None:
        """Not needed for LABELMAP (the only type read here).

        Raises
        ------
        NotSupported
            Always.
        """
        raise _NotSupported("BINARY frames")

    def max_fractional_value(self) -> float:
        """Not needed for LABELMAP.

        Raises
        ------
        NotSupported
            Always.
        """
        raise _NotSupported("FRACTIONAL")

    def identity(self) -> dict[str, str]:
        """transfer_syntax_uid, series/sop/study_instance_uid and series_description."""
        ds = self.ds
        return {"transfer_syntax_uid": self.header.transfer_syntax_uid,
                "series_instance_uid": _text(ds, 0x0020000E, required=True),
                "sop_instance_uid": _text(ds, 0x00080018, required=True),
                "study_instance_uid": _text(ds, 0x0020000D), "series_description": _text(ds, 0x0008103E)}


__all__ = ["WalkedSource"]
