"""Voxel count and volume (mL) of every segment of a SEG, by SegmentNumber (``abdicom info``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from AdaptiveBrushDicomLib.analysis.compare import label_boxes
from AdaptiveBrushDicomLib.analysis.metrics import voxel_volume_ml


@dataclass(frozen=True)
class SegmentVolume:
    """One segment's size: ``voxels`` labelled voxels, ``volume_ml`` = voxels x voxel volume."""

    number: int
    name: str
    voxels: int
    volume_ml: float


def segment_volumes(path: str | Path) -> list[SegmentVolume]:
    """Decode the SEG (any writer, no reference needed) and measure each segment.

    The voxel volume is the product of the grid spacing the decoder derives from the
    frames (PixelSpacing and the distance between frame positions), in mm³ / 1000.
    Segments are listed by SegmentNumber; numbers are paired with decoded segments in
    SegmentNumber order (the order :func:`~.dicom.seg.read.read_seg` returns them in).

    Raises
    ------
    InputFileError
        The file is not a readable SEG.
    """
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    decoded = read_seg(path)
    lm = decoded.labelmap
    numbers = decoded.segment_numbers  # no pydicom dataset: a walked SEG is counted without pydicom
    counts = label_boxes(lm.array)
    ml = voxel_volume_ml(lm.grid.spacing_ijk)
    out = []
    # read_seg adds a "Segment <n>" record (label n) for each undescribed pixel value n,
    # in SegmentNumber order among the described ones
    extra = len(lm.segments) - len(numbers)
    described = iter(numbers)
    for seg in lm.segments:
        if extra > 0 and seg.label not in numbers and seg.name == f"Segment {seg.label}":
            number, extra = seg.label, extra - 1
        else:
            number = next(described, seg.label)
        voxels = counts.get((seg.layer, seg.label), (None, 0))[1]
        out.append(SegmentVolume(number, seg.name, voxels, voxels * ml))
    return out


__all__ = ["SegmentVolume", "segment_volumes"]
