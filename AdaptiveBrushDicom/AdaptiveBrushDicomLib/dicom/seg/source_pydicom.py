"""A SEG read with pydicom: the decoder's source for every file the walker does not read.

Any writer's SEG: implicit VR, big endian, encapsulated pixel data (RLE, JPEG-LS, JPEG
2000), BINARY and FRACTIONAL, character sets, functional groups in any place. The
per-frame positions of an Explicit VR LE file are still read from the raw sequence
bytes (pydicom would convert every per-frame item). The Deflated body is inflated by the
walker, capped by what the header implies.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.dicom.seg import sanity
from AdaptiveBrushDicomLib.dicom.seg.segments_read import read_segments
from AdaptiveBrushDicomLib.dicom.seg.source import FrameGeometry, check_pixel_data_length, decode_error
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.dicom.walker.incomplete import pixel_data_message, pydicom_dimensions
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError

_RawError = (walker.Malformed, walker.NotSupported)
#: Transfer syntaxes whose PixelData is native (not encapsulated), so its length is known.
_NATIVE_SYNTAXES = (ReadOnlySyntax.IMPLICIT.uid, Compression.EXPLICIT.uid, Compression.DEFLATE.uid,
                    ReadOnlySyntax.EXPLICIT_BIG_ENDIAN.uid)


def first_item(ds: Any, name: str) -> Any:
    """First item of sequence ``name`` (None: no dataset, absent or empty)."""
    seq = getattr(ds, name, None)
    return seq[0] if seq else None


def _raw_positions(ds: Any, n: int) -> np.ndarray | None:
    """ImagePositionPatient of each frame from the raw PerFrameFunctionalGroupsSequence
    (None: not raw, or anything unusual; pydicom's items are read instead)."""
    elem = ds.get_item(0x52009230)
    if elem is None or not getattr(elem, "is_raw", False):
        return None
    if elem.is_implicit_VR or not elem.is_little_endian or not isinstance(elem.value, bytes):
        return None
    buf = elem.value
    try:
        out = np.empty((n, 3))
        f = -1
        for f, (s, e, _) in enumerate(walker.iter_items(buf, 0, len(buf))):
            if f >= n:
                return None
            hit = walker.find_element(buf, s, e, 0x00209113)  # PlanePositionSequence
            if hit is None:
                return None
            item = next(walker.iter_items(buf, hit[1], hit[2]))
            pos = walker.find_element(buf, item[0], item[1], 0x00200032)  # ImagePositionPatient
            if pos is None:
                return None
            values = buf[pos[1]:pos[2]].decode("ascii").strip(" \x00").split("\\")
            out[f] = [float(v) for v in values]
        return out if f == n - 1 else None
    except (*_RawError, struct.error, ValueError, StopIteration, UnicodeDecodeError):
        return None


def check_complete(ds: Any, path: Path) -> None:
    """Refuse a file pydicom read only in part (it stops quietly where a file ends): the
    same :class:`~.errors.IncompleteFileError` the walked source raises for the same file.

    PixelData read with fewer bytes than its declared length (one comparison); no
    PixelData at all: :func:`~.walker.diagnose` says whether the file ends inside its header
    or its encapsulated fragments (error path only).

    Raises
    ------
    IncompleteFileError
        The file ends inside its header or its PixelData.
    InputFileError
        Corrupt Deflated data found while diagnosing.
    """
    elem = ds.get_item(0x7FE00010)
    if elem is None:
        walker.diagnose(path)
        return
    declared = getattr(elem, "length", None)
    data = getattr(elem, "value", None)
    if isinstance(declared, int) and declared != walker.UNDEFINED and isinstance(data, (bytes, bytearray)) \
            and len(data) < declared:
        raise IncompleteFileError(pixel_data_message(len(data), declared, pydicom_dimensions(ds)), path)


def _spacing(measures: Any) -> float | None:
    gap = getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", None)
    return float(gap) if gap else None


class PydicomSource:
    """The decoder's view of a SEG dataset read with pydicom (see :class:`~.seg.source.SegSource`)."""

    def __init__(self, ds: Any, path: Path) -> None:
        self.ds, self.path = ds, path

    # ------------------------------------------------------------------ header
    def loaded_dataset(self) -> Any:
        """The pydicom dataset (with pixel data)."""
        return self.ds

    def sop_class_uid(self) -> str:
        """SOPClassUID ("" when absent)."""
        return str(getattr(self.ds, "SOPClassUID", ""))

    def segmentation_type(self, sop_class: str) -> str:
        """SegmentationType (LABELMAP for the LABELMAP SOP class when absent)."""
        return str(getattr(self.ds, "SegmentationType", "LABELMAP" if sop_class == SegSopClass.LABELMAP else ""))

    def referenced_series_uid(self) -> str | None:
        """SeriesInstanceUID of the first ReferencedSeriesSequence item."""
        ref_item = first_item(self.ds, "ReferencedSeriesSequence")
        return str(ref_item.SeriesInstanceUID) if ref_item is not None else None

    def frame_of_reference_uid(self) -> str | None:
        """FrameOfReferenceUID (None when absent or empty)."""
        return str(getattr(self.ds, "FrameOfReferenceUID", "")) or None

    def dimensions(self) -> tuple[int, int, int]:
        """(Rows, Columns, NumberOfFrames)."""
        return int(self.ds.Rows), int(self.ds.Columns), int(getattr(self.ds, "NumberOfFrames", 1))

    def refuse_2d(self) -> None:
        """See :func:`~.seg.sanity.refuse_2d`."""
        sanity.refuse_2d(self.ds, self.path)

    def identity(self) -> dict[str, str]:
        """transfer_syntax_uid, series/sop/study_instance_uid and series_description."""
        ds = self.ds
        return {"transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
                "series_instance_uid": str(ds.SeriesInstanceUID), "sop_instance_uid": str(ds.SOPInstanceUID),
                "study_instance_uid": str(getattr(ds, "StudyInstanceUID", "")),
                "series_description": str(getattr(ds, "SeriesDescription", ""))}

    # ------------------------------------------------------------------ frames
    def frame_geometry(self) -> FrameGeometry:
        """Per-frame positions (n, 3), shared orientation (6,), pixel spacing (row, col) and
        slice spacing (or None).

        Raises
        ------
        InputFileError
            The per-frame sequence is missing or has the wrong length; a frame has no
            position; no orientation or pixel measures anywhere; values that are not numbers.
        """
        ds, path = self.ds, self.path
        shared = first_item(ds, "SharedFunctionalGroupsSequence")
        n = int(getattr(ds, "NumberOfFrames", 1))
        if "PerFrameFunctionalGroupsSequence" not in ds:
            raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) is missing or has the wrong length",
                                 path)
        orient = first_item(shared, "PlaneOrientationSequence") if shared is not None else None
        measures = first_item(shared, "PixelMeasuresSequence") if shared is not None else None
        raw = _raw_positions(ds, n) if orient is not None and measures is not None else None
        if raw is None or orient is None or measures is None:
            return self._per_frame_geometry(shared, n)
        iop = np.array(sanity.numbers(orient.get("ImageOrientationPatient"), "ImageOrientationPatient (0020,0037)",
                                      path))
        ps = sanity.numbers(measures.get("PixelSpacing"), "PixelSpacing (0028,0030)", path)
        return raw, iop, ps, _spacing(measures)

    def _per_frame_geometry(self, shared: Any, n: int) -> FrameGeometry:
        """:meth:`frame_geometry` from pydicom's items (groups per frame or shared).

        Raises
        ------
        InputFileError
            As :meth:`frame_geometry`.
        """
        ds, path = self.ds, self.path
        per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
        if per_frame is None or len(per_frame) != n:
            raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) is missing or has the wrong length",
                                 path)
        orient = first_item(shared, "PlaneOrientationSequence") if shared is not None else None
        measures = first_item(shared, "PixelMeasuresSequence") if shared is not None else None
        shared_pos = first_item(shared, "PlanePositionSequence") if shared is not None else None
        positions = np.empty((n, 3))
        for f, fg in enumerate(per_frame):
            pos = (first_item(fg, "PlanePositionSequence") if fg is not None else None) or shared_pos
            if pos is None:
                raise InputFileError(f"frame {f + 1} has no PlanePositionSequence (0020,9113); cannot place it", path)
            positions[f] = sanity.positions_of(pos.ImagePositionPatient, f, path)
            if orient is None and fg is not None:
                orient = first_item(fg, "PlaneOrientationSequence")
            if measures is None and fg is not None:
                measures = first_item(fg, "PixelMeasuresSequence")
        if orient is None:
            raise InputFileError("no PlaneOrientationSequence (0020,9116); cannot place frames", path)
        if measures is None:
            raise InputFileError("no PixelMeasuresSequence (0028,9110); cannot place frames", path)
        iop = np.array(sanity.numbers(orient.get("ImageOrientationPatient"), "ImageOrientationPatient (0020,0037)",
                                      path))
        ps = sanity.numbers(measures.get("PixelSpacing"), "PixelSpacing (0028,0030)", path)
        return positions, iop, ps, _spacing(measures)

    def segments(self, seg_type: str) -> dict[int, Segment]:
        """Segments by SegmentNumber (:func:`~.seg.segments_read.read_segments`)."""
        return read_segments(self.ds, seg_type, self.path)

    def frame_segments(self, n: int) -> np.ndarray | None:
        """ReferencedSegmentNumber of every frame (per-frame groups, or the shared group,
        where highdicom puts it when a BINARY SEG has a single segment); None if a frame has none."""
        ds = self.ds
        shared = first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "SegmentIdentificationSequence") \
            if "SharedFunctionalGroupsSequence" in ds else None
        out = np.zeros(n, dtype=np.int64)
        for f, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
            item = first_item(fg, "SegmentIdentificationSequence") or shared
            if item is None:
                return None
            out[f] = int(item.ReferencedSegmentNumber)
        return out

    # ------------------------------------------------------------------ pixels
    def bits_allocated(self) -> int:
        """BitsAllocated (0 when absent)."""
        return int(getattr(self.ds, "BitsAllocated", 0) or 0)

    def padding(self) -> int | None:
        """PixelPaddingValue (None when absent)."""
        value = getattr(self.ds, "PixelPaddingValue", None)
        return None if value is None else int(value)

    def max_fractional_value(self) -> float:
        """MaximumFractionalValue (255 when absent)."""
        return float(getattr(self.ds, "MaximumFractionalValue", 255))

    def check_pixel_data(self, n: int, rows: int, cols: int) -> None:
        """Native PixelData no longer than declared; encapsulated frames of the declared size."""
        ds = self.ds
        if str(ds.file_meta.get("TransferSyntaxUID", "")) in _NATIVE_SYNTAXES:
            elem = ds.get("PixelData")
            if isinstance(elem, (bytes, bytearray)):
                check_pixel_data_length(len(elem), n, rows, cols, int(getattr(ds, "SamplesPerPixel", 1) or 1),
                                        int(getattr(ds, "BitsAllocated", 8) or 8), self.path)
        sanity.check_codestream_sizes(ds, rows, cols, self.path)

    def _native_frames(self, n: int, rows: int, cols: int) -> np.ndarray | None:
        """Frames of native (uncompressed) 8/16/32-bit pixel data as a view of PixelData."""
        ds = self.ds
        if str(ds.file_meta.TransferSyntaxUID) not in (Compression.EXPLICIT.uid, Compression.DEFLATE.uid,
                                                        ReadOnlySyntax.IMPLICIT.uid):
            return None
        bits = int(getattr(ds, "BitsAllocated", 0))
        if bits not in (8, 16, 32) or int(getattr(ds, "SamplesPerPixel", 1)) != 1:
            return None
        if int(getattr(ds, "PixelRepresentation", 0)) != 0:
            return None
        data = ds.get("PixelData")
        if not isinstance(data, (bytes, bytearray)):
            return None
        count = n * rows * cols
        dtype = np.dtype({8: "<u1", 16: "<u2", 32: "<u4"}[bits])
        if len(data) < count * dtype.itemsize:
            return None
        return np.frombuffer(data, dtype=dtype, count=count).reshape(n, rows, cols)

    def pixels(self, seg_type: str, n: int, rows: int, cols: int) -> np.ndarray:
        """The frames (n, rows, cols): a view of native LABELMAP data, else pydicom's pixel_array.

        Raises
        ------
        InputFileError
            The pixel data cannot be decoded (corrupt, or a decoder plugin is missing).
        """
        pixels = self._native_frames(n, rows, cols) if seg_type == "LABELMAP" else None
        try:
            if pixels is None:
                pixels = np.asarray(self.ds.pixel_array)
        except Exception as exc:  # missing decoder plugin, corrupt fragments, ...
            raise InputFileError(f"cannot decode pixel data ({decode_error(exc)}); the data is corrupt, or a "
                                 "decoder is missing (install pylibjpeg / pyjpegls)", self.path) from None
        return pixels[np.newaxis] if pixels.ndim == 2 else pixels


__all__ = ["PydicomSource", "check_complete", "first_item"]
