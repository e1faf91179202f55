"""A :class:`~.segment.Segment` <-> one item of the DICOM SegmentSequence (0062,0002).

Mapping (details and the Slicer / slicerio / dcmqi equivalents in ``docs/metadata.md``):

============================  ==========================================================
Segment field                 DICOM (inside the SegmentSequence item)
============================  ==========================================================
name                          SegmentLabel (0062,0005) LO
description                   SegmentDescription (0062,0006) ST
terminology.category          SegmentedPropertyCategoryCodeSequence (0062,0003)
terminology.type              SegmentedPropertyTypeCodeSequence (0062,000F)
terminology.type_modifier     ... > SegmentedPropertyTypeModifierCodeSequence (0062,0011)
terminology.anatomic_region   AnatomicRegionSequence (0008,2218)
  ..._modifier                ... > AnatomicRegionModifierSequence (0008,2220)
algorithm_type                SegmentAlgorithmType (0062,0008)
algorithm_name                SegmentAlgorithmName (0062,0009) and
                              SegmentationAlgorithmIdentificationSequence (0062,0007)
                              > AlgorithmName (0066,0036)
algorithm_version             ... > AlgorithmVersion (0066,0031)
algorithm_parameters          ... > AlgorithmParameters (0066,0032): compact key-sorted JSON
color                         RecommendedDisplayCIELabValue (0062,000D)
segment_id, label, layer      TrackingID (0062,0020) "<segment_id> (label <L>[, layer <n>])"
                              + TrackingUID (0062,0021) derived from it (see
                              :func:`encode_slicer_extras`)
============================  ==========================================================

The values are decided and checked in :mod:`.segment_values` (over-long values raise
:class:`~.segment_text.SegmentMetadataError` naming the segment and the attribute;
nothing is cut silently). This module builds the item with highdicom (the reference path;
:mod:`.segment_dataset` builds the same item with pydicom alone for the fast writer),
post-processes a built SEG (:func:`finalize_dataset`) and reads items back
(:func:`from_segment_item`). highdicom is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from AdaptiveBrushDicomLib.core.colors import dicom_lab_to_rgb, rgb_to_dicom_lab
from AdaptiveBrushDicomLib.core.segment import TISSUE, AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.dicom.segment_text import UNSPECIFIED, format_parameters, parse_parameters
from AdaptiveBrushDicomLib.dicom.segment_values import item_values
from AdaptiveBrushDicomLib.dicom.tracking_id import decode_slicer_extras, tracking_uid

if TYPE_CHECKING:  # pragma: no cover
    import highdicom
    from pydicom.dataset import Dataset

__all__ = [
    "finalize_dataset",
    "from_segment_item",
    "segments_from_dataset",
    "to_segment_description",
]


# --------------------------------------------------------------------------- writing
def _concept(code: Code) -> "highdicom.sr.CodedConcept":
    from highdicom.sr import CodedConcept

    return CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


def to_segment_description(
    segment: Segment,
    segment_number: int,
    *,
    tracking_scope: str | None = None,
) -> tuple["highdicom.seg.SegmentDescription", list[str]]:
    """Build the SegmentSequence item for one segment with highdicom.

    Parameters
    ----------
    segment : Segment
    segment_number : int
        DICOM SegmentNumber (1..65535); in a LABELMAP SEG this is the pixel value.
    tracking_scope : str, optional
        Mixed into the TrackingUID (e.g. the StudyInstanceUID); :func:`finalize_dataset`
        re-derives it from the dataset's StudyInstanceUID anyway.

    Returns
    -------
    (highdicom.seg.SegmentDescription, warnings)
        Warnings are one-line messages for the user, e.g. that Tissue/Tissue was written
        because the segment has no terminology.

    Raises
    ------
    SegmentMetadataError
        A value exceeds its VR limit, contains forbidden characters, a coding scheme is
        unknown, or parameters are not JSON-serialisable; the message names the segment
        and the attribute (:func:`~.segment_values.item_values`).
    """
    import highdicom as hd

    values, warnings = item_values(segment, segment_number, tracking_scope=tracking_scope)
    identification = None
    if values.algorithm is not None:
        family = values.algorithm.family
        identification = hd.AlgorithmIdentificationSequence(
            name=values.algorithm.name,
            family=hd.sr.CodedConcept(family.value, family.scheme, family.meaning),
            version=values.algorithm.version,
        )
        if values.algorithm.parameters is not None:
            identification[0].AlgorithmParameters = values.algorithm.parameters
    region = None if values.anatomic_region is None else _concept(values.anatomic_region)
    desc = hd.seg.SegmentDescription(
        segment_number=values.number,
        segment_label=values.label,
        segmented_property_category=_concept(values.category),
        segmented_property_type=_concept(values.type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues(values.algorithm_type.value),
        algorithm_identification=identification,
        tracking_id=values.tracking_id,
        tracking_uid=values.tracking_uid,
        anatomic_regions=None if region is None else [region],
    )
    if values.type_modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _concept(values.type_modifier)]
    if region is not None and values.anatomic_region_modifier is not None:
        desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [_concept(values.anatomic_region_modifier)]
    if values.description is not None:
        desc.SegmentDescription = values.description
    # set the uint16 triple directly: highdicom's CIELabColor rounds its own conversion
    desc.RecommendedDisplayCIELabValue = list(values.lab)
    return desc, warnings


def finalize_dataset(dataset: "Dataset", segments: Sequence[Segment] | None = None) -> "Dataset":
    """Post-process a SEG built by highdicom from :func:`to_segment_description` items.

    * AlgorithmParameters of segment ``n`` is (re)set to :func:`format_parameters` of
      ``segments[n - 1]`` (highdicom itself would write ``key=value,...``);
    * TrackingUID is re-derived from the dataset's StudyInstanceUID and the TrackingID,
      so the same Slicer segment is tracked across all SEGs of one study;
    * SpecificCharacterSet becomes ``ISO_IR 192`` (UTF-8) when a segment's text (names,
      descriptions, code meanings) or a top-level text (ContentDescription,
      SeriesDescription, ContentCreatorName, ...) is not ASCII, so such text is encoded
      correctly;
    * the Background segment 0 of a LABELMAP gets a black RecommendedDisplayCIELabValue
      (when it has none), so viewers that list segment 0 show it black, not in an
      arbitrary colour. (dcmqi 1.5.7 skips segment 0; its "Failed to get CIELab values"
      comes from user segments without a colour, which :func:`to_segment_description`
      never writes.)

    Parameters
    ----------
    dataset : pydicom Dataset (e.g. a ``highdicom.seg.Segmentation``), changed in place.
    segments : the segments in SegmentNumber order (1..N), optional.

    Returns
    -------
    The same dataset.
    """
    study = str(getattr(dataset, "StudyInstanceUID", "") or "")
    if _has_non_ascii_text(dataset.get("SegmentSequence", [])) or _has_non_ascii_text([dataset], recurse=False):
        charset = dataset.get("SpecificCharacterSet")
        values = [charset] if isinstance(charset, str) else list(charset or [])
        if values != ["ISO_IR 192"]:
            # values are Python strings here, so re-encoding everything as UTF-8 is lossless
            dataset.SpecificCharacterSet = "ISO_IR 192"
    for item in getattr(dataset, "SegmentSequence", []):
        number = int(item.SegmentNumber)
        if number == 0:
            if "RecommendedDisplayCIELabValue" not in item:
                item.RecommendedDisplayCIELabValue = list(rgb_to_dicom_lab((0, 0, 0)))
            continue
        if "TrackingID" in item and study:
            item.TrackingUID = tracking_uid(str(item.TrackingID), study)
        if segments is not None and 1 <= number <= len(segments):
            seg = segments[number - 1]
            alg = item.get("SegmentationAlgorithmIdentificationSequence")
            if alg and seg.algorithm_parameters is not None:
                alg[0].AlgorithmParameters = format_parameters(seg.algorithm_parameters, seg.name)
    return dataset


def _has_non_ascii_text(items: Any, recurse: bool = True) -> bool:
    """True when any text element of ``items`` (recursively into sequences unless
    ``recurse`` is False) has a non-ASCII character."""
    for item in items:
        for elem in item:
            if elem.VR == "SQ":
                if recurse and _has_non_ascii_text(elem.value):
                    return True
            elif elem.VR in ("LO", "ST", "LT", "UT", "SH", "PN", "UC"):
                value = elem.value
                texts = [value] if not isinstance(value, (list, tuple)) and value is not None else list(value or [])
                if any(not str(v).isascii() for v in texts):
                    return True
    return False


# --------------------------------------------------------------------------- reading
def _code_from_item(item: "Dataset | None") -> Code | None:
    if item is None:
        return None
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    scheme = item.get("CodingSchemeDesignator")
    meaning = item.get("CodeMeaning")
    if value is None and scheme is None and meaning is None:
        return None
    return Code(value=str(value or ""), scheme=str(scheme or ""), meaning=str(meaning or ""))


def _first(ds: "Dataset", keyword: str) -> "Dataset | None":
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _terminology_from_item(item: "Dataset") -> Terminology | None:
    """The item's codes; None when it has neither a category nor a type."""
    type_item = _first(item, "SegmentedPropertyTypeCodeSequence")
    category = _code_from_item(_first(item, "SegmentedPropertyCategoryCodeSequence"))
    type_ = _code_from_item(type_item)
    if category is None and type_ is None:
        return None
    modifier = None if type_item is None else _code_from_item(
        _first(type_item, "SegmentedPropertyTypeModifierCodeSequence"))
    region_item = _first(item, "AnatomicRegionSequence")
    region = _code_from_item(region_item)
    region_modifier = None if region_item is None else _code_from_item(
        _first(region_item, "AnatomicRegionModifierSequence"))
    return Terminology(
        category=category or TISSUE,
        type=type_ or TISSUE,
        type_modifier=modifier,
        anatomic_region=region,
        anatomic_region_modifier=region_modifier,
    )


def _algorithm_from_item(
    item: "Dataset", extra: dict[str, Any],
) -> tuple[AlgorithmType, str | None, str | None, dict[str, Any] | None]:
    """(algorithm type, name, version, parameters) of the item; what has no Segment field
    (a foreign algorithm type, unparsed parameters, the family code) goes into ``extra``."""
    raw_type = str(item.get("SegmentAlgorithmType") or "").strip().upper()
    try:
        algorithm_type = AlgorithmType(raw_type)
    except ValueError:
        algorithm_type = AlgorithmType.SEMIAUTOMATIC
        if raw_type:
            extra["dicom_algorithm_type"] = raw_type
    alg = _first(item, "SegmentationAlgorithmIdentificationSequence")
    alg_name = str(item.get("SegmentAlgorithmName") or "") or None
    version = None
    parameters = None
    if alg is not None:
        alg_name = str(alg.get("AlgorithmName") or "") or alg_name
        version = str(alg.get("AlgorithmVersion") or "") or None
        if "AlgorithmParameters" in alg:
            parameters, raw = parse_parameters(str(alg.AlgorithmParameters))
            if raw is not None:
                extra["algorithm_parameters_text"] = raw
        family = _code_from_item(_first(alg, "AlgorithmFamilyCodeSequence"))
        if family is not None:
            extra["algorithm_family"] = family
    return (algorithm_type, None if alg_name == UNSPECIFIED else alg_name,
            None if version == UNSPECIFIED else version, parameters)


def _slicer_fields(item: "Dataset", number: int, written_by_us: bool,
                   extra: dict[str, Any]) -> tuple[int, int, str | None]:
    """(label, layer, segment_id): ours from the private block / our TrackingID, else the
    SegmentNumber; a foreign TrackingID / TrackingUID goes into ``extra``."""
    from AdaptiveBrushDicomLib.dicom.private_tags import ours_label

    label, layer, segment_id = number, 0, None
    tid = item.get("TrackingID")
    marked = ours_label(item)
    extras = decode_slicer_extras(str(tid) if tid is not None else None) \
        if (marked is not None or written_by_us) else None
    if marked is not None and extras is not None and (extras.label, extras.layer) != marked:
        extras = None  # TrackingID edited elsewhere: the private values win, the text stays foreign
    if extras is not None:
        label, layer, segment_id = extras.label, extras.layer, extras.segment_id
    if marked is not None:
        label, layer = marked
    if extras is None and tid is not None:
        extra["tracking_id"] = str(tid)
        if item.get("TrackingUID"):
            extra["tracking_uid"] = str(item.TrackingUID)
    return label, layer, segment_id


def from_segment_item(item: "Dataset", *, written_by_us: bool = False) -> tuple[int, Segment]:
    """Read one SegmentSequence item (ours, highdicom's, dcmqi's, anyone's).

    Parameters
    ----------
    item : one SegmentSequence item.
    written_by_us : the file says it was written by this package
        (:func:`~.private_tags.written_by_us`); lets the TrackingID of files from before
        our private label element be trusted.

    Returns
    -------
    (segment_number, Segment)
        The segment's ``label`` is the original Slicer label value when the item is ours
        (our private block, :func:`~.private_tags.ours_label`, or ``written_by_us`` and
        our TrackingID encoding, :func:`~.tracking_id.encode_slicer_extras`), else the
        SegmentNumber: a foreign TrackingID is never parsed for a label.
        Foreign TrackingID / TrackingUID values are kept in ``segment.extra``
        (``"tracking_id"``, ``"tracking_uid"``). Context names are not stored in DICOM:
        the terminology gets Slicer's DICOM master list context names.
    """
    number = int(item.SegmentNumber)
    extra: dict[str, Any] = {}
    name = str(item.get("SegmentLabel") or "").strip() or f"Segment {number}"
    terminology = _terminology_from_item(item)
    algorithm_type, alg_name, version, parameters = _algorithm_from_item(item, extra)
    color = None
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        color = dicom_lab_to_rgb([int(v) for v in lab])
    description = item.get("SegmentDescription")
    description = str(description) if description not in (None, "") else None
    label, layer, segment_id = _slicer_fields(item, number, written_by_us, extra)
    return number, Segment(
        label=label,
        name=name,
        color=color,
        terminology=terminology,
        description=description,
        algorithm_type=algorithm_type,
        algorithm_name=alg_name,
        algorithm_version=version,
        algorithm_parameters=parameters,
        segment_id=segment_id,
        layer=layer,
        extra=extra,
    )


def segments_from_dataset(dataset: "Dataset", include_background: bool = False) -> dict[int, Segment]:
    """All described segments of a SEG, keyed by SegmentNumber.

    Segment 0 (the LABELMAP Background item) is left out unless asked for.
    """
    from AdaptiveBrushDicomLib.dicom.private_tags import written_by_us

    ours = written_by_us(dataset)
    out: dict[int, Segment] = {}
    for item in dataset.get("SegmentSequence", []):
        number, seg = from_segment_item(item, written_by_us=ours)
        if number == 0 and not include_background:
            continue
        out[number] = seg
    return out
