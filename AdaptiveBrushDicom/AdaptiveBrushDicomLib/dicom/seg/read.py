"""Read any DICOM Segmentation into a :class:`~.labelmap.LabelMap` on the full reference grid.

Handles LABELMAP (66.7) and BINARY/FRACTIONAL (66.4) SEGs from any writer (ours,
highdicom, dcmqi). Frames are placed by their PlanePositionSequence, never by index, so
omitted empty frames, descending frame order and frames that reference only some source
images all decode correctly; missing slices come back as 0.

* With the reference series (``reference=``): the output grid is the series' grid, and
  the SEG must reference that series (ReferencedSeriesSequence) and share its Frame of
  Reference.
* Without it: the grid is derived from the SEG's own plane positions and spacing. Slices
  beyond the first and last stored frame cannot be known; ``DecodedSeg.notes`` says so.

PixelPaddingValue (0028,0120) in a LABELMAP is treated as background (0), like highdicom
does; dcmqi instead fills missing slices with it when writing NRRD.

The file is read by the raw walker (:mod:`~.seg.source_walked`: no pydicom import, no
element conversion) when it can, else by pydicom (:mod:`~.seg.source_pydicom`); both go
through the one decoder below, in one order of checks, so the answer (voxels, segments,
notes or the error) does not depend on which read the file.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.core.align import align_to_grid
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg import sanity
from AdaptiveBrushDicomLib.dicom.seg.frame_grid import (
    grid_from_positions,
    onto_regular_grid,
    place_frames,
    place_on_reference,
)
from AdaptiveBrushDicomLib.dicom.seg.decode_labels import decode_binary, decode_labelmap, restore_labels
from AdaptiveBrushDicomLib.dicom.seg.labels import undescribed_labels
from AdaptiveBrushDicomLib.dicom.seg.placement import placement_grid
from AdaptiveBrushDicomLib.dicom.seg.source import SegSource, decode_error
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError, ReferenceMismatchError, UserError
from AdaptiveBrushDicomLib.io.limits import check_voxels

#: What pydicom / numpy raise on values a hostile or broken header holds.
_MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError, struct.error, RecursionError,
              OverflowError, UnicodeError, EOFError, NotImplementedError, RuntimeError, OSError)


@dataclass
class DecodedSeg:
    """Result of :func:`read_seg`.

    ``dataset`` is the SEG as a pydicom dataset: read on first use when the walker decoded
    the file (``abdicom decode`` never needs it), settable (to None, to drop it).
    """

    labelmap: LabelMap
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    referenced_series_uid: str | None
    frame_of_reference_uid: str | None
    series_description: str
    n_frames: int
    segmentation_type: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: SegmentNumber of every SegmentSequence item, ascending (a LABELMAP's Background item 0
    #: left out), as read with the segments: no pydicom dataset needed
    segment_numbers: list[int] = field(default_factory=list)
    _dataset: Any = field(default=None, repr=False)
    _dataset_path: Path | None = field(default=None, repr=False)

    @property
    def is_labelmap(self) -> bool:
        """True for the LABELMAP SOP class (1.2.840.10008.5.1.4.1.1.66.7)."""
        return self.sop_class_uid == SegSopClass.LABELMAP

    @property
    def dataset(self) -> Any:
        """The SEG as a pydicom dataset (None once dropped)."""
        if self._dataset is None and self._dataset_path is not None:
            self._dataset = walker.dcmread(self._dataset_path)
        return self._dataset

    @dataset.setter
    def dataset(self, value: Any) -> None:
        self._dataset, self._dataset_path = value, None


def _walked(path: Path) -> SegSource | None:
    """The file walked without pydicom, or None when the walker does not read it (or finds
    it broken: pydicom's reading then words the error, as it always did).

    Raises
    ------
    IncompleteFileError
        The file ends inside its header or PixelData: the answer whoever reads it (the
        pydicom source checks the same, :func:`~.seg.source_pydicom.check_complete`).
    """
    from AdaptiveBrushDicomLib.dicom.seg.source_walked import WalkedSource

    try:
        return WalkedSource(path)
    except IncompleteFileError:
        raise
    except (walker.NotSupported, InputFileError):
        return None


def _pydicom(path: Path) -> SegSource:
    """The file read with pydicom (the walker inflates Deflated data, capped).

    Raises
    ------
    InputFileError
        Not a readable DICOM file.
    IncompleteFileError
        The file ends inside its header or PixelData (:func:`~.seg.source_pydicom.check_complete`).
    UserError
        What the capped inflate raises (a deflate bomb, corrupt Deflated data), as it is.
    """
    from pydicom.errors import InvalidDicomError

    from AdaptiveBrushDicomLib.dicom.seg.source_pydicom import PydicomSource, check_complete

    try:
        ds = walker.dcmread(path)
    except UserError:
        raise
    except (InvalidDicomError, *_MALFORMED) as exc:
        walker.diagnose(path)  # cut short (pydicom 3.0.2 raises struct.error on some cuts): say so
        raise InputFileError(f"not a readable DICOM file ({decode_error(exc)})", path) from None
    check_complete(ds, path)
    return PydicomSource(ds, path)


def read_seg(path: str | Path, reference: ReferenceSeries | str | Path | None = None, *,
             keep_irregular: bool = False) -> DecodedSeg:
    """Decode a SEG file (see module docstring).

    ``keep_irregular``: with an irregularly spaced reference series, return the labelmap
    on the series' own slices (a Grid with ``slice_positions_mm``) instead of on the
    regular grid that holds them all (the default, which volume files can store).

    Raises
    ------
    IncompleteFileError
        The file is empty or ends inside its header or PixelData (cut short in copying).
    InputFileError
        Not a DICOM file, not a SEG, a malformed or inconsistent SEG, too large
        to decode in the memory available (:class:`~.limits.LimitError` past the limits).
    ReferenceMismatchError
        The SEG does not fit the reference series.
    """
    t0 = time.perf_counter()
    path = Path(path)
    walker.check_part10(path, what="SEG file")
    if reference is not None and not isinstance(reference, ReferenceSeries):
        reference = ReferenceSeries.from_folder(reference)
    source = _walked(path)
    if source is not None:
        try:
            return _guarded(source, reference, t0, keep_irregular, walked=True)
        except walker.NotSupported:
            pass  # something the walker does not read: pydicom reads the file from the start
    return _guarded(_pydicom(path), reference, t0, keep_irregular, walked=False)


def _guarded(source: SegSource, reference: ReferenceSeries | None, t0: float, keep_irregular: bool, *,
             walked: bool) -> DecodedSeg:
    """:func:`_decode` with what a broken file makes libraries raise turned into one line.

    A walked source's own signals (NotSupported, and Malformed values, which pydicom may
    read differently) mean "read it with pydicom": they are raised as NotSupported.

    Raises
    ------
    NotSupported
        Only for a walked source (see above).
    InputFileError
        Too large for the memory available, or a malformed element.
    UserError
        The decoder's own one-line errors, as they are.
    """
    path = source.path
    try:
        return _decode(source, reference, t0, keep_irregular)
    except UserError:
        raise
    except (walker.NotSupported, walker.Malformed) as exc:
        if walked:
            raise walker.NotSupported(str(exc)) from None
        raise InputFileError(f"malformed SEG ({decode_error(exc)}); the file does not follow the DICOM standard, "
                             "ask its producer for a valid one", path) from None
    except MemoryError:
        raise InputFileError("too large to decode in the memory available; lower --max-voxels or free memory",
                             path) from None
    except _MALFORMED as exc:
        # pydicom converts lazily, so a broken element surfaces wherever it is first read
        raise InputFileError(f"malformed SEG ({decode_error(exc)}); the file does not follow the DICOM standard, "
                             "ask its producer for a valid one", path) from None


@dataclass
class _Frames:
    """What :func:`_decode` knows of the frames once they are placed."""

    seg_type: str
    rows: int
    cols: int
    n: int
    grid: Grid
    frame_grid: Grid
    place: np.ndarray


def _sop_class(source: SegSource) -> str:
    """SOPClassUID, which must be a Segmentation's.

    Raises
    ------
    InputFileError
        Another SOP class.
    """
    sop_class = source.sop_class_uid()
    if sop_class not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(
            f"SOPClassUID (0008,0016) is {sop_class or 'missing'}, not a Segmentation "
            f"({SegSopClass.LABELMAP} or {SegSopClass.SEGMENTATION})",
            source.path,
        )
    return sop_class


def _frames(source: SegSource, seg_type: str, ref_series: str | None, for_uid: str | None,
            reference: ReferenceSeries | None, notes: list[str]) -> _Frames:
    """Checked dimensions and geometry, and where every frame goes.

    Raises
    ------
    InputFileError
        Dimensions or plane geometry a SEG cannot have, a 2D or slide SEG.
    ReferenceMismatchError
        The SEG references another series, or its frames do not lie on the reference.
    """
    path = source.path
    rows, cols, n = source.dimensions()
    sanity.check_dimensions(rows, cols, n, path)
    source.refuse_2d()
    positions, iop, ps, gap = source.frame_geometry()
    gap = sanity.check_plane_geometry(positions, iop, ps, gap, path)
    if reference is not None:
        if ref_series is not None and ref_series != reference.series_instance_uid:
            raise ReferenceMismatchError(
                f"SEG references series {ref_series} (ReferencedSeriesSequence), but the reference folder holds "
                f"series {reference.series_instance_uid}; give the referenced series",
                path,
            )
        grid = reference.grid
        frame_grid, place = place_on_reference(positions, iop, ps, rows, cols, grid, for_uid, reference, path, notes)
    else:
        grid = grid_from_positions(positions, iop, ps, gap, rows, cols, notes)
        check_voxels(int(np.prod(grid.shape_kji, dtype=np.int64)), "the grid the SEG's frames span", path)
        frame_grid = placement_grid(grid, iop, ps, path)
        place = place_frames(positions, frame_grid, rows, cols, path)
    return _Frames(seg_type, rows, cols, n, grid, frame_grid, place)


def _labelmap(source: SegSource, fr: _Frames, notes: list[str]) -> tuple[LabelMap, list[int]]:
    """Segments and pixels -> the LabelMap on the frames' grid, and the SegmentNumbers of
    the described segments (ascending).

    Raises
    ------
    InputFileError
        A LABELMAP of other than 8/16/32 bits, inconsistent pixel data, BINARY frames
        without segment identification.
    """
    path = source.path
    segments = source.segments(fr.seg_type)  # by SegmentNumber, never by position in the sequence
    numbers = sorted(segments)
    bits = source.bits_allocated()
    if fr.seg_type == "LABELMAP" and bits not in (8, 16, 32):
        raise InputFileError(f"BitsAllocated (0028,0100) is {bits}; a LABELMAP SEG stores 8 or 16 bits per pixel",
                             path)
    source.check_pixel_data(fr.n, fr.rows, fr.cols)
    pixels = source.pixels(fr.seg_type, fr.n, fr.rows, fr.cols)
    if fr.seg_type == "LABELMAP":
        padding = source.padding()
        array = decode_labelmap(pixels, fr.place, fr.frame_grid, padding, path)
        if padding is not None and padding != 0:
            notes.append(f"PixelPaddingValue {padding} treated as background (0)")
        undescribed = undescribed_labels(array, list(segments))
        if undescribed:
            notes.append(f"pixel value(s) {undescribed[:10]} have no SegmentSequence item; decoded as "
                         "'Segment <n>' with label <n>")
        return restore_labels(array, fr.frame_grid, segments), numbers
    frame_segments = source.frame_segments(fr.n)
    if frame_segments is None:
        raise InputFileError("frames lack SegmentIdentificationSequence (0062,000A)", path)
    if fr.seg_type == "FRACTIONAL":
        pixels = pixels.astype(np.float32) / source.max_fractional_value() >= 0.5
        notes.append("FRACTIONAL segmentation thresholded at 0.5")
    return decode_binary(pixels, fr.place, frame_segments, fr.frame_grid, segments, notes), numbers


def _decode(source: SegSource, reference: ReferenceSeries | None, t0: float, keep_irregular: bool) -> DecodedSeg:
    """The body of :func:`read_seg` once the file is parsed.

    Raises
    ------
    InputFileError, ReferenceMismatchError
        See :func:`read_seg`.
    """
    path = source.path
    sop_class = _sop_class(source)
    notes: list[str] = []
    seg_type = source.segmentation_type(sop_class)
    ref_series = source.referenced_series_uid()
    for_uid = source.frame_of_reference_uid()
    fr = _frames(source, seg_type, ref_series, for_uid, reference, notes)
    labelmap, numbers = _labelmap(source, fr, notes)
    if fr.frame_grid is not fr.grid:  # frames in another orientation: exact re-indexing, no resampling
        labelmap = LabelMap(align_to_grid(labelmap.array, fr.frame_grid, fr.grid, what=str(path)), fr.grid,
                            labelmap.segments)
    if not fr.grid.is_regular and not keep_irregular:
        labelmap = onto_regular_grid(labelmap, path, notes)
    return DecodedSeg(
        labelmap=labelmap, sop_class_uid=sop_class, referenced_series_uid=ref_series,
        frame_of_reference_uid=for_uid, n_frames=fr.n, segmentation_type=fr.seg_type,
        seconds=time.perf_counter() - t0, notes=notes, segment_numbers=numbers, **source.identity(),
        _dataset=source.loaded_dataset(), _dataset_path=path,
    )


__all__ = ["DecodedSeg", "read_seg"]
