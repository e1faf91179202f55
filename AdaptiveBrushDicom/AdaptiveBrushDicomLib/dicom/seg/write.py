"""Write a :class:`~.labelmap.LabelMap` as a DICOM Segmentation.

LABELMAP (Label Map Segmentation Storage, 1.2.840.10008.5.1.4.1.1.66.7) is written by
default. Pixel values are DICOM SegmentNumbers 1..N (in the order of
``labelmap.segments``); the original label values are kept so a reader restores them
(see ``segment_dicom``). Overlapping segments cannot be a LABELMAP: they are refused, or
written as BINARY (1.2.840.10008.5.1.4.1.1.66.4) when ``allow_binary`` is given.

:func:`write_seg` checks the request, aligns the labels to the reference grid, turns them
into pixel data (:mod:`.labels`), derives the UIDs, then writes with the fast writer
(:mod:`.fast`) when it supports the case, else (or when it fails) with highdicom
(:mod:`.highdicom_writer`). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from AdaptiveBrushDicomLib import MANUFACTURER, __version__
from AdaptiveBrushDicomLib.core.align import Resample, align_to_grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.messages import summarize_warnings
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg import highdicom_writer
from AdaptiveBrushDicomLib.dicom.seg.labels import SegPixels, seg_pixels
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.dicom.text_values import check_series_text
from AdaptiveBrushDicomLib.errors import OutputExistsError, UserError
from AdaptiveBrushDicomLib.io.atomic import atomic_output

if TYPE_CHECKING:
    from AdaptiveBrushDicomLib.dicom.seg.fast import FastResult

_log = logging.getLogger(__name__)


class SegWriter(str, enum.Enum):
    """The encoder that wrote a SEG."""

    #: :mod:`.fast`: a per-series template filled in per segmentation
    FAST = "fast"
    #: ``highdicom.seg.Segmentation`` (+ pydicom), the reference implementation
    HIGHDICOM = "highdicom"


@dataclass
class WriteResult:
    """What :func:`write_seg` wrote."""

    path: Path
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    n_frames: int
    n_segments: int
    size_bytes: int
    seconds: float
    binary_fallback: bool = False
    warnings: list[str] = field(default_factory=list)
    #: which encoder wrote the file (the fast path falls back to highdicom on any failure)
    writer: SegWriter = SegWriter.HIGHDICOM
    #: the fast writer's dataset bytes up to the PixelData value (not deflated); None from highdicom
    header: bytes | None = None

    @property
    def is_labelmap(self) -> bool:
        """True for a LABELMAP SEG (66.7), false for BINARY (66.4)."""
        return self.sop_class_uid == SegSopClass.LABELMAP


@dataclass(frozen=True)
class _SeriesAttributes:
    """What both writers record about the SEG series and instance (keyword arguments of
    ``fast.write_labelmap`` and ``highdicom_writer.build_dataset``)."""

    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    series_description: str
    content_label: str
    content_description: str | None
    content_datetime: datetime | None
    #: highdicom ``Segmentation`` arguments that are the same for every SEG we write
    hd_kwargs: dict[str, Any]

    def kwargs(self) -> dict[str, Any]:
        """The attributes as keyword arguments (``hd_kwargs`` not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_request(out_path: Path, *, force: bool, compression: Compression, reference: ReferenceSeries,
                   texts: dict[str, str | None]) -> None:
    """Refuse a request before any voxel is touched.

    Raises
    ------
    OutputExistsError
        ``out_path`` exists and ``force`` is false.
    UserError
        The output folder does not exist, a text value does not fit its VR
        (:func:`~.text_values.check_series_text`), or JPEG 2000 is asked for frames under
        32x32 pixels.
    """
    if out_path.exists() and not force:
        raise OutputExistsError("output exists; choose another path or pass --force", out_path)
    if not out_path.parent.is_dir():
        raise UserError("output folder does not exist; create it first", out_path.parent)
    for keyword, value in texts.items():
        check_series_text(keyword, value)
    rows, cols = reference.grid.shape_kji[1:]
    if compression is Compression.JPEG2000 and rows < 32 and cols < 32:
        raise UserError(
            f"JPEG 2000 cannot encode frames smaller than 32x32 pixels (these are {rows}x{cols}); "
            "choose another compression (e.g. deflate)"
        )


def _instance_uids(pixels: SegPixels, reference: ReferenceSeries, series_description: str,
                   series_instance_uid: str | None, sop_instance_uid: str | None) -> tuple[str, str]:
    """(SeriesInstanceUID, SOPInstanceUID): the given ones, else derived from the reference
    series, ``series_description`` and the content (the voxels on the reference grid plus
    everything said about the segments; dataclass reprs are stable), so re-describing the
    same voxels never reuses a SOP Instance UID and no path or clock enters a UID."""
    if series_instance_uid and sop_instance_uid:
        return series_instance_uid, sop_instance_uid
    digest = uids.derive_uid(uids.content_digest(np.asarray(pixels.pixel), reference.grid), repr(pixels.segments))
    series_uid = series_instance_uid or uids.seg_series_uid(reference.series_instance_uid, series_description, digest)
    sop_uid = sop_instance_uid or uids.derive_uid("seg-instance", series_uid, digest)
    return series_uid, sop_uid


def _write_fast(pixels: SegPixels, reference: ReferenceSeries, out_path: Path, compression: Compression,
                series: _SeriesAttributes, messages: list[str]) -> FastResult | None:
    """Write with the fast writer when it supports the case; ``None``: use highdicom.

    The fast writer uses private highdicom/pydicom APIs that may change in any release, so
    any failure of it other than a :class:`UserError` (logged, for bug reports) means
    "write with highdicom instead", never a broken export. Its warnings are appended to
    ``messages`` only when it wrote the file.

    Raises
    ------
    UserError
        A user mistake the fast writer found (e.g. the output cannot be written).
    """
    from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast

    # a multi-frame source's frames are not one file per slice: highdicom writes those
    if not (seg_fast.supported(compression.uid, pixels.binary) and pixels.pixel.any()
            and not reference.is_multiframe):
        return None
    fast_messages: list[str] = []
    try:
        with atomic_output(out_path) as tmp:
            result = seg_fast.write_labelmap(
                pixels.pixel, pixels.segments, reference, tmp,
                transfer_syntax_uid=compression.uid, messages=fast_messages, **series.kwargs(),
            )
    except seg_fast.NotSupported:
        return None  # e.g. non-ASCII text: highdicom + finalize_dataset write it
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - private APIs, see the docstring
        _log.warning("fast SEG writer failed (%s: %s); writing with highdicom instead",
                     type(exc).__name__, exc)
        return None
    messages.extend(fast_messages)
    return result


def _write_highdicom(pixels: SegPixels, reference: ReferenceSeries, out_path: Path, compression: Compression,
                     series: _SeriesAttributes, messages: list[str], where: str) -> tuple[str, int]:
    """Write with highdicom; (TransferSyntaxUID, NumberOfFrames) of the file.

    Raises
    ------
    UserError
        The file cannot be written, naming ``out_path``.
    """
    ds = highdicom_writer.build_dataset(pixels, reference, compression=compression, messages=messages,
                                        **series.kwargs())
    if pixels.binary:
        messages.append(f"{where}: overlapping segments written as BINARY SEG (66.4), not LABELMAP")
    highdicom_writer.save(ds, out_path)
    return str(ds.file_meta.TransferSyntaxUID), int(getattr(ds, "NumberOfFrames", 0))


def write_seg(
    labelmap: LabelMap,
    reference: ReferenceSeries,
    out_path: str | Path,
    *,
    compression: "Compression | str" = DEFAULT_COMPRESSION,
    series_description: str = "Segmentation",
    series_number: int = 100,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    content_label: str = "SEGMENTATION",
    content_description: str | None = None,
    content_creator_name: str | None = None,
    allow_binary: bool = False,
    resample: "Resample | str" = Resample.NONE,
    force: bool = False,
    source_name: str | None = None,
    content_datetime: datetime | None = None,
    warn: Callable[[str], None] | None = None,
) -> WriteResult:
    """Write ``labelmap`` as a SEG referencing ``reference``.

    Parameters
    ----------
    labelmap : LabelMap on any grid on the reference lattice (or any grid with
        ``resample="nearest"``).
    reference : the image series the SEG refers to (Study, Frame of Reference and
        ReferencedSeriesSequence are taken from it).
    out_path : file to create; an existing file is refused unless ``force``.
    compression : transfer syntax (default: Deflated Explicit VR Little Endian).
    series_instance_uid, sop_instance_uid : default: derived deterministically from the
        reference series, ``series_description`` and the voxel content.
    allow_binary : write BINARY (66.4) instead of refusing overlapping segments.
    source_name : name of the input for messages.
    content_datetime : ContentDate/ContentTime and SeriesDate/SeriesTime to record (e.g. the
        source file's modification time, so re-running a migration writes identical
        files); default: now.

    Returns
    -------
    WriteResult
        What was written, by which writer, with every warning (``warn`` gets one line per
        kind of warning).

    Raises
    ------
    OutputExistsError
        ``out_path`` exists and ``force`` is false.
    OverlapError
        Segments share voxels and ``allow_binary`` is false.
    UserError
        Any other user mistake or unwritable output: a missing output folder, text that does
        not fit its VR, JPEG 2000 for frames under 32x32, labels off the reference grid
        (without ``resample``), label values without a segment, no segments; the message
        names the input and what to do.
    """
    t0 = time.perf_counter()
    where = source_name or "segmentation"
    out_path = Path(out_path)
    compression = Compression.parse(compression)
    resample = Resample(resample)
    _check_request(out_path, force=force, compression=compression, reference=reference, texts={
        "SeriesDescription": series_description, "ContentDescription": content_description,
        "ContentLabel": content_label, "ContentCreatorName": content_creator_name})
    array = align_to_grid(labelmap.array, labelmap.grid, reference.grid, resample=resample, what=where)
    pixels = seg_pixels(LabelMap(array, reference.grid, list(labelmap.segments)), allow_binary=allow_binary,
                        where=where)
    series_uid, sop_uid = _instance_uids(pixels, reference, series_description, series_instance_uid,
                                         sop_instance_uid)
    series = _SeriesAttributes(
        series_instance_uid=series_uid, sop_instance_uid=sop_uid, series_number=int(series_number),
        series_description=series_description, content_label=content_label,
        content_description=content_description, content_datetime=content_datetime,
        hd_kwargs=dict(manufacturer=MANUFACTURER, manufacturer_model_name="AdaptiveBrushDicom",
                       software_versions=__version__, device_serial_number="0",
                       content_creator_name=content_creator_name),
    )
    messages: list[str] = []
    fast = _write_fast(pixels, reference, out_path, compression, series, messages)
    if fast is not None:
        writer, transfer_syntax_uid, n_frames = SegWriter.FAST, fast.transfer_syntax_uid, fast.n_frames
    else:
        writer = SegWriter.HIGHDICOM
        transfer_syntax_uid, n_frames = _write_highdicom(pixels, reference, out_path, compression, series,
                                                         messages, where)
    if warn:
        for w in summarize_warnings(messages):  # one line per kind; res.warnings keeps them all
            warn(w)
    return WriteResult(
        path=out_path,
        sop_class_uid=SegSopClass.SEGMENTATION if pixels.binary else SegSopClass.LABELMAP,
        transfer_syntax_uid=transfer_syntax_uid,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        n_frames=n_frames,
        n_segments=len(pixels.segments),
        size_bytes=out_path.stat().st_size,
        seconds=time.perf_counter() - t0,
        binary_fallback=pixels.binary,
        warnings=messages,
        writer=writer,
        header=fast.header if fast is not None else None,
    )
