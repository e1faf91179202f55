"""What the SEG decoder asks of a file, whoever parsed it: :class:`SegSource`.

Two sources implement it: :class:`~.seg.source_walked.WalkedSource` (the raw walker, no
pydicom: Explicit VR Little Endian or Deflated LABELMAP SEGs with native pixel data,
ours and most others) and :class:`~.seg.source_pydicom.PydicomSource` (every other
file). The decoder (:func:`~.seg.read.read_seg`) calls the methods in one fixed order,
so a broken file gets the same error from either source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.errors import InputFileError

#: (positions (n, 3) mm LPS, ImageOrientationPatient (6,), PixelSpacing (row, column) mm,
#: slice spacing mm or None)
FrameGeometry = tuple[np.ndarray, np.ndarray, list[float], float | None]


class SegSource(Protocol):
    """A parsed SEG file, as the decoder reads it (methods in the order it calls them)."""

    path: Path

    def loaded_dataset(self) -> Any:
        """The file as a pydicom dataset if it was read with pydicom, else None."""

    def sop_class_uid(self) -> str:
        """SOPClassUID ("" when absent)."""

    def segmentation_type(self, sop_class: str) -> str:
        """SegmentationType (LABELMAP for the LABELMAP SOP class when absent)."""

    def referenced_series_uid(self) -> str | None:
        """SeriesInstanceUID of the first ReferencedSeriesSequence item (None: no item)."""

    def frame_of_reference_uid(self) -> str | None:
        """FrameOfReferenceUID (None when absent or empty)."""

    def dimensions(self) -> tuple[int, int, int]:
        """(Rows, Columns, NumberOfFrames)."""

    def refuse_2d(self) -> None:
        """Refuse slide-microscopy and 2D SEGs (:func:`~.seg.sanity.refuse_2d`)."""

    def frame_geometry(self) -> FrameGeometry:
        """Positions, orientation, pixel spacing and slice spacing of the frames."""

    def segments(self, seg_type: str) -> dict[int, Segment]:
        """Segments by SegmentNumber (LABELMAP Background item left out)."""

    def bits_allocated(self) -> int:
        """BitsAllocated (0 when absent)."""

    def check_pixel_data(self, n: int, rows: int, cols: int) -> None:
        """Refuse pixel data longer than declared, or frames whose codestream says another size."""

    def pixels(self, seg_type: str, n: int, rows: int, cols: int) -> np.ndarray:
        """The frames (n, rows, cols)."""

    def padding(self) -> int | None:
        """PixelPaddingValue (None when absent)."""

    def frame_segments(self, n: int) -> np.ndarray | None:
        """ReferencedSegmentNumber of every frame (BINARY / FRACTIONAL)."""

    def max_fractional_value(self) -> float:
        """MaximumFractionalValue (255 when absent)."""

    def identity(self) -> dict[str, str]:
        """transfer_syntax_uid, series/sop/study_instance_uid and series_description."""


def check_pixel_data_length(length: int, n: int, rows: int, cols: int, samples: int, bits: int, path: Path) -> None:
    """Refuse native PixelData longer than Rows x Columns x NumberOfFrames x BitsAllocated
    declare (beyond the one pad byte to an even length).

    Decision: an error, not a note. Such a file is inconsistent (NumberOfFrames, Rows or
    BitsAllocated is wrong, or two objects were concatenated) and which bytes are the
    frames cannot be known; reading the first part "without a word" is what issue 14 found.
    Shorter PixelData is left to the decoder, which refuses it.

    Raises
    ------
    InputFileError
        PixelData longer than declared.
    """
    expected = -(-n * rows * cols * samples * bits // 8)  # bits 1: packed, rounded up
    if length > expected + (expected % 2):
        raise InputFileError(
            f"PixelData (7FE0,0010) has {length:,} bytes, but Rows {rows} x Columns {cols} x NumberOfFrames "
            f"{n} x BitsAllocated {bits} declare {expected:,}; the file is inconsistent (wrong NumberOfFrames?): "
            "ask the producer for a corrected file",
            path,
        )


def decode_error(exc: BaseException) -> str:
    """A library's exception in one short line (for "malformed SEG (...)" messages)."""
    if isinstance(exc, RecursionError):
        return "sequences nested too deeply"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


__all__ = ["FrameGeometry", "SegSource", "check_pixel_data_length", "decode_error"]
