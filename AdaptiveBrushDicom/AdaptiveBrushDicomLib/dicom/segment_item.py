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

Over-long values raise :class:`~.errors.UserError` naming the segment and the attribute;
nothing is cut silently. highdicom is imported inside the functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from AdaptiveBrushDicomLib.core.colors import color_for_terminology, default_color, dicom_lab_to_rgb, rgb_to_dicom_lab
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.core.segment import TISSUE, AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.core.terminology import TerminologyError, check_code

if TYPE_CHECKING:  # pragma: no cover
    import highdicom
    from pydicom.dataset import Dataset

__all__ = [
    "SegmentMetadataError",
    "SlicerExtras",
    "UNSPECIFIED",
    "VR_LIMITS",
    "algorithm_family",
    "decode_slicer_extras",
    "encode_slicer_extras",
    "finalize_dataset",
    "format_parameters",
    "from_segment_item",
    "parse_parameters",
    "to_segment_description",
    "tracking_uid",
]

#: Maximum lengths (characters) of the attributes we write (PS3.5 Table 6.2-1).
VR_LIMITS: dict[str, tuple[str, int]] = {
    "SegmentLabel": ("LO", 64),
    "SegmentDescription": ("ST", 1024),
    "SegmentAlgorithmName": ("LO", 64),
    "AlgorithmName": ("LO", 64),
    "AlgorithmVersion": ("LO", 64),
    "AlgorithmParameters": ("LT", 10240),
    "CodeMeaning": ("LO", 64),
    "TrackingID": ("LO", 64),
}

#: Written as AlgorithmName / AlgorithmVersion when a non-MANUAL segment does not say
#: (both are Type 1 in the Algorithm Identification macro); read back as None.
UNSPECIFIED = "unspecified"


class SegmentMetadataError(UserError):
    """A segment attribute cannot be written to DICOM as it is."""


# ------------------------------------------------------------------------- checks
def _check_text(value: str, attribute: str, segment_name: str, what: str | None = None) -> str:
    """Check ``value`` fits ``attribute``'s VR; raise naming the segment and attribute.

    ``what`` names the field when the attribute alone is ambiguous (e.g. which code's
    CodeMeaning).
    """
    vr, limit = VR_LIMITS[attribute]
    field = f"{what} {attribute}" if what else attribute
    if len(value) > limit:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: {field} ({vr}) is {len(value)} characters, the limit is {limit}; "
            f"shorten it: {value[:40]!r}..."
        )
    if vr == "LO" and "\\" in value:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: {field} ({vr}) must not contain a backslash: {value!r}"
        )
    bad = [c for c in value if ord(c) < 32 and (vr == "LO" or c not in "\r\n\t\f\x1b")]
    if bad:
        raise SegmentMetadataError(f"segment {segment_name!r}: {field} ({vr}) contains control characters: {value!r}")
    return value


def _coded_concept(code: Code, what: str, segment_name: str) -> "highdicom.sr.CodedConcept":
    from highdicom.sr import CodedConcept

    try:
        check_code(code, f"segment {segment_name!r} {what}")
    except TerminologyError as exc:
        raise SegmentMetadataError(str(exc)) from None
    _check_text(code.meaning, "CodeMeaning", segment_name, what)
    return CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


# ----------------------------------------------------------------------- parameters
def format_parameters(parameters: dict[str, Any], segment_name: str = "?") -> str:
    """Algorithm parameters as compact, key-sorted JSON (the AlgorithmParameters value).

    ``json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``:
    non-ASCII characters are escaped, so the value stays in the default character
    repertoire, and ``json.loads`` gives the dict back exactly.

    Raises
    ------
    SegmentMetadataError
        When the parameters are not JSON-serialisable (NaN / infinity included) or the
        JSON is longer than 10240 characters (LT).
    """
    try:
        text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SegmentMetadataError(
            f"segment {segment_name!r}: algorithm parameters are not JSON-serialisable ({exc})"
        ) from None
    return _check_text(text, "AlgorithmParameters", segment_name)


def parse_parameters(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """Read AlgorithmParameters: our JSON, or highdicom's ``key=value,key=value``.

    Returns
    -------
    (parameters, raw)
        ``parameters`` is a dict when the text is a JSON object or ``k=v`` pairs, else
        None and ``raw`` is the unparsed text.
    """
    text = str(text).strip()
    if not text:
        return None, None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value, None
    pairs = [p for p in text.split(",")]
    if all("=" in p for p in pairs):
        return {k.strip(): v for k, v in (p.split("=", 1) for p in pairs)}, None
    return None, text


# ------------------------------------------------------------------ algorithm family
#: (substrings of the normalised name, whole tokens, CID 7162 attribute), first match wins.
_FAMILY_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("manual", "paint", "draw", "eras", "scissor"), (), "ManualProcessing"),
    (("level_set", "levelset", "geodesic", "snake", "active_contour", "deformable", "chan_vese"), (),
     "DeformableModels"),
    (("nnunet", "unet", "monai", "totalseg", "deep", "neural", "segment_anything", "medsam"),
     ("sam", "ai", "cnn", "dl"), "ArtificialIntelligence"),
    (("watershed", "morpholog", "dilat", "erosion", "erode"), ("opening", "closing"), "MorphologicalOperations"),
    (("threshold", "otsu", "histogram"), (), "HistogramAnalysis"),
    (("kmeans", "k_means", "cluster", "fuzzy_c"), ("gmm",), "ClusterAnalysis"),
    (("edge", "canny", "sobel", "gradient"), (), "EdgeDetection"),
    (("region_grow", "regiongrow", "connected", "flood", "grow", "random_walk", "graph_cut", "graphcut",
      "fast_march", "brush", "neighbo"), (), "NeighborhoodAnalysis"),
)


def algorithm_family(name: str | None, algorithm_type: AlgorithmType) -> Any:
    """AlgorithmFamilyCodeSequence code (DICOM CID 7162) for an algorithm name.

    Chosen by keywords in the name, lower-cased with runs of other characters turned into
    ``_`` (e.g. ``watershed`` -> Morphological Operations, ``level_set`` / ``geodesic`` ->
    Deformable Models, ``region_growing`` / ``brush`` -> Neighborhood Analysis,
    ``threshold`` -> Histogram Analysis, ``nnUNet`` / token ``sam`` -> Artificial
    Intelligence, ``manual...`` -> Manual Processing); a MANUAL segment without a
    recognised name -> Manual Processing; anything else -> Neighborhood Analysis (what an
    adaptive brush does: classify voxels around a click).

    Returns
    -------
    pydicom.sr.coding.Code
    """
    from pydicom.sr.codedict import codes

    tokens = [t for t in re.split(r"[^a-z0-9]+", (name or "").lower()) if t]
    key = "_".join(tokens)
    for substrings, whole, attr in _FAMILY_RULES:
        if any(sub in key for sub in substrings) or any(t in whole for t in tokens):
            return getattr(codes.cid7162, attr)
    if algorithm_type is AlgorithmType.MANUAL:
        return codes.cid7162.ManualProcessing
    return codes.cid7162.NeighborhoodAnalysis


# --------------------------------------------------------------------- Slicer extras
@dataclass(frozen=True)
class SlicerExtras:
    """Slicer-only segment attributes with no DICOM attribute of their own."""

    label: int
    layer: int = 0
    segment_id: str | None = None


_EXTRAS_RE = re.compile(r"^(?:(?P<id>.*\S) )?\(label (?P<label>\d+)(?:, layer (?P<layer>\d+))?\)$")


def encode_slicer_extras(segment: Segment) -> tuple[str, list[str]]:
    """Encode Slicer segment ID, label value and layer as a TrackingID (0062,0020) value.

    Format: ``"<segment_id> (label <L>)"``, with ``", layer <n>"`` before the closing
    parenthesis when the layer is not 0, e.g. ``"Segment_1 (label 300)"``,
    ``"Edema (label 2, layer 1)"``, or ``"(label 5)"`` when there is no segment ID.

    TrackingID is a standard Type 1C attribute of the Segment Description macro meant to
    track the same finding across objects: the Slicer segment ID is exactly that (the
    same segment across trial SEGs and the gold standard). It is LO (64 characters).

    Returns
    -------
    (tracking_id, warnings)
        When the segment ID does not fit (too long, backslash, control character) it is
        left out and a warning says so; label and layer are always kept.
    """
    suffix = f"(label {int(segment.label)}" + (f", layer {int(segment.layer)})" if segment.layer else ")")
    sid = segment.segment_id
    warnings: list[str] = []
    if sid is not None and sid.strip():
        sid = sid.strip()
        candidate = f"{sid} {suffix}"
        ok = len(candidate) <= 64 and "\\" not in sid and all(ord(c) >= 32 for c in sid)
        decoded = decode_slicer_extras(candidate) if ok else None
        if decoded is not None and decoded.segment_id == sid:
            return candidate, warnings
        warnings.append(
            f"segment {segment.name!r}: Slicer segment ID {sid!r} does not fit DICOM TrackingID (LO, 64 "
            "characters, no backslash); it is not stored (name, label value and layer are)"
        )
    return suffix, warnings


def decode_slicer_extras(tracking_id: str | None) -> SlicerExtras | None:
    """Inverse of :func:`encode_slicer_extras`; None when ``tracking_id`` is not ours."""
    if not tracking_id:
        return None
    m = _EXTRAS_RE.match(str(tracking_id).strip())
    if m is None:
        return None
    return SlicerExtras(
        label=int(m.group("label")),
        layer=int(m.group("layer") or 0),
        segment_id=m.group("id"),
    )


def tracking_uid(tracking_id: str, scope: str | None = None) -> str:
    """Deterministic TrackingUID for a TrackingID within ``scope`` (e.g. the StudyInstanceUID).

    The same segment ID in the same study (every trial and the gold standard of one run)
    gets the same UID, which is what tracking across objects means in DICOM.
    """
    from AdaptiveBrushDicomLib.dicom.uids import derive_uid

    return derive_uid("segment-tracking", scope or "", tracking_id)


# --------------------------------------------------------------------------- writing
def to_segment_description(
    segment: Segment,
    segment_number: int,
    *,
    tracking_scope: str | None = None,
) -> tuple["highdicom.seg.SegmentDescription", list[str]]:
    """Build the SegmentSequence item for one segment.

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
        and the attribute.
    """
    import highdicom as hd

    warnings: list[str] = []
    name = segment.name
    if not isinstance(name, str) or not name.strip():
        raise SegmentMetadataError(f"segment with label value {segment.label}: SegmentLabel (name) is empty")
    _check_text(name, "SegmentLabel", name)

    terminology = segment.terminology
    if terminology is None:
        terminology = Terminology()
        warnings.append(
            f"segment {name!r}: no terminology; written as category and type "
            f"{TISSUE.meaning} ({TISSUE.scheme} {TISSUE.value})"
        )
    category = _coded_concept(terminology.category, "category", name)
    type_ = _coded_concept(terminology.type, "type", name)
    region = (
        None if terminology.anatomic_region is None
        else _coded_concept(terminology.anatomic_region, "anatomic region", name)
    )

    try:
        algorithm_type = AlgorithmType(segment.algorithm_type)
    except ValueError:
        raise SegmentMetadataError(
            f"segment {name!r}: SegmentAlgorithmType {segment.algorithm_type!r} is not AUTOMATIC, "
            "SEMIAUTOMATIC or MANUAL"
        ) from None
    identification = None
    has_algorithm = bool(segment.algorithm_name or segment.algorithm_version) or segment.algorithm_parameters is not None
    params_text = None
    if segment.algorithm_parameters is not None:
        params_text = format_parameters(segment.algorithm_parameters, name)
    if algorithm_type is not AlgorithmType.MANUAL or has_algorithm:
        alg_name = segment.algorithm_name or UNSPECIFIED
        if not segment.algorithm_name and algorithm_type is not AlgorithmType.MANUAL:
            warnings.append(
                f"segment {name!r}: {algorithm_type.value} segment without an algorithm name; "
                f"AlgorithmName written as {UNSPECIFIED!r}"
            )
        _check_text(alg_name, "AlgorithmName", name)
        version = segment.algorithm_version or UNSPECIFIED
        _check_text(version, "AlgorithmVersion", name)
        identification = hd.AlgorithmIdentificationSequence(
            name=alg_name,
            family=algorithm_family(segment.algorithm_name, algorithm_type),
            version=version,
        )
        if params_text is not None:
            identification[0].AlgorithmParameters = params_text

    tracking_id, extra_warnings = encode_slicer_extras(segment)
    warnings.extend(extra_warnings)

    color = segment.color
    if color is None:
        # no terminology either: a palette colour, so segments stay distinguishable
        color = (color_for_terminology(terminology.type) if segment.terminology is not None else None) \
            or default_color(segment_number - 1)

    desc = hd.seg.SegmentDescription(
        segment_number=int(segment_number),
        segment_label=name,
        segmented_property_category=category,
        segmented_property_type=type_,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues(algorithm_type.value),
        algorithm_identification=identification,
        tracking_id=tracking_id,
        tracking_uid=tracking_uid(tracking_id, tracking_scope),
        anatomic_regions=None if region is None else [region],
    )
    if terminology.type_modifier is not None:
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded_concept(terminology.type_modifier, "type modifier", name)
        ]
    if region is not None and terminology.anatomic_region_modifier is not None:
        desc.AnatomicRegionSequence[0].AnatomicRegionModifierSequence = [
            _coded_concept(terminology.anatomic_region_modifier, "anatomic region modifier", name)
        ]
    if segment.description:
        desc.SegmentDescription = _check_text(segment.description, "SegmentDescription", name)
    # set the uint16 triple directly: highdicom's CIELabColor rounds its own conversion
    try:
        desc.RecommendedDisplayCIELabValue = list(rgb_to_dicom_lab(tuple(color)))
    except (UserError, TypeError, ValueError) as exc:
        raise SegmentMetadataError(f"segment {name!r}: colour {color!r} is not an 8-bit RGB triple ({exc})") from None
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
        our TrackingID encoding, :func:`encode_slicer_extras`), else the SegmentNumber:
        a foreign TrackingID is never parsed for a label.
        Foreign TrackingID / TrackingUID values are kept in ``segment.extra``
        (``"tracking_id"``, ``"tracking_uid"``). Context names are not stored in DICOM:
        the terminology gets Slicer's DICOM master list context names.
    """
    number = int(item.SegmentNumber)
    extra: dict[str, Any] = {}
    name = str(item.get("SegmentLabel") or "").strip() or f"Segment {number}"

    type_item = _first(item, "SegmentedPropertyTypeCodeSequence")
    category = _code_from_item(_first(item, "SegmentedPropertyCategoryCodeSequence"))
    type_ = _code_from_item(type_item)
    modifier = None if type_item is None else _code_from_item(_first(type_item, "SegmentedPropertyTypeModifierCodeSequence"))
    region_item = _first(item, "AnatomicRegionSequence")
    region = _code_from_item(region_item)
    region_modifier = None if region_item is None else _code_from_item(_first(region_item, "AnatomicRegionModifierSequence"))
    terminology = None
    if category is not None or type_ is not None:
        terminology = Terminology(
            category=category or TISSUE,
            type=type_ or TISSUE,
            type_modifier=modifier,
            anatomic_region=region,
            anatomic_region_modifier=region_modifier,
        )

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
    if alg_name == UNSPECIFIED:
        alg_name = None
    if version == UNSPECIFIED:
        version = None

    color = None
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None and len(lab) == 3:
        color = dicom_lab_to_rgb([int(v) for v in lab])

    description = item.get("SegmentDescription")
    description = str(description) if description not in (None, "") else None

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
