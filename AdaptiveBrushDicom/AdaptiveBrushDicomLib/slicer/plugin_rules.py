"""Decisions of the DICOM plugin (``DICOMLabelMapSegPlugin.py``): which files it claims, with
what confidence and name, and what a SEG file says it references.

Plain Python on header values (``slicer.dicomDatabase.fileValue`` strings); never imports
slicer, vtk, qt or ctk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.slicer.naming import sanitize_node_name


#: Registration key in ``slicer.modules.dicomPlugins`` (also the plugin's module name, which
#: the export dialog uses as ``exportable.pluginClass``).
PLUGIN_KEY = "DICOMLabelMapSegPlugin"
#: Key of the dcmqi based SEG plugin (Slicer core >= 5.12 and QuantitativeReporting).
OTHER_SEG_PLUGIN_KEY = "DICOMSegmentationPlugin"

#: Outranks Slicer's / QR's SEG plugin (0.95) and the scalar volume plugin (0.5), so
#: exactly one loadable is selected for a LABELMAP SEG series.
CONFIDENCE_LABELMAP = 0.99
#: For BINARY/FRACTIONAL SEG (66.4) when no other SEG plugin is available: above the
#: scalar volume plugin (0.5), far below the dcmqi plugin (0.95).
CONFIDENCE_BINARY_FALLBACK = 0.6

#: SOP classes the plugin may claim (dicom/sop_class.py); files of any other class are skipped.
SEG_SOP_CLASSES = SEG_SOP_CLASS_UIDS

#: Tags every loadable decision needs, as ``slicer.dicomDatabase.fileValue`` keys.
DICOM_TAGS: dict[str, str] = {
    "sopClassUID": "0008,0016",
    "instanceUID": "0008,0018",
    "modality": "0008,0060",
    "seriesDescription": "0008,103E",
    "seriesInstanceUID": "0020,000E",
    "seriesNumber": "0020,0011",
    "studyInstanceUID": "0020,000D",
    "frameOfReferenceUID": "0020,0052",
    "patientID": "0010,0020",
    "segmentationType": "0062,0001",
}

#: Slicer segment tag names (vtkSegment::GetTerminologyEntryTagName() is "TerminologyEntry";



@dataclass(frozen=True)
class SeriesHeader:
    """Header values of one candidate file, as ``slicer.dicomDatabase.fileValue`` returns
    them (empty string when absent)."""

    sop_class_uid: str = ""
    modality: str = ""
    series_description: str = ""
    series_number: str = ""
    sop_instance_uid: str = ""
    series_instance_uid: str = ""
    segmentation_type: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, str]) -> "SeriesHeader":
        """Build from a dict keyed like :data:`DICOM_TAGS` (missing keys -> "")."""

        def get(key: str) -> str:
            return str(values.get(key, "") or "").strip()

        return cls(
            sop_class_uid=get("sopClassUID"),
            modality=get("modality"),
            series_description=get("seriesDescription"),
            series_number=get("seriesNumber"),
            sop_instance_uid=get("instanceUID"),
            series_instance_uid=get("seriesInstanceUID"),
            segmentation_type=get("segmentationType"),
        )


@dataclass(frozen=True)
class ImportDecision:
    """What the DICOM plugin offers for one file."""

    claim: bool
    confidence: float = 0.0
    name: str = ""
    tooltip: str = ""
    warning: str = ""
    reason: str = ""


def loadable_name(series_number: str, series_description: str, default: str = "Segmentation") -> str:
    """Name shown in the DICOM browser and (made unique in the scene) given to the node:
    the SeriesDescription, sanitized (:func:`.naming.sanitize_node_name`).

    The SeriesNumber is left out: CrossSegmentationExplorer groups and lists segmentations
    by node name (keywords such as the algorithm or trial are in the description), and the
    name must not leak into the SeriesDescription of a re-export. ``series_number`` is
    accepted for the tooltip.
    """
    return sanitize_node_name(series_description, default)


def other_seg_plugin_enabled(registered: Iterable[str], disabled: Iterable[str] = ()) -> bool:
    """True when the dcmqi based ``DICOMSegmentationPlugin`` (Slicer >= 5.12 core or
    QuantitativeReporting) is registered and not disabled in the DICOM settings."""
    return OTHER_SEG_PLUGIN_KEY in set(registered) and OTHER_SEG_PLUGIN_KEY not in set(disabled)


def decide_import(header: SeriesHeader, *, other_seg_plugin: bool) -> ImportDecision:
    """Decide whether our plugin offers a loadable for one file.

    * LABELMAP SEG (66.7): always, confidence :data:`CONFIDENCE_LABELMAP` (0.99).
    * BINARY / FRACTIONAL SEG (66.4): only when no dcmqi plugin is available
      (``other_seg_plugin`` False), confidence :data:`CONFIDENCE_BINARY_FALLBACK`.
    * Anything else, or a file without SOPInstanceUID: no claim.
    """
    if not header.sop_instance_uid:
        return ImportDecision(False, reason="no SOPInstanceUID (0008,0018)")
    name = loadable_name(header.series_number, header.series_description)
    if header.sop_class_uid == SegSopClass.LABELMAP:
        return ImportDecision(
            True,
            CONFIDENCE_LABELMAP,
            name,
            tooltip=f"{name} (series {header.series_number or '?'}) - DICOM SEG (LABELMAP, Label Map Segmentation Storage) via AdaptiveBrushDicom",
        )
    if header.sop_class_uid == SegSopClass.SEGMENTATION:
        if other_seg_plugin:
            return ImportDecision(False, reason="BINARY SEG left to DICOMSegmentationPlugin")
        kind = header.segmentation_type or "BINARY"
        return ImportDecision(
            True,
            CONFIDENCE_BINARY_FALLBACK,
            name,
            tooltip=f"{name} - DICOM SEG ({kind}) via AdaptiveBrushDicom; overlapping segments load as separate layers",
        )
    return ImportDecision(False, reason=f"SOP Class {header.sop_class_uid or '(none)'} is not a SEG")




@dataclass(frozen=True)
class SegReferences:
    """What a SEG file says it was drawn on (for ``loadable.referencedInstanceUIDs``)."""

    series_instance_uid: str
    instance_uids: tuple[str, ...]
    study_instance_uid: str


#: Tags after the ones :func:`read_seg_references` needs (ReferencedSeriesSequence
#: (0008,1115), StudyInstanceUID (0020,000D)): the header walk stops before this one.
_AFTER_REFERENCES = 0x0020000E


def _references(series_items: list[tuple[str, list[str]]], study_uid: str) -> SegReferences:
    """SegReferences from (series UID, instance UIDs) per ReferencedSeriesSequence item:
    the first non-empty series UID, every item's instances (first occurrence kept)."""
    series_uid = next((uid for uid, _ in series_items if uid), "")
    instances: dict[str, None] = {}
    for _, uids in series_items:
        instances.update((u, None) for u in uids if u)
    return SegReferences(series_uid, tuple(instances), study_uid)


def _walked_references(path: str) -> SegReferences:
    """References read by the raw walker, inflating only the header up to (0020,000E).

    Raises
    ------
    NotSupported
        Not Explicit VR Little Endian (then pydicom reads it).
    InputFileError
        A corrupt header.
    """
    from AdaptiveBrushDicomLib.dicom import walker

    ds = walker.read_header(path, stop_before=_AFTER_REFERENCES).dataset
    items = []
    for item in walker.value(ds, 0x00081115, None) or []:
        refs = [str(walker.value(r, 0x00081155, "") or "") for r in walker.value(item, 0x0008114A, None) or []]
        items.append((str(walker.value(item, 0x0020000E, "") or ""), refs))
    return _references(items, str(walker.value(ds, 0x0020000D, "") or ""))


def read_seg_references(path: str) -> SegReferences:
    """ReferencedSeriesSequence of a SEG file, reading only the header elements needed.

    ``slicer.dicomDatabase.fileValue`` cannot look into sequences, so this one header read
    replaces Slicer's ``DICOMPlugin.addReferences`` (which reads every referenced file).
    The raw walker reads Explicit VR Little Endian files (every SEG writer's) and inflates
    a Deflated file only up to these elements (~1 ms for a 256x256x100 trial instead of
    ~12 ms through pydicom, which inflates the whole file); pydicom reads anything else.

    Raises
    ------
    InputFileError
        The header is corrupt (names the file and the byte offset).
    pydicom.errors.InvalidDicomError, OSError
        pydicom cannot read a file the walker does not read.
    """
    from AdaptiveBrushDicomLib.dicom.walker import NotSupported

    try:
        return _walked_references(path)
    except NotSupported:
        pass
    import pydicom

    ds = pydicom.dcmread(
        path, stop_before_pixels=True, specific_tags=["ReferencedSeriesSequence", "StudyInstanceUID"]
    )
    items = [(str(getattr(item, "SeriesInstanceUID", "")),
              [str(getattr(r, "ReferencedSOPInstanceUID", "")) for r in getattr(item, "ReferencedInstanceSequence", None) or []])
             for item in getattr(ds, "ReferencedSeriesSequence", None) or []]
    return _references(items, str(getattr(ds, "StudyInstanceUID", "")))
