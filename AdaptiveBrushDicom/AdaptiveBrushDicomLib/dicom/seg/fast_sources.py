"""What the fast writer's template needs of each source image, without reading it with pydicom.

The per-frame functional group items, the source image references and the checks of
:mod:`.fast_header` need a handful of values per slice: SOP Class/Instance UIDs, series
and frame of reference, size, orientation and ImagePositionPatient (as a number and as the
DS text pydicom would write). Reading 100 source headers with pydicom for them was ~0.2 s of
a single ``abdicom export``; the reference series already walked every header
(:mod:`~.dicom.reference_headers`), so a :class:`SourceSlice` is taken from the walked
header when it holds these values in the form pydicom reads them, and from the header read
with pydicom otherwise (a file the walker did not read, an element with another VR, a
position pydicom's DS conversion does not give back as the walker's numbers): the values
are then exactly those the pydicom-only template used (tested on corpus and synthetic
series, file bytes compared).
"""

from __future__ import annotations

from collections.abc import MutableSequence
from dataclasses import dataclass
from typing import Any, Sequence

from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.reference_headers import ImageHeader
from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import NotSupported

_SOP_CLASS, _SOP_INSTANCE, _SERIES = 0x00080016, 0x00080018, 0x0020000E
_POSITION, _ORIENTATION = 0x00200032, 0x00200037


@dataclass(frozen=True)
class SourceSlice:
    """One single-frame source image as the template sees it.

    Attributes
    ----------
    sop_class_uid, sop_instance_uid, series_instance_uid : str
    frame_of_reference_uid : str or None
        None when the image has no FrameOfReferenceUID.
    rows, columns : int
        0 when absent.
    orientation : tuple of float
        ImageOrientationPatient (row then column direction cosines, LPS); ``()`` when absent.
    position : tuple of 3 float
        ImagePositionPatient of the first pixel (mm, LPS).
    position_text : str
        ImagePositionPatient as the per-frame PlanePositionSequence writes it: pydicom's
        ``DS(value, auto_format=True)`` of every value, joined by ``\\``.
    """

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str | None
    rows: int
    columns: int
    orientation: tuple[float, ...]
    position: tuple[float, ...]
    position_text: str


def ds_text(values: Sequence[Any]) -> str:
    """Decimal strings as pydicom writes ``[DS(v, auto_format=True) for v in values]``."""
    from pydicom.valuerep import DS

    return "\\".join(str(DS(v, auto_format=True)) for v in values)


def from_dataset(ds: Any) -> SourceSlice:
    """The slice of a pydicom dataset (what the template read before the walker).

    Raises
    ------
    NotSupported
        No ImagePositionPatient.
    AttributeError
        No SOPClassUID or SOPInstanceUID (the template cannot reference the image; the
        caller writes with highdicom).
    """
    if "ImagePositionPatient" not in ds:
        raise NotSupported("source image without ImagePositionPatient")
    frame_of_reference = ds.get("FrameOfReferenceUID")
    position = ds.ImagePositionPatient
    return SourceSlice(
        sop_class_uid=str(ds.SOPClassUID), sop_instance_uid=str(ds.SOPInstanceUID),
        series_instance_uid=str(ds.get("SeriesInstanceUID")),
        frame_of_reference_uid=None if frame_of_reference is None else str(frame_of_reference),
        rows=int(ds.get("Rows", 0)), columns=int(ds.get("Columns", 0)),
        orientation=tuple(float(v) for v in ds.get("ImageOrientationPatient") or ()),
        position=tuple(float(v) for v in position), position_text=ds_text(position),
    )


def _walked_ds(raw: walker.RawDataset, tag: int, expected: tuple[float, ...]) -> Any:
    """pydicom's conversion of a walked DS element, checked against the walker's numbers.

    Raises
    ------
    NotSupported
        Not a DS element, or pydicom's values are not the walker's (pydicom decides).
    """
    from pydicom.values import convert_DS_string

    vr, value = raw[tag]
    if vr != "DS":
        raise NotSupported(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not DS")
    try:
        converted = convert_DS_string(bytes(value), True)
        values = list(converted) if isinstance(converted, MutableSequence) else [converted]
        if tuple(float(v) for v in values) != expected:
            raise NotSupported("pydicom reads other numbers")
    except (ValueError, TypeError):
        raise NotSupported("pydicom does not read these numbers") from None
    return values


def from_walked(header: ImageHeader) -> SourceSlice:
    """The slice of a walked header, equal to :func:`from_dataset` of the same file.

    Raises
    ------
    NotSupported
        Not walked, or a value the walker does not hold the way pydicom reads it.
    """
    plane = header.plane
    if plane is None:
        raise NotSupported("not walked")
    raw = plane.raw
    if _SOP_CLASS not in raw or not plane.sop_class_uid or _ORIENTATION not in raw:
        raise NotSupported("no SOP class or orientation")
    position = _walked_ds(raw, _POSITION, plane.position)
    _walked_ds(raw, _ORIENTATION, plane.orientation)
    return SourceSlice(
        sop_class_uid=plane.sop_class_uid, sop_instance_uid=plane.sop_instance_uid,
        series_instance_uid=plane.series_instance_uid, frame_of_reference_uid=plane.frame_of_reference_uid,
        rows=plane.rows, columns=plane.columns, orientation=plane.orientation, position=plane.position,
        position_text=ds_text(position),
    )


def source_slices(headers: Sequence[ImageHeader]) -> list[SourceSlice]:
    """Every header's :class:`SourceSlice`: walked where possible, else read with pydicom.

    Raises
    ------
    NotSupported
        A pydicom-read image without ImagePositionPatient.
    AttributeError
        A pydicom-read image without SOP Class/Instance UID.
    """
    out = []
    for h in headers:
        try:
            out.append(from_walked(h))
        except (NotSupported, walker.NotSupported, walker.Malformed):
            out.append(from_dataset(h.pydicom_dataset()))
    return out


__all__ = ["SourceSlice", "ds_text", "from_dataset", "from_walked", "source_slices"]
