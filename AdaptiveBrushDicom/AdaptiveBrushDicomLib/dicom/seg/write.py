"""Write a :class:`~.labelmap.LabelMap` as a DICOM Segmentation.

LABELMAP (Label Map Segmentation Storage, 1.2.840.10008.5.1.4.1.1.66.7) is written by
default. Pixel values are DICOM SegmentNumbers 1..N (in the order of
``labelmap.segments``); the original label values are kept so a reader restores them
(see ``segment_dicom``). Overlapping segments cannot be a LABELMAP: they are refused, or
written as BINARY (1.2.840.10008.5.1.4.1.1.66.4) when ``allow_binary`` is given.

highdicom builds the object (with Explicit VR Little Endian when Deflate is asked for);
pydicom then deflates it on save. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import enum
import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from AdaptiveBrushDicomLib import MANUFACTURER, __version__
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.core.align import Resample, align_to_grid
from AdaptiveBrushDicomLib.io.atomic import atomic_output
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression
from AdaptiveBrushDicomLib.errors import OutputExistsError, OverlapError, UserError
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.messages import summarize_warnings
from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.core.segment import Segment

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

    @property
    def is_labelmap(self) -> bool:
        return self.sop_class_uid == SegSopClass.LABELMAP


@dataclass
class Overlap:
    """Two segments sharing voxels."""

    first: Segment
    second: Segment
    voxels: int

    def __str__(self) -> str:
        return f"'{self.first.name}' and '{self.second.name}' share {self.voxels} voxels"


def find_overlaps(labelmap: LabelMap) -> list[Overlap]:
    """Pairs of segments (in different layers) that share voxels, with voxel counts.

    Cost: one pass per pair of layers over voxels that are non-zero in both layers.
    """
    if labelmap.n_layers == 1:
        return []
    found: list[Overlap] = []
    n = labelmap.n_layers
    for a in range(n):
        la = labelmap.layer(a)
        for b in range(a + 1, n):
            lb = labelmap.layer(b)
            both = (la != 0) & (lb != 0)
            if not both.any():
                continue
            pairs, counts = np.unique(np.stack([la[both], lb[both]]), axis=1, return_counts=True)
            for (va, vb), c in zip(pairs.T, counts):
                sa, sb = labelmap.segment_by_label(int(va), a), labelmap.segment_by_label(int(vb), b)
                if sa is not None and sb is not None:
                    found.append(Overlap(sa, sb, int(c)))
    return found


def flatten_layers(labelmap: LabelMap) -> tuple[np.ndarray, list[Segment]]:
    """Merge non-overlapping layers into one (k, j, i) array; labels stay unique by
    relabelling segments of later layers whose value is already used."""
    if labelmap.n_layers == 1:
        return labelmap.array, list(labelmap.segments)
    used: set[int] = set()
    out = np.zeros(labelmap.grid.shape_kji, dtype=np.int64)
    segments = []
    next_free = 1 + max((s.label for s in labelmap.segments), default=0)
    for s in labelmap.segments:
        label = s.label
        if label in used:
            label, next_free = next_free, next_free + 1
        used.add(label)
        out[labelmap.mask(s)] = label
        segments.append(replace(s, label=label, layer=0))
    return out, segments


def _check_segments(array: np.ndarray, segments: list[Segment], where: str) -> None:
    from collections import Counter

    labels = [s.label for s in segments]
    dup = {v for v, c in Counter(labels).items() if c > 1}  # linear: 70,000 labels took minutes
    if dup:
        raise UserError(f"{where}: several segments use label value(s) {sorted(dup)}")
    bad = [s.label for s in segments if s.label <= 0]
    if bad:
        raise UserError(f"{where}: segment label values must be >= 1, got {bad}")
    missing = _undescribed_labels(array, labels)
    if missing:
        raise UserError(
            f"{where}: label value(s) {missing[:10]} have no segment description; "
            "describe them (e.g. --metadata) or remove them"
        )


def _undescribed_labels(array: np.ndarray, labels: list[int]) -> list[int]:
    """Non-zero values of ``array`` that are not in ``labels``, sorted.

    Cost: min and max (two fast passes) when the labels cover 1..max, the usual case;
    otherwise one pass of a lookup table (never np.unique: it hashes every voxel)."""
    if array.size == 0:
        return []
    lo, hi = int(array.min()), int(array.max())
    described = set(labels)
    if lo >= 0 and hi <= len(described) and all(v in described for v in range(1, hi + 1)):
        return []
    if lo >= 0 and hi < 1 << 22:
        seen = np.zeros(hi + 1, dtype=bool)
        seen[array.ravel()] = True
        present = np.flatnonzero(seen)
    else:
        present = np.unique(array)
    return sorted(set(int(v) for v in present if v != 0) - described)


def _labels_to_segment_numbers(array: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """Map label values to SegmentNumbers 1..N (segment order) with at most one pass.

    When every segment's label already equals its number (labels 1..N in order) the
    array is returned as it is (or cast once to the pixel dtype): no pass at all."""
    n = len(segments)
    dtype = np.uint8 if n < 256 else np.uint16
    max_label = max(s.label for s in segments) if segments else 0
    if all(s.label == number for number, s in enumerate(segments, start=1)) and array.size:
        if array.dtype == dtype:
            return array
        if np.issubdtype(array.dtype, np.integer) and int(array.min()) >= 0 and int(array.max()) <= n:
            return array.astype(dtype)
    if max_label < 1 << 22:
        lut = np.zeros(max_label + 1, dtype=dtype)
        for number, s in enumerate(segments, start=1):
            lut[s.label] = number
        return np.take(lut, array)
    out = np.zeros(array.shape, dtype=dtype)
    for number, s in enumerate(segments, start=1):
        out[array == s.label] = number
    return out


def _same_across_highdicom_versions(ds: Any, binary: bool) -> None:
    """Attributes that highdicom 0.27 and 0.28 write differently, made the same (and what
    the fast writer writes): ContentCreatorName is Type 2 in the Content Identification
    macro (0.28 omits it when empty), a MONOCHROME2 LABELMAP has PresentationLUTShape
    IDENTITY (0.27 omits it)."""
    if "ContentCreatorName" not in ds:
        ds.ContentCreatorName = None
    if not binary and ds.get("PhotometricInterpretation") == "MONOCHROME2" and "PresentationLUTShape" not in ds:
        ds.PresentationLUTShape = "IDENTITY"


def _in_source_frame_order(pixel: np.ndarray, reference: ReferenceSeries) -> np.ndarray:
    """``pixel`` ((k, j, i[, segment]) on the reference grid) with its slices in the order
    of the source's frames, which highdicom expects for a multi-frame source image
    (frame f of the source is slice k where ``reference.frame_numbers[k] == f``)."""
    if reference.frame_numbers is None:
        return pixel
    slice_of_frame = np.empty(len(reference.frame_numbers), dtype=np.int64)
    slice_of_frame[np.asarray(reference.frame_numbers) - 1] = np.arange(len(reference.frame_numbers))
    return pixel[slice_of_frame]


def _deterministic(ds, reference: ReferenceSeries, content_datetime: datetime | None) -> None:
    """Replace what highdicom makes up per build (a random DimensionOrganizationUID, the
    clock in ContributionDateTime) by values derived from the inputs, as the fast path
    does, so the same input always gives the same bytes."""
    dim_uid = uids.derive_uid("dimension-organization", reference.series_instance_uid)
    for item in getattr(ds, "DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = dim_uid
    for item in getattr(ds, "DimensionIndexSequence", []):
        if "DimensionOrganizationUID" in item:
            item.DimensionOrganizationUID = dim_uid
    if content_datetime is None:
        return
    date, tm = content_datetime.strftime("%Y%m%d"), content_datetime.strftime("%H%M%S")
    ds.ContentDate = ds.SeriesDate = ds.InstanceCreationDate = date
    ds.ContentTime = ds.SeriesTime = ds.InstanceCreationTime = tm
    for item in getattr(ds, "ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = date + tm


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
    """
    from pydicom.uid import UID

    t0 = time.perf_counter()
    where = source_name or "segmentation"
    out_path = Path(out_path)
    compression = Compression.parse(compression)
    resample = Resample(resample)
    if out_path.exists() and not force:
        raise OutputExistsError("output exists; choose another path or pass --force", out_path)
    if not out_path.parent.is_dir():
        raise UserError("output folder does not exist; create it first", out_path.parent)
    from AdaptiveBrushDicomLib.dicom.text_values import check_series_text

    for keyword, value in (("SeriesDescription", series_description), ("ContentDescription", content_description),
                           ("ContentLabel", content_label), ("ContentCreatorName", content_creator_name)):
        check_series_text(keyword, value)
    messages: list[str] = []
    rows, cols = reference.grid.shape_kji[1:]
    if compression is Compression.JPEG2000 and rows < 32 and cols < 32:
        raise UserError(
            f"JPEG 2000 cannot encode frames smaller than 32x32 pixels (these are {rows}x{cols}); "
            "choose another compression (e.g. deflate)"
        )

    array = align_to_grid(labelmap.array, labelmap.grid, reference.grid, resample=resample, what=where)
    aligned = LabelMap(array, reference.grid, list(labelmap.segments))

    binary = False
    overlaps = find_overlaps(aligned)
    if overlaps:
        if not allow_binary:
            listing = "; ".join(str(o) for o in overlaps[:10])
            raise OverlapError(
                f"{where}: overlapping segments cannot be stored as a LABELMAP SEG: {listing}. "
                "Remove the overlap or pass --allow-binary to write a BINARY SEG (66.4)"
            )
        binary = True
        segments = list(aligned.segments)
    else:
        array, segments = flatten_layers(aligned)
        _check_segments(array, segments, where)
    if not segments:
        raise UserError(f"{where}: no segments to write")

    if binary:
        pixel = np.zeros(reference.grid.shape_kji + (len(segments),), dtype=bool)
        for n, s in enumerate(segments):
            pixel[..., n] = aligned.mask(s)
    else:
        pixel = _labels_to_segment_numbers(array, segments)

    if series_instance_uid and sop_instance_uid:
        series_uid, sop_uid = series_instance_uid, sop_instance_uid
    else:
        # content = voxels + everything said about the segments (dataclass reprs are stable),
        # so re-describing the same voxels never reuses a SOP Instance UID
        digest = uids.derive_uid(uids.content_digest(np.asarray(pixel), reference.grid), repr(segments))
        series_uid = series_instance_uid or uids.seg_series_uid(
            reference.series_instance_uid, series_description, digest)
        sop_uid = sop_instance_uid or uids.derive_uid("seg-instance", series_uid, digest)
    hd_kwargs: dict[str, Any] = dict(
        manufacturer=MANUFACTURER,
        manufacturer_model_name="AdaptiveBrushDicom",
        software_versions=__version__,
        device_serial_number="0",
        content_creator_name=content_creator_name,
    )
    from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast

    fast = None
    # a multi-frame source's frames are not one file per slice: highdicom writes those
    if seg_fast.supported(compression.uid, binary) and pixel.any() and not reference.is_multiframe:
        fast_messages: list[str] = []
        try:
            with atomic_output(out_path) as tmp:
                fast = seg_fast.write_labelmap(
                    pixel, segments, reference, tmp,
                    transfer_syntax_uid=compression.uid,
                    hd_kwargs=hd_kwargs,
                    series_instance_uid=series_uid,
                    sop_instance_uid=sop_uid,
                    series_number=int(series_number),
                    series_description=series_description,
                    content_label=content_label,
                    content_description=content_description,
                    content_datetime=content_datetime,
                    messages=fast_messages,
                )
            messages.extend(fast_messages)
        except seg_fast.NotSupported:
            fast = None  # e.g. non-ASCII text: highdicom + finalize_dataset write it
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - the fast path uses private highdicom/pydicom
            # APIs that may change in any release: never let them break an export, write
            # the same SEG with highdicom instead (and say why, for bug reports)
            fast = None
            _log.warning("fast SEG writer failed (%s: %s); writing with highdicom instead",
                         type(exc).__name__, exc)
    if fast is not None:
        if warn:
            for w in summarize_warnings(messages):  # one line per kind; res.warnings keeps them all
                warn(w)
        return WriteResult(
            path=out_path,
            sop_class_uid=SegSopClass.LABELMAP,
            transfer_syntax_uid=fast.transfer_syntax_uid,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            n_frames=fast.n_frames,
            n_segments=len(segments),
            size_bytes=out_path.stat().st_size,
            seconds=time.perf_counter() - t0,
            binary_fallback=False,
            warnings=messages,
            writer=SegWriter.FAST,
        )

    import highdicom as hd

    from AdaptiveBrushDicomLib.dicom.segment_item import to_segment_description

    descriptions = []
    for number, seg in enumerate(segments, start=1):
        desc, msgs = to_segment_description(seg, number)
        descriptions.append(desc)
        messages.extend(msgs)
    if binary:
        messages.append(f"{where}: overlapping segments written as BINARY SEG (66.4), not LABELMAP")
    seg_type = hd.seg.SegmentationTypeValues.BINARY if binary else hd.seg.SegmentationTypeValues.LABELMAP
    build_ts = Compression.EXPLICIT.uid if compression is Compression.DEFLATE else compression.uid

    with warnings.catch_warnings():
        # the source series' PatientName is not ours to fix; highdicom warns about
        # one-component names on every build
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg_ds = hd.seg.Segmentation(
            source_images=reference.datasets,
            pixel_array=_in_source_frame_order(pixel, reference),
            segmentation_type=seg_type,
            segment_descriptions=descriptions,
            series_instance_uid=series_uid,
            series_number=int(series_number),
            sop_instance_uid=sop_uid,
            instance_number=1,
            content_label=content_label,
            content_description=content_description,
            series_description=series_description,
            transfer_syntax_uid=build_ts,
            omit_empty_frames=True,
            **hd_kwargs,
        )
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset

    finalize_dataset(seg_ds, segments)
    write_segment_private(seg_ds, segments)
    _same_across_highdicom_versions(seg_ds, binary)
    ds = seg_ds
    _deterministic(ds, reference, content_datetime)
    texts = (series_description, content_description, content_creator_name)
    if any(t is not None and not str(t).isascii() for t in texts) and "ISO_IR 192" not in \
            list(getattr(ds, "SpecificCharacterSet", None) or []):
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8 for non-ASCII series text (e.g. a run name)
    if compression is Compression.DEFLATE:
        ds.file_meta.TransferSyntaxUID = UID(Compression.DEFLATE.uid)
    with atomic_output(out_path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    if warn:
        for w in summarize_warnings(messages):  # one line per kind; res.warnings keeps them all
            warn(w)
    return WriteResult(
        path=out_path,
        sop_class_uid=SegSopClass.SEGMENTATION if binary else SegSopClass.LABELMAP,
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        n_frames=int(getattr(ds, "NumberOfFrames", 0)),
        n_segments=len(segments),
        size_bytes=out_path.stat().st_size,
        seconds=time.perf_counter() - t0,
        binary_fallback=binary,
        warnings=messages,
    )


