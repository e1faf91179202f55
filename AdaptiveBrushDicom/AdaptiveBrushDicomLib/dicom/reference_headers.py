"""One image header of a reference series: walked raw, read with pydicom only when needed.

Reading 100 headers with pydicom (and importing it) is most of what ``abdicom decode``
and ``export`` would wait for, while geometry and references need a dozen values. So
each file is walked with :mod:`~.dicom.walker`, and the values are kept as a
:class:`PlaneHeader`. pydicom reads a file instead, exactly as before, whenever the
walker says :class:`~.walker.NotSupported` or finds the bytes broken (so errors and
skipped files stay what pydicom makes of them), for a multi-frame image (functional
groups), and for any value the walker does not convert as pydicom would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError

_SOP_CLASS, _SOP_INSTANCE, _STUDY, _SERIES = 0x00080016, 0x00080018, 0x0020000D, 0x0020000E
_FRAME_OF_REFERENCE, _POSITION, _ORIENTATION = 0x00200052, 0x00200032, 0x00200037
_ROWS, _COLUMNS, _PIXEL_SPACING = 0x00280010, 0x00280011, 0x00280030
_SLICE_THICKNESS, _SPACING_BETWEEN_SLICES = 0x00180050, 0x00180088
_PER_FRAME = 0x52009230


@dataclass(frozen=True)
class PlaneHeader:
    """What geometry and references need of one single-frame image, as the walker read it.

    Attributes
    ----------
    sop_instance_uid, sop_class_uid, series_instance_uid : str
    study_instance_uid, frame_of_reference_uid : str or None
        None when the element is absent.
    orientation : tuple of 6 float
        ImageOrientationPatient (row then column direction cosines, LPS).
    position : tuple of 3 float
        ImagePositionPatient of the first pixel (mm, LPS).
    rows, columns : int
    pixel_spacing : tuple of 2 float
        PixelSpacing (row spacing = along j, column spacing = along i; mm).
    slice_spacing : float or None
        SpacingBetweenSlices, else SliceThickness (mm), as a single slice's spacing.
    raw : RawDataset
        The whole walked header (up to the pixel data), for other values (``walker.value``).
    """

    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str
    study_instance_uid: str | None
    frame_of_reference_uid: str | None
    orientation: tuple[float, ...]
    position: tuple[float, ...]
    rows: int
    columns: int
    pixel_spacing: tuple[float, ...]
    slice_spacing: float | None
    raw: walker.RawDataset


@dataclass
class ImageHeader:
    """One file of a reference series: walked (``plane``) or read with pydicom (``dataset``).

    Attributes
    ----------
    path : Path
    plane : PlaneHeader or None
        The walked values; None when pydicom read the file.
    dataset : pydicom.Dataset or None
        The header read with pydicom (no pixel data); None until something needs it.
    """

    path: Path
    plane: PlaneHeader | None = None
    dataset: Any = None

    @property
    def series_instance_uid(self) -> str:
        """SeriesInstanceUID (0020,000E)."""
        if self.plane is not None:
            return self.plane.series_instance_uid
        return str(self.dataset.SeriesInstanceUID)

    @property
    def is_multiframe(self) -> bool:
        """A multi-frame image: pydicom-read, without ImagePositionPatient at the top level."""
        return self.plane is None and "ImagePositionPatient" not in self.dataset

    def orientation(self) -> np.ndarray:
        """ImageOrientationPatient as 6 floats."""
        if self.plane is not None:
            return np.array(self.plane.orientation, dtype=float)
        return np.array(self.dataset.ImageOrientationPatient, dtype=float)

    def position(self) -> np.ndarray:
        """ImagePositionPatient as 3 floats (mm, LPS)."""
        if self.plane is not None:
            return np.array(self.plane.position, dtype=float)
        return np.array(self.dataset.ImagePositionPatient, dtype=float)

    def rows_columns(self) -> tuple[Any, Any]:
        """(Rows, Columns) as stored."""
        if self.plane is not None:
            return self.plane.rows, self.plane.columns
        return self.dataset.Rows, self.dataset.Columns

    def pixel_spacing(self) -> list[float]:
        """PixelSpacing (row spacing, column spacing) in mm."""
        if self.plane is not None:
            return list(self.plane.pixel_spacing)
        return [float(v) for v in self.dataset.PixelSpacing]

    def slice_spacing(self) -> Any:
        """SpacingBetweenSlices, else SliceThickness (None or 0 when neither is given)."""
        if self.plane is not None:
            return self.plane.slice_spacing
        return getattr(self.dataset, "SpacingBetweenSlices", None) or getattr(self.dataset, "SliceThickness", None)

    def pydicom_dataset(self) -> Any:
        """The header read with pydicom (read now if only walked so far; cached)."""
        if self.dataset is None:
            self.dataset = read_with_pydicom_dataset(self.path)
        return self.dataset


class _Skip:
    """Marker: the file is not an image of a series (the pydicom reader would skip it too)."""


_SKIP = _Skip()


def _text(ds: walker.RawDataset, tag: int) -> str | None:
    """An ASCII value as pydicom gives it (None when absent).

    Raises
    ------
    NotSupported
        Not a single ASCII value.
    """
    v = walker.value(ds, tag)
    if v is None:
        return None if tag not in ds else ""
    if not isinstance(v, str):
        raise walker.NotSupported("not text")
    return v


def _exactly(values: list[float] | None, n: int) -> tuple[float, ...]:
    """``n`` finite-or-not floats, else NotSupported (pydicom decides what to make of it).

    Raises
    ------
    NotSupported
        Absent or another number of values.
    """
    if values is None or len(values) != n:
        raise walker.NotSupported(f"not {n} values")
    return tuple(values)


def _single_int(ds: walker.RawDataset, tag: int) -> int:
    """One US/IS integer value.

    Raises
    ------
    NotSupported
        Absent, empty, several values or not an integer.
    """
    v = walker.value(ds, tag)
    if not isinstance(v, int):
        raise walker.NotSupported("not one integer")
    return v


def walked_slice_spacing(ds: walker.RawDataset) -> float | None:
    """SpacingBetweenSlices or, when absent/zero/empty, SliceThickness (mm) of a walked header
    (a slice's header or a SEG's PixelMeasures item).

    Raises
    ------
    NotSupported
        A value that is not one number.
    """
    for tag in (_SPACING_BETWEEN_SLICES, _SLICE_THICKNESS):
        v = walker.value(ds, tag)
        if v is not None and not isinstance(v, (int, float)):
            raise walker.NotSupported("spacing is not a number")
        if v:
            return float(v)
    return None


def plane_from_walked(ds: walker.RawDataset) -> PlaneHeader | _Skip | None:
    """The :class:`PlaneHeader` of a walked single-frame image; ``_SKIP`` for a file that is
    no image of a series; None when pydicom must decide (multi-frame, unusual values)."""
    if _POSITION not in ds or _ORIENTATION not in ds:
        # no image plane unless a multi-frame image's functional groups carry one
        return _SKIP if _PER_FRAME not in ds else None
    if _SERIES not in ds or _SOP_INSTANCE not in ds:
        return _SKIP
    try:
        return PlaneHeader(
            sop_instance_uid=_text(ds, _SOP_INSTANCE) or "",
            sop_class_uid=_text(ds, _SOP_CLASS) or "",
            series_instance_uid=_text(ds, _SERIES) or "",
            study_instance_uid=_text(ds, _STUDY),
            frame_of_reference_uid=_text(ds, _FRAME_OF_REFERENCE),
            orientation=_exactly(walker.numbers(ds, _ORIENTATION), 6),
            position=_exactly(walker.numbers(ds, _POSITION), 3),
            rows=_single_int(ds, _ROWS),
            columns=_single_int(ds, _COLUMNS),
            pixel_spacing=_exactly(walker.numbers(ds, _PIXEL_SPACING), 2),
            slice_spacing=walked_slice_spacing(ds),
            raw=ds,
        )
    except (walker.NotSupported, walker.Malformed):
        return None


def read_with_pydicom_dataset(path: Path) -> Any:
    """The header (no pixel data) read with pydicom, an empty SpecificCharacterSet removed.

    An empty (0008,0005) means the default repertoire; highdicom rejects the empty value,
    so it is dropped from the in-memory copy (the file is untouched).
    """
    ds = walker.dcmread(path, stop_before_pixels=True)  # capped inflate (deflate bombs)
    if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
        del ds.SpecificCharacterSet
    return ds


def _has_image_plane(ds: Any) -> bool:
    """A single-frame image plane, or a multi-frame image whose frames carry plane positions."""
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        return True
    if str(getattr(ds, "Modality", "")) == "SEG" or "PerFrameFunctionalGroupsSequence" not in ds:
        return False
    if "SegmentSequence" in ds:
        return False
    first = first_item(ds, "PerFrameFunctionalGroupsSequence")
    return first_item(first, "PlanePositionSequence") is not None or \
        first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "PlanePositionSequence") is not None


def first_item(ds: Any, name: str) -> Any:
    """First item of sequence ``name`` of a pydicom dataset (None: no dataset, absent, empty)."""
    seq = getattr(ds, name, None) if ds is not None else None
    return seq[0] if seq else None


def _with_pydicom(path: Path) -> ImageHeader | None:
    """The file read with pydicom (the reader before the walker): None when it is skipped."""
    from pydicom.errors import InvalidDicomError

    try:
        ds = read_with_pydicom_dataset(path)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError):
        return None
    if not _has_image_plane(ds):
        return None  # not an image plane (SEG, SR, ...)
    if "SeriesInstanceUID" not in ds or "SOPInstanceUID" not in ds:
        return None
    return ImageHeader(path, dataset=ds)


def read_image_header(path: Path) -> ImageHeader | None:
    """One file of a reference series folder; None when it is no image of a series.

    Walked when the walker reads it; otherwise (and for a broken or Deflated-bomb file,
    whose error pydicom's path raises as before) read with pydicom.

    Raises
    ------
    IncompleteFileError
        The file ends inside its header or (not Deflated) its pixel data.
    InputFileError
        A Deflated file that is corrupt or inflates past its header (as before the walker).
    """
    try:
        header = walker.read_header(path)
    except IncompleteFileError:
        raise  # cut short: pydicom would read what is there and skip the file or a part of it
    except (walker.NotSupported, InputFileError):  # LimitError is an InputFileError
        return _with_pydicom(path)
    try:
        walker.check_vrs(header.dataset)
    except walker.NotSupported:
        return _with_pydicom(path)
    plane = plane_from_walked(header.dataset)
    if isinstance(plane, _Skip):
        return None
    if plane is None:
        return _with_pydicom(path)
    return ImageHeader(path, plane=plane)


__all__ = ["ImageHeader", "PlaneHeader", "first_item", "plane_from_walked", "read_image_header",
           "read_with_pydicom_dataset", "walked_slice_spacing"]
