"""What one SegmentSequence item says about a :class:`~.segment.Segment`, checked.

:func:`item_values` makes every decision of the Segment -> item mapping (the table in
:mod:`.segment_item`): Tissue/Tissue for a segment without terminology, the algorithm
identification and its family, the TrackingID, the colour. Both item builders use it:
:func:`~.segment_item.to_segment_description` (highdicom, the reference path) and
:func:`~.segment_dataset.segment_dataset` (pydicom alone, the fast writer), so the two
cannot disagree on a value, a check or a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from AdaptiveBrushDicomLib.core.colors import color_for_terminology, default_color, rgb_to_dicom_lab
from AdaptiveBrushDicomLib.core.segment import TISSUE, AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.core.terminology import TerminologyError, check_code
from AdaptiveBrushDicomLib.dicom.algorithm_family import algorithm_family
from AdaptiveBrushDicomLib.dicom.segment_text import UNSPECIFIED, SegmentMetadataError, check_text, format_parameters
from AdaptiveBrushDicomLib.dicom.tracking_id import encode_slicer_extras, tracking_uid
from AdaptiveBrushDicomLib.errors import UserError

__all__ = ["AlgorithmValues", "ItemValues", "item_values"]


@dataclass(frozen=True)
class AlgorithmValues:
    """SegmentationAlgorithmIdentificationSequence (0062,0007), one item."""

    name: str  # AlgorithmName (also the item's SegmentAlgorithmName)
    version: str  # AlgorithmVersion
    family: Code  # AlgorithmFamilyCodeSequence, CID 7162
    parameters: str | None  # AlgorithmParameters: compact JSON, or None


@dataclass(frozen=True)
class ItemValues:
    """The checked values of one SegmentSequence item (before our private block)."""

    number: int  # SegmentNumber (1..65535); the pixel value in a LABELMAP
    label: str  # SegmentLabel
    category: Code
    type: Code
    type_modifier: Code | None
    anatomic_region: Code | None
    anatomic_region_modifier: Code | None  # only with an anatomic region
    algorithm_type: AlgorithmType
    algorithm: AlgorithmValues | None
    tracking_id: str
    tracking_uid: str
    description: str | None
    lab: tuple[int, int, int]  # RecommendedDisplayCIELabValue (DICOM-scaled uint16)


def _checked_code(code: Code, what: str, segment_name: str) -> Code:
    """``code`` after the terminology and CodeMeaning checks.

    Raises
    ------
    SegmentMetadataError
        An unknown coding scheme, an empty value, or a CodeMeaning over 64 characters.
    """
    try:
        check_code(code, f"segment {segment_name!r} {what}")
    except TerminologyError as exc:
        raise SegmentMetadataError(str(exc)) from None
    check_text(code.meaning, "CodeMeaning", segment_name, what)
    return code


def _algorithm(segment: Segment, algorithm_type: AlgorithmType, warnings: list[str]) -> AlgorithmValues | None:
    """The algorithm identification: required unless MANUAL, written for a MANUAL segment
    that names an algorithm, a version or parameters.

    Raises
    ------
    SegmentMetadataError
        Parameters that are not JSON-serialisable, or a name / version over 64 characters.
    """
    name = segment.name
    params_text = None
    if segment.algorithm_parameters is not None:
        params_text = format_parameters(segment.algorithm_parameters, name)
    has_algorithm = bool(segment.algorithm_name or segment.algorithm_version) or params_text is not None
    if algorithm_type is AlgorithmType.MANUAL and not has_algorithm:
        return None
    alg_name = segment.algorithm_name or UNSPECIFIED
    if not segment.algorithm_name and algorithm_type is not AlgorithmType.MANUAL:
        warnings.append(
            f"segment {name!r}: {algorithm_type.value} segment without an algorithm name; "
            f"AlgorithmName written as {UNSPECIFIED!r}"
        )
    check_text(alg_name, "AlgorithmName", name)
    version = segment.algorithm_version or UNSPECIFIED
    check_text(version, "AlgorithmVersion", name)
    return AlgorithmValues(alg_name, version, algorithm_family(segment.algorithm_name, algorithm_type), params_text)


def _lab(segment: Segment, terminology: Terminology, number: int) -> tuple[int, int, int]:
    """The colour as DICOM CIELab; a segment without one gets its terminology's colour or
    a palette colour (so segments stay distinguishable).

    Raises
    ------
    SegmentMetadataError
        The colour is not an 8-bit RGB triple.
    """
    color = segment.color
    if color is None:
        color = (color_for_terminology(terminology.type) if segment.terminology is not None else None) \
            or default_color(number - 1)
    try:
        return tuple(int(v) for v in rgb_to_dicom_lab(tuple(color)))  # type: ignore[return-value]  # 3 values
    except (UserError, TypeError, ValueError) as exc:
        raise SegmentMetadataError(
            f"segment {segment.name!r}: colour {color!r} is not an 8-bit RGB triple ({exc})") from None


def item_values(segment: Segment, number: int, *, tracking_scope: str | None = None) -> tuple[ItemValues, list[str]]:
    """Check ``segment`` and decide every value of its SegmentSequence item.

    Parameters
    ----------
    segment : Segment
    number : int
        DICOM SegmentNumber (1..65535); in a LABELMAP SEG this is the pixel value.
    tracking_scope : str, optional
        Mixed into the TrackingUID (e.g. the StudyInstanceUID).

    Returns
    -------
    (ItemValues, warnings)
        Warnings are one-line messages for the user, e.g. that Tissue/Tissue was written
        because the segment has no terminology.

    Raises
    ------
    SegmentMetadataError
        The name is empty, a value exceeds its VR limit or contains forbidden characters,
        a coding scheme is unknown, the algorithm type is not one of DICOM's three,
        parameters are not JSON-serialisable, or the colour is not RGB; the message names
        the segment and the attribute.
    """
    name = segment.name
    if not isinstance(name, str) or not name.strip():
        raise SegmentMetadataError(f"segment with label value {segment.label}: SegmentLabel (name) is empty")
    if not 1 <= int(number) <= 65535:
        raise SegmentMetadataError(f"segment {name!r}: SegmentNumber {number} is not within 1..65535")
    check_text(name, "SegmentLabel", name)
    warnings: list[str] = []
    terminology = segment.terminology
    if terminology is None:
        terminology = Terminology()
        warnings.append(
            f"segment {name!r}: no terminology; written as category and type "
            f"{TISSUE.meaning} ({TISSUE.scheme} {TISSUE.value})"
        )
    category = _checked_code(terminology.category, "category", name)
    type_ = _checked_code(terminology.type, "type", name)
    region = terminology.anatomic_region
    if region is not None:
        region = _checked_code(region, "anatomic region", name)
    try:
        algorithm_type = AlgorithmType(segment.algorithm_type)
    except ValueError:
        raise SegmentMetadataError(
            f"segment {name!r}: SegmentAlgorithmType {segment.algorithm_type!r} is not AUTOMATIC, "
            "SEMIAUTOMATIC or MANUAL"
        ) from None
    algorithm = _algorithm(segment, algorithm_type, warnings)
    tracking_id, extra_warnings = encode_slicer_extras(segment)
    warnings.extend(extra_warnings)
    modifier = terminology.type_modifier
    if modifier is not None:
        modifier = _checked_code(modifier, "type modifier", name)
    region_modifier = terminology.anatomic_region_modifier if region is not None else None
    if region_modifier is not None:
        region_modifier = _checked_code(region_modifier, "anatomic region modifier", name)
    description = segment.description or None
    if description is not None:
        check_text(description, "SegmentDescription", name)
    lab = _lab(segment, terminology, number)
    return ItemValues(
        number=int(number), label=name, category=category, type=type_, type_modifier=modifier,
        anatomic_region=region, anatomic_region_modifier=region_modifier, algorithm_type=algorithm_type,
        algorithm=algorithm, tracking_id=tracking_id, tracking_uid=tracking_uid(tracking_id, tracking_scope),
        description=description, lab=lab,
    ), warnings
