"""Header summary of a SEG file (``abdicom info``), read without decoding pixels.

Imports only pydicom (no highdicom / SimpleITK) so the command starts quickly.
"""

from __future__ import annotations


from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import LABELMAP_SEG_SOP_CLASS_UID, SEG_SOP_CLASS_UID
from .errors import InputFileError

_TS_NAMES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
}


def _code(seq) -> str | None:
    if not seq:
        return None
    c = seq[0]
    return f"{c.CodingSchemeDesignator}:{c.CodeValue} {c.CodeMeaning}"


@dataclass
class SegmentInfo:
    number: int
    label: str
    category: str | None
    type: str | None
    type_modifier: str | None
    anatomic_region: str | None
    algorithm_type: str | None
    algorithm_name: str | None
    algorithm_parameters: str | None
    color_rgb: list[int] | None
    description: str | None
    tracking_id: str | None = None
    anatomic_region_modifier: str | None = None


@dataclass
class SegInfo:
    path: str
    sop_class_uid: str
    sop_class: str
    transfer_syntax_uid: str
    transfer_syntax: str
    segmentation_type: str
    frames: int
    rows: int
    columns: int
    patient_id: str
    study_instance_uid: str
    study_description: str
    series_instance_uid: str
    series_description: str
    series_number: str
    referenced_series_uid: str | None
    referenced_instances: int
    frame_of_reference_uid: str
    content_label: str
    manufacturer: str
    software_versions: str
    size_bytes: int
    segments: list[SegmentInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [
            f"{self.path} ({self.size_bytes:,} bytes)",
            f"  SOP class         {self.sop_class} ({self.sop_class_uid})",
            f"  transfer syntax   {self.transfer_syntax} ({self.transfer_syntax_uid})",
            f"  type              {self.segmentation_type}, {self.frames} frames of {self.rows}x{self.columns}",
            f"  patient / study   {self.patient_id} / {self.study_description} ({self.study_instance_uid})",
            f"  series            {self.series_number}: {self.series_description} ({self.series_instance_uid})",
            f"  references series {self.referenced_series_uid} ({self.referenced_instances} instances)",
            f"  written by        {self.manufacturer} {self.software_versions}",
            f"  segments          {len(self.segments)}",
        ]
        for s in self.segments:
            rgb = "" if s.color_rgb is None else " rgb(%d,%d,%d)" % tuple(s.color_rgb)
            lines.append(f"   {s.number:>4}  {s.label}{rgb}")
            lines.append(f"         category {s.category}; type {s.type}"
                         + (f" ({s.type_modifier})" if s.type_modifier else ""))
            if s.anatomic_region:
                mod = f" ({s.anatomic_region_modifier})" if s.anatomic_region_modifier else ""
                lines.append(f"         region   {s.anatomic_region}{mod}")
            if s.tracking_id:
                lines.append(f"         tracking {s.tracking_id}")
            alg = s.algorithm_type or ""
            if s.algorithm_name:
                alg += f" {s.algorithm_name}"
            lines.append(f"         algorithm {alg.strip()}")
            if s.algorithm_parameters:
                lines.append(f"         parameters {s.algorithm_parameters}")
            if s.description:
                lines.append(f"         description {s.description}")
        return "\n".join(lines)


def seg_info(path: str | Path) -> SegInfo:
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise InputFileError("no such file; check the path", path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputFileError(f"not a readable DICOM file ({exc})", path) from None
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop not in (LABELMAP_SEG_SOP_CLASS_UID, SEG_SOP_CLASS_UID):
        raise InputFileError(f"SOPClassUID (0008,0016) {sop or 'missing'} is not a Segmentation", path)
    from .colors import dicom_lab_to_rgb

    segments = []
    for item in getattr(ds, "SegmentSequence", []):
        lab = getattr(item, "RecommendedDisplayCIELabValue", None)
        rgb = None if lab is None else [int(v) for v in dicom_lab_to_rgb([int(v) for v in lab])]
        alg = getattr(item, "SegmentationAlgorithmIdentificationSequence", None)
        params = str(alg[0].AlgorithmParameters) if alg and "AlgorithmParameters" in alg[0] else None
        type_seq = getattr(item, "SegmentedPropertyTypeCodeSequence", None)
        region = getattr(item, "AnatomicRegionSequence", None)
        modifier = None
        if type_seq and "SegmentedPropertyTypeModifierCodeSequence" in type_seq[0]:
            modifier = _code(type_seq[0].SegmentedPropertyTypeModifierCodeSequence)
        segments.append(SegmentInfo(
            number=int(item.SegmentNumber),
            label=str(getattr(item, "SegmentLabel", "")),
            category=_code(getattr(item, "SegmentedPropertyCategoryCodeSequence", None)),
            type=_code(type_seq),
            type_modifier=modifier,
            anatomic_region=_code(getattr(item, "AnatomicRegionSequence", None)),
            algorithm_type=str(getattr(item, "SegmentAlgorithmType", "")) or None,
            algorithm_name=str(getattr(item, "SegmentAlgorithmName", "")) or None,
            algorithm_parameters=params,
            color_rgb=rgb,
            description=str(getattr(item, "SegmentDescription", "")) or None,
            tracking_id=str(getattr(item, "TrackingID", "")) or None,
            anatomic_region_modifier=_code(getattr(region[0], "AnatomicRegionModifierSequence", None))
            if region else None,
        ))
    ref = getattr(ds, "ReferencedSeriesSequence", None)
    ref_uid = str(ref[0].SeriesInstanceUID) if ref else None
    n_ref = len(ref[0].ReferencedInstanceSequence) if ref and "ReferencedInstanceSequence" in ref[0] else 0
    ts = str(ds.file_meta.TransferSyntaxUID)
    return SegInfo(
        path=str(path),
        sop_class_uid=sop,
        sop_class="Label Map Segmentation Storage" if sop == LABELMAP_SEG_SOP_CLASS_UID else "Segmentation Storage",
        transfer_syntax_uid=ts,
        transfer_syntax=_TS_NAMES.get(ts, ts),
        segmentation_type=str(getattr(ds, "SegmentationType", "")),
        frames=int(getattr(ds, "NumberOfFrames", 1)),
        rows=int(ds.Rows), columns=int(ds.Columns),
        patient_id=str(getattr(ds, "PatientID", "")),
        study_instance_uid=str(getattr(ds, "StudyInstanceUID", "")),
        study_description=str(getattr(ds, "StudyDescription", "")),
        series_instance_uid=str(getattr(ds, "SeriesInstanceUID", "")),
        series_description=str(getattr(ds, "SeriesDescription", "")),
        series_number=str(getattr(ds, "SeriesNumber", "")),
        referenced_series_uid=ref_uid,
        referenced_instances=n_ref,
        frame_of_reference_uid=str(getattr(ds, "FrameOfReferenceUID", "")),
        content_label=str(getattr(ds, "ContentLabel", "")),
        manufacturer=str(getattr(ds, "Manufacturer", "")),
        software_versions=str(getattr(ds, "SoftwareVersions", "")),
        size_bytes=path.stat().st_size,
        segments=segments,
    )


__all__ = ["seg_info", "SegInfo", "SegmentInfo"]
