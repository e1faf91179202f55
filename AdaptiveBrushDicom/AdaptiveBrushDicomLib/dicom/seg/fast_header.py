"""The LABELMAP SEG header of a reference series, built with pydicom alone.

The fast writer's template (:mod:`.fast_template`) needs, once per reference series, the
SEG attributes that do not depend on the segmentation: patient, study, equipment, frame
of reference, the shared and per-frame functional groups of every slice, the source
image references. highdicom's ``Segmentation`` makes them, but its first use in a process
loads the DICOM standard's module tables (~0.5 s and ~110 MB of memory), which dominates a
single ``abdicom export``. This module builds the same dataset directly, following what
highdicom 0.28 writes for a LABELMAP of single-frame source images (the equivalence is
tested element by element against highdicom itself in ``Testing/Python/test_fast_path.py``):

* Patient / Study / Specimen: the root attributes of the Patient, Clinical Trial Subject,
  General Study, Patient Study, Clinical Trial Study and Specimen modules present in the
  first source image are copied (the module contents below are facts of DICOM PS3.3, the
  same for every image IOD);
* frames are ordered by the slices' distance along the normal ``column x row`` of
  ImageOrientationPatient (ascending), as highdicom orders them;
* SpacingBetweenSlices, when the source images have none, is the mean slice distance if
  the slices are regular within 1 % (else omitted);
* ContributingEquipmentSequence lists the source's acquisition equipment and this
  software (not highdicom, which did not write the file).

Only the first source image is read with pydicom (its modules are copied); what every
slice contributes (UIDs, geometry, the PlanePosition text) comes from its walked header as
a :class:`~.fast_sources.SourceSlice`, which equals what pydicom reads of the same file.

Anything else (multi-frame or tiled sources, images without a frame of reference) raises
:class:`~.fast_encoding.NotSupported`, and the SEG is written through highdicom.
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import numpy as np

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import NotSupported, encode_element, encode_sequence, encode_text
from AdaptiveBrushDicomLib.dicom.seg.fast_sources import SourceSlice
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass

#: Root attributes of the Patient and Clinical Trial Subject modules (PS3.3 C.7.1.1, C.7.1.3).
PATIENT_IE_ATTRIBUTES = (
    "ReferencedPatientSequence", "PatientName", "PatientID", "IssuerOfPatientID", "TypeOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "SourcePatientGroupIdentificationSequence",
    "GroupOfPatientsIdentificationSequence", "PatientBirthDate", "PatientBirthTime",
    "PatientBirthDateInAlternativeCalendar", "PatientDeathDateInAlternativeCalendar",
    "PatientAlternativeCalendar", "PatientSex", "QualityControlSubject", "StrainDescription",
    "StrainNomenclature", "StrainStockSequence", "StrainAdditionalInformation", "StrainCodeSequence",
    "GeneticModificationsSequence", "OtherPatientNames", "OtherPatientIDsSequence",
    "ReferencedPatientPhotoSequence", "EthnicGroupCodeSequence", "PatientSpeciesDescription",
    "PatientSpeciesCodeSequence", "PatientBreedDescription", "PatientBreedCodeSequence",
    "BreedRegistrationSequence", "ResponsiblePerson", "ResponsiblePersonRole", "ResponsibleOrganization",
    "PatientComments", "PatientIdentityRemoved", "DeidentificationMethod",
    "DeidentificationMethodCodeSequence", "ClinicalTrialSponsorName", "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName", "IssuerOfClinicalTrialProtocolID", "OtherClinicalTrialProtocolIDsSequence",
    "ClinicalTrialSiteID", "ClinicalTrialSiteName", "IssuerOfClinicalTrialSiteID", "ClinicalTrialSubjectID",
    "IssuerOfClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID", "IssuerOfClinicalTrialSubjectReadingID",
    "ClinicalTrialProtocolEthicsCommitteeName", "ClinicalTrialProtocolEthicsCommitteeApprovalNumber",
)
#: Root attributes of the General Study, Patient Study and Clinical Trial Study modules
#: (PS3.3 C.7.2.1, C.7.2.2, C.7.2.3).
STUDY_IE_ATTRIBUTES = (
    "StudyDate", "StudyTime", "AccessionNumber", "IssuerOfAccessionNumberSequence", "ReferringPhysicianName",
    "ReferringPhysicianIdentificationSequence", "ConsultingPhysicianName",
    "ConsultingPhysicianIdentificationSequence", "StudyDescription", "ProcedureCodeSequence",
    "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence", "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence", "ReferencedStudySequence", "StudyInstanceUID", "StudyID",
    "RequestingService", "RequestingServiceCodeSequence", "ReasonForPerformedProcedureCodeSequence",
    "AdmittingDiagnosesDescription", "AdmittingDiagnosesCodeSequence", "PatientAge", "PatientSize",
    "PatientSizeCodeSequence", "PatientBodyMassIndex", "MeasuredAPDimension", "MeasuredLateralDimension",
    "PatientWeight", "MedicalAlerts", "Allergies", "Occupation", "SmokingStatus", "AdditionalPatientHistory",
    "PregnancyStatus", "LastMenstrualDate", "PatientSexNeutered", "ReasonForVisit", "ReasonForVisitCodeSequence",
    "AdmissionID", "IssuerOfAdmissionIDSequence", "ServiceEpisodeID", "ServiceEpisodeDescription",
    "IssuerOfServiceEpisodeIDSequence", "PatientState", "ClinicalTrialTimePointID",
    "ClinicalTrialTimePointDescription", "LongitudinalTemporalOffsetFromEvent", "LongitudinalTemporalEventType",
    "ClinicalTrialTimePointTypeCodeSequence", "IssuerOfClinicalTrialTimePointID",
    "ConsentForClinicalTrialUseSequence",
)
#: Root attributes of the Specimen module (PS3.3 C.7.6.22).
SPECIMEN_ATTRIBUTES = (
    "ContainerIdentifier", "IssuerOfTheContainerIdentifierSequence", "AlternateContainerIdentifierSequence",
    "ContainerTypeCodeSequence", "ContainerDescription", "ContainerComponentSequence",
    "SpecimenDescriptionSequence",
)
#: highdicom's tolerance for "regularly spaced" slices (relative to the spacing).
SPACING_RTOL = 0.01

_DCM_CODES = {
    "acquisition": ("109101", "Acquisition Equipment"),
    "processing": ("109102", "Processing Equipment"),
    "source": ("121322", "Source image for image processing operation"),
    "segmentation": ("113076", "Segmentation"),
}


def _code(kind: str) -> Any:
    from pydicom.dataset import Dataset

    value, meaning = _DCM_CODES[kind]
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _ds_values(values: Sequence[Any]) -> list[Any]:
    from pydicom.valuerep import DS

    return [DS(v, auto_format=True) for v in values]


def check_sources(first: Any, slices: Sequence[SourceSlice]) -> None:
    """Check that these are single-frame images of one series with a frame of reference,
    one orientation and one size (what this module builds for).

    Parameters
    ----------
    first
        The first source image's pydicom dataset (its modules are copied).
    slices
        Every source image (the first included), see :mod:`.fast_sources`.

    Raises
    ------
    NotSupported
        They are not (the highdicom path writes such SEGs).
    """
    if not slices:
        raise NotSupported("no source images")
    keys = {(s.series_instance_uid, str(s.frame_of_reference_uid), s.rows, s.columns, s.orientation)
            for s in slices}
    if len(keys) != 1 or "FrameOfReferenceUID" not in first or int(first.get("NumberOfFrames", 1) or 1) != 1:
        raise NotSupported("not one series of single-frame images with one orientation")
    for kw in ("PixelSpacing", "SliceThickness", "ImageOrientationPatient", "PatientID", "StudyInstanceUID"):
        if kw not in first:
            raise NotSupported(f"source image without {kw}")


def _normal(slices: Sequence[SourceSlice]) -> np.ndarray:
    """The slice normal ``column x row`` of the first slice's ImageOrientationPatient (LPS)."""
    iop = np.array(slices[0].orientation, dtype=float)
    return np.cross(iop[3:], iop[:3])


def frame_order(slices: Sequence[SourceSlice]) -> list[int]:
    """Indices of ``slices`` in highdicom's frame order: ascending distance along the
    normal ``column x row`` of ImageOrientationPatient (LPS, mm).

    Raises
    ------
    NotSupported
        Two sources at the same position along the normal.
    """
    positions = np.array([s.position for s in slices], dtype=float)
    distances = positions @ _normal(slices)
    if len(np.unique(distances)) != len(distances):
        raise NotSupported("duplicate slice positions")
    return [int(i) for i in np.argsort(distances, kind="stable")]


def spacing_between_slices(slices: Sequence[SourceSlice], order: Sequence[int]) -> float | None:
    """Mean slice spacing (mm) along the normal when the slices are regular within
    :data:`SPACING_RTOL` and perpendicular to the planes, else ``None``."""
    if len(slices) < 2:
        return 1.0
    normal = _normal(slices)
    positions = np.array([slices[i].position for i in order], dtype=float)
    d = positions @ normal
    spacing = (d[-1] - d[0]) / (len(d) - 1)
    if not np.allclose(np.diff(d), spacing, rtol=SPACING_RTOL, atol=0.0):
        return None
    spans = positions[1:] - positions[0]
    spans /= np.linalg.norm(spans, axis=1)[:, None]
    if not np.all(np.abs(np.abs(spans @ normal) - 1.0) < 1e-3):
        return None
    return abs(float(spacing))


def _equipment(source: Any, when: datetime) -> list[Any]:
    from pydicom.dataset import Dataset

    items = []
    if source.get("Manufacturer"):
        acq = Dataset()
        acq.Manufacturer = source.Manufacturer
        acq.PurposeOfReferenceCodeSequence = [_code("acquisition")]
        for kw in ("ManufacturerModelName", "InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress",
                   "StationName", "DeviceSerialNumber", "SoftwareVersions"):
            if source.get(kw) is not None:
                setattr(acq, kw, copy.deepcopy(source.get(kw)))
        if source.get("AcquisitionDateTime") is not None:
            acq.ContributionDateTime = source.AcquisitionDateTime
        acq.ContributionDescription = "Acquisition equipment of the source image(s)"
        items.append(acq)
    ours = Dataset()
    ours.Manufacturer = "AdaptiveBrushDicom"
    ours.PurposeOfReferenceCodeSequence = [_code("processing")]
    ours.ManufacturerModelName = "AdaptiveBrushDicom"
    ours.SoftwareVersions = __version__
    ours.ContributionDateTime = when.strftime("%Y%m%d%H%M%S")
    ours.ContributionDescription = "Software used to create this instance"
    items.append(ours)
    return items


def _patient_study(ds: Any, src: Any) -> None:
    """What highdicom's base constructor sets, then the source's Patient/Study/Specimen
    module attributes copied over it."""
    from pydicom.valuerep import DA, TM

    ds.PatientID = src.get("PatientID")
    ds.PatientName = src.get("PatientName")
    ds.PatientBirthDate = DA(src.get("PatientBirthDate")) if src.get("PatientBirthDate") else None
    ds.PatientSex = src.get("PatientSex")
    ds.StudyInstanceUID = str(src.StudyInstanceUID)
    ds.AccessionNumber = src.get("AccessionNumber")
    ds.StudyID = src.get("StudyID")
    ds.StudyDate = DA(src.get("StudyDate")) if src.get("StudyDate") else None
    ds.StudyTime = TM(src.get("StudyTime")) if src.get("StudyTime") else None
    ds.ReferringPhysicianName = src.get("ReferringPhysicianName")
    for kw in SPECIMEN_ATTRIBUTES + PATIENT_IE_ATTRIBUTES + STUDY_IE_ATTRIBUTES:
        if kw in src:
            ds.add(copy.deepcopy(src[kw]))


def _code_bytes(kind: str) -> bytes:
    value, meaning = _DCM_CODES[kind]
    return (encode_text(0x00080100, "SH", value) + encode_text(0x00080102, "SH", "DCM")
            + encode_text(0x00080104, "LO", meaning))


def frame_item_body(src: SourceSlice) -> bytes:
    """Per-frame functional groups item (body, without item header) of the frame derived
    from source image ``src``: DerivationImage, FrameContent (DimensionIndexValues 1, the
    writer renumbers it) and PlanePosition, encoded Explicit VR LE as pydicom writes them."""
    ref = (encode_text(0x00081150, "UI", src.sop_class_uid) + encode_text(0x00081155, "UI", src.sop_instance_uid)
           + encode_text(0x0028135A, "CS", "YES") + encode_sequence(0x0040A170, [_code_bytes("source")]))
    derivation = encode_sequence(0x00082112, [ref]) + encode_sequence(0x00089215, [_code_bytes("segmentation")])
    content = encode_element(0x00209157, "UL", struct.pack("<I", 1))
    position = encode_text(0x00200032, "DS", src.position_text)
    return (encode_sequence(0x00089124, [derivation]) + encode_sequence(0x00209111, [content])
            + encode_sequence(0x00209113, [position]))


def source_references(slices: Sequence[SourceSlice]) -> tuple[bytes, bytes]:
    """SourceImageSequence and ReferencedSeriesSequence (Common Instance Reference), encoded."""
    refs = [encode_text(0x00081150, "UI", s.sop_class_uid) + encode_text(0x00081155, "UI", s.sop_instance_uid)
            for s in slices]
    series = encode_sequence(0x0008114A, refs) + encode_text(0x0020000E, "UI", slices[0].series_instance_uid)
    return encode_sequence(0x00082112, refs), encode_sequence(0x00081115, [series])


def _multiframe(ds: Any, src: Any, slices: Sequence[SourceSlice], dimension_organization_uid: str) -> list[int]:
    """Frame of reference, shared functional groups and dimensions (``src``: the first source
    image's pydicom dataset); returns the frame order (indices of ``slices``)."""
    from pydicom.dataset import Dataset
    from pydicom.valuerep import format_number_as_ds

    ds.FrameOfReferenceUID = src.FrameOfReferenceUID
    ds.PositionReferenceIndicator = src.get("PositionReferenceIndicator")
    ds.LossyImageCompression = src.get("LossyImageCompression", "00")
    if ds.LossyImageCompression == "01":
        for kw in ("LossyImageCompressionRatio", "LossyImageCompressionMethod"):
            if kw in src:
                ds.add(copy.deepcopy(src[kw]))
    index = Dataset()
    index.DimensionOrganizationUID = dimension_organization_uid
    index.DimensionIndexPointer = 0x00200032
    index.FunctionalGroupPointer = 0x00209113
    index.DimensionDescriptionLabel = "Image Position Patient"
    ds.DimensionIndexSequence = [index]
    org = Dataset()
    org.DimensionOrganizationUID = dimension_organization_uid
    ds.DimensionOrganizationSequence = [org]
    order = frame_order(slices)
    measures = Dataset()
    measures.PixelSpacing = _ds_values(src.PixelSpacing)
    measures.SliceThickness = _ds_values([src.SliceThickness])[0]
    if "SpacingBetweenSlices" in src:
        measures.SpacingBetweenSlices = _ds_values([src.SpacingBetweenSlices])[0]
    else:
        spacing = spacing_between_slices(slices, order)
        if spacing is not None:
            measures.SpacingBetweenSlices = format_number_as_ds(spacing)
    orientation = Dataset()
    orientation.ImageOrientationPatient = copy.deepcopy(src.ImageOrientationPatient)
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    return order


@dataclass(frozen=True)
class LabelmapHeader:
    """What :func:`labelmap_header` builds."""

    #: the top-level elements (pydicom, with file meta), without the large sequences below
    dataset: Any
    #: pre-encoded top-level elements: SourceImageSequence, ReferencedSeriesSequence
    encoded: dict[int, bytes]
    #: index into the slices of each frame, in frame order
    order: list[int]
    #: per-frame functional groups item bodies, in frame order
    frames: list[bytes]


def labelmap_header(
    first: Any,
    slices: Sequence[SourceSlice],
    *,
    bits: int,
    rows: int,
    columns: int,
    hd_kwargs: dict[str, Any],
    series_instance_uid: str,
    sop_instance_uid: str,
    dimension_organization_uid: str,
    when: datetime | None = None,
) -> LabelmapHeader:
    """A LABELMAP SEG dataset (with file meta) for these source images, without segments,
    per-frame pixel data or the per-SEG values the fast writer sets.

    Parameters
    ----------
    first
        The pydicom dataset of ``slices[0]`` (patient, study, equipment, pixel measures,
        orientation are taken from it).
    slices
        The reference series' single-frame images (any order), from
        :func:`~.fast_sources.source_slices`.
    bits
        BitsAllocated: 8 (< 256 segments) or 16.
    rows, columns
        Frame size (the source images' Rows/Columns).
    hd_kwargs
        manufacturer, manufacturer_model_name, software_versions, device_serial_number,
        content_creator_name, as given to highdicom's ``Segmentation``.

    Raises
    ------
    NotSupported
        Sources this module does not build for (see :func:`check_sources`).

    Returns
    -------
    LabelmapHeader
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    check_sources(first, slices)
    src = first
    when = when or datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.FileMetaInformationVersion = b"\x00\x01"
    ds.file_meta.MediaStorageSOPClassUID = UID(SegSopClass.LABELMAP.value)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"ABDICOM_{__version__}"[:16]
    charset = src.get("SpecificCharacterSet")
    if charset:
        ds.SpecificCharacterSet = charset
    _patient_study(ds, src)
    ds.SOPClassUID = SegSopClass.LABELMAP.value
    ds.SOPInstanceUID = sop_instance_uid
    ds.SeriesInstanceUID = series_instance_uid
    ds.InstanceNumber = 1
    ds.SeriesNumber = 1
    ds.Modality = "SEG"
    for kw, key in (("Manufacturer", "manufacturer"), ("ManufacturerModelName", "manufacturer_model_name"),
                    ("DeviceSerialNumber", "device_serial_number"), ("SoftwareVersions", "software_versions")):
        if hd_kwargs.get(key) is not None or kw == "Manufacturer":
            setattr(ds, kw, hd_kwargs.get(key))
    ds.ContributingEquipmentSequence = _equipment(src, when)
    ds.SegmentationType = "LABELMAP"
    # Type 2 in the Content Identification macro: present, empty when nobody is named
    ds.ContentCreatorName = hd_kwargs.get("content_creator_name")
    ds.PixelPaddingValue = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = rows, columns
    ds.SegmentsOverlap = "NO"
    order = _multiframe(ds, src, slices, dimension_organization_uid)
    ds.PixelData = b""
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    source_seq, series_seq = source_references(slices)
    return LabelmapHeader(ds, {0x00082112: source_seq, 0x00081115: series_seq}, order,
                          [frame_item_body(slices[i]) for i in order])


__all__ = ["NotSupported", "check_sources", "frame_order", "labelmap_header", "spacing_between_slices"]
