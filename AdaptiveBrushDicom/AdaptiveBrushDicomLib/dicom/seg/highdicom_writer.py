"""The reference SEG encoder: ``highdicom.seg.Segmentation`` plus pydicom.

Used for what the fast writer (:mod:`.fast`) does not write (BINARY, RLE / JPEG-LS /
JPEG 2000, non-ASCII text, multi-frame sources, empty segmentations) and whenever the
fast writer fails. highdicom builds the object (with Explicit VR Little Endian when
Deflate is asked for); pydicom deflates it on save. What highdicom makes up per build
(a random DimensionOrganizationUID, the clock) is replaced by values derived from the
inputs, so the same input always gives the same bytes.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg.labels import SegPixels
from AdaptiveBrushDicomLib.io.atomic import atomic_output

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def _same_across_highdicom_versions(ds: Dataset, binary: bool) -> None:
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


def _deterministic(ds: Dataset, reference: ReferenceSeries, content_datetime: datetime | None) -> None:
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


def _segment_descriptions(segments: list[Segment], messages: list[str]) -> list[Any]:
    """highdicom ``SegmentDescription`` of each segment (SegmentNumber 1..N, in order);
    warnings about their metadata are appended to ``messages``."""
    from AdaptiveBrushDicomLib.dicom.segment_item import to_segment_description

    descriptions = []
    for number, seg in enumerate(segments, start=1):
        desc, msgs = to_segment_description(seg, number)
        descriptions.append(desc)
        messages.extend(msgs)
    return descriptions


def build_dataset(
    pixels: SegPixels,
    reference: ReferenceSeries,
    *,
    compression: Compression,
    hd_kwargs: dict[str, Any],
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int,
    series_description: str,
    content_label: str,
    content_description: str | None,
    content_datetime: datetime | None,
    messages: list[str],
) -> Dataset:
    """The SEG dataset of ``pixels`` referencing ``reference``, ready to save.

    Parameters
    ----------
    pixels : SegPixels
        Pixel data on ``reference.grid`` and the segment of each SegmentNumber.
    reference : ReferenceSeries
        The image series the SEG refers to.
    compression : Compression
        The transfer syntax of the file (Deflate is built as Explicit VR Little Endian and
        deflated by pydicom on save).
    hd_kwargs : dict
        Keyword arguments of ``highdicom.seg.Segmentation`` that are the same for every
        SEG of this package (manufacturer, software versions, content creator).
    content_datetime : datetime or None
        Content/series/instance date and time; ``None`` = now (highdicom's clock).
    messages : list of str
        Warnings about segment metadata are appended here.
    """
    import highdicom as hd
    from pydicom.uid import UID

    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset

    descriptions = _segment_descriptions(pixels.segments, messages)
    seg_type = hd.seg.SegmentationTypeValues.BINARY if pixels.binary else hd.seg.SegmentationTypeValues.LABELMAP
    build_ts = Compression.EXPLICIT.uid if compression is Compression.DEFLATE else compression.uid
    with warnings.catch_warnings():
        # the source series' PatientName is not ours to fix; highdicom warns about
        # one-component names on every build
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        ds: Dataset = hd.seg.Segmentation(
            source_images=reference.datasets,
            pixel_array=_in_source_frame_order(pixels.pixel, reference),
            segmentation_type=seg_type,
            segment_descriptions=descriptions,
            series_instance_uid=series_instance_uid,
            series_number=series_number,
            sop_instance_uid=sop_instance_uid,
            instance_number=1,
            content_label=content_label,
            content_description=content_description,
            series_description=series_description,
            transfer_syntax_uid=build_ts,
            omit_empty_frames=True,
            **hd_kwargs,
        )
    finalize_dataset(ds, pixels.segments)
    write_segment_private(ds, pixels.segments)
    _same_across_highdicom_versions(ds, pixels.binary)
    _deterministic(ds, reference, content_datetime)
    texts = (series_description, content_description, hd_kwargs.get("content_creator_name"))
    if any(t is not None and not str(t).isascii() for t in texts) and "ISO_IR 192" not in \
            list(getattr(ds, "SpecificCharacterSet", None) or []):
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8 for non-ASCII series text (e.g. a run name)
    if compression is Compression.DEFLATE:
        ds.file_meta.TransferSyntaxUID = UID(Compression.DEFLATE.uid)
    return ds


def save(ds: Dataset, out_path: Path) -> None:
    """Save ``ds`` to ``out_path`` through a temporary sibling and a rename.

    Raises
    ------
    UserError
        The file cannot be written (disk full, permission denied, ...), naming ``out_path``.
    """
    with atomic_output(out_path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
