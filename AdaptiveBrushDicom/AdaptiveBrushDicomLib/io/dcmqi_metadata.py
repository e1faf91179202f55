"""dcmqi segmentation metadata JSON <-> segments and series fields.

The ``--inputMetadata`` of dcmqi's ``itkimage2segimage`` (schema
``doc/schemas/seg-schema.json`` of dcmqi): :func:`read_dcmqi_metadata` gives
``list[Segment]`` + :class:`SeriesMetadata`, :func:`apply_dcmqi_metadata` puts them on a
labelmap, :func:`write_dcmqi_metadata` writes one back (e.g. to feed dcmqi in interop
tests, or ``abdicom decode --metadata-out``). Every error names the file, the entry
(``segmentAttributes[i][j]``) and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from AdaptiveBrushDicomLib.core.colors import parse_color
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.core.terminology import TerminologyError, check_code
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.io.atomic import atomic_output
from AdaptiveBrushDicomLib.io.segment_metadata import MetadataError, check_matched, merge_segments

DCMQI_SCHEMA = "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/seg-schema.json#"


@dataclass
class SeriesMetadata:
    """Series-level fields of a SEG (all optional; None = let the writer decide).

    Attributes map to DICOM attributes of the same name (dcmqi JSON keys in brackets):
    series_description [SeriesDescription] (LO), series_number [SeriesNumber] (IS),
    instance_number [InstanceNumber] (IS), content_creator_name [ContentCreatorName] (PN),
    content_label [ContentLabel] (CS), content_description [ContentDescription] (LO),
    body_part_examined [BodyPartExamined] (CS), clinical_trial_series_id
    [ClinicalTrialSeriesID], clinical_trial_time_point_id [ClinicalTrialTimePointID],
    clinical_trial_coordinating_center_name [ClinicalTrialCoordinatingCenterName] (LO).
    """

    series_description: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    content_creator_name: str | None = None
    content_label: str | None = None
    content_description: str | None = None
    body_part_examined: str | None = None
    clinical_trial_series_id: str | None = None
    clinical_trial_time_point_id: str | None = None
    clinical_trial_coordinating_center_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, dataset: Any) -> "SeriesMetadata":
        """The fields a DICOM dataset (e.g. a decoded SEG) has; absent or empty ones stay None."""
        values: dict[str, Any] = {}
        for attr, keyword in _SERIES_KEYS.items():
            value = getattr(dataset, keyword, None)
            if value is None or str(value).strip() == "":
                continue
            values[attr] = int(value) if attr in _INT_FIELDS else str(value)
        return cls(**values)


#: SegmentAlgorithmName written for a non-manual segment without a name (as in our SEGs).
UNSPECIFIED_ALGORITHM = "unspecified"

#: SeriesMetadata attribute -> dcmqi JSON key (= DICOM keyword).
_SERIES_KEYS: dict[str, str] = {
    "series_description": "SeriesDescription",
    "series_number": "SeriesNumber",
    "instance_number": "InstanceNumber",
    "content_creator_name": "ContentCreatorName",
    "content_label": "ContentLabel",
    "content_description": "ContentDescription",
    "body_part_examined": "BodyPartExamined",
    "clinical_trial_series_id": "ClinicalTrialSeriesID",
    "clinical_trial_time_point_id": "ClinicalTrialTimePointID",
    "clinical_trial_coordinating_center_name": "ClinicalTrialCoordinatingCenterName",
}
_INT_FIELDS = {"series_number", "instance_number"}

_SEGMENT_KEYS = {
    "labelID", "SegmentLabel", "SegmentDescription", "SegmentedPropertyCategoryCodeSequence",
    "SegmentedPropertyTypeCodeSequence", "SegmentedPropertyTypeModifierCodeSequence", "AnatomicRegionSequence",
    "AnatomicRegionModifierSequence", "SegmentAlgorithmType", "SegmentAlgorithmName", "recommendedDisplayRGBValue",
    "RecommendedDisplayCIELabValue", "TrackingIdentifier", "TrackingUniqueIdentifier",
}


def _load_json(path: Path) -> Any:
    """The parsed JSON of ``path``.

    Raises
    ------
    MetadataError
        The file is missing, unreadable or not valid JSON.
    """
    if not path.is_file():
        raise MetadataError("no such file; check the path", path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise MetadataError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read ({exc})", path) from None


def _code(entry: Mapping[str, Any], key: str, where: str, path: Path) -> Code | None:
    """The code ``entry[key]`` (None if absent).

    Raises
    ------
    MetadataError
        Not an object with CodeValue, CodingSchemeDesignator and CodeMeaning, or not a
        valid code.
    """
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MetadataError(f"{where}: {key} must be an object with CodeValue, CodingSchemeDesignator, CodeMeaning", path)
    missing = [k for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning") if not str(value.get(k, "")).strip()]
    if missing:
        raise MetadataError(f"{where}: {key} lacks {', '.join(missing)}", path)
    code = Code(
        value=str(value["CodeValue"]).strip(),
        scheme=str(value["CodingSchemeDesignator"]).strip(),
        meaning=str(value["CodeMeaning"]).strip(),
    )
    try:
        return check_code(code, f"{where} {key}")
    except TerminologyError as exc:
        raise MetadataError(str(exc), path) from None


def _terminology(entry: Mapping[str, Any], where: str, path: Path) -> Terminology | None:
    """The terminology of a dcmqi segment entry (None without category and type).

    Raises
    ------
    MetadataError
        Only one of category and type, a region modifier without a region, or a bad code.
    """
    category = _code(entry, "SegmentedPropertyCategoryCodeSequence", where, path)
    type_ = _code(entry, "SegmentedPropertyTypeCodeSequence", where, path)
    if (category is None) != (type_ is None):
        raise MetadataError(
            f"{where}: give both SegmentedPropertyCategoryCodeSequence and SegmentedPropertyTypeCodeSequence", path
        )
    if category is None or type_ is None:
        return None
    region = _code(entry, "AnatomicRegionSequence", where, path)
    region_modifier = _code(entry, "AnatomicRegionModifierSequence", where, path)
    if region is None and region_modifier is not None:
        raise MetadataError(f"{where}: AnatomicRegionModifierSequence without AnatomicRegionSequence", path)
    return Terminology(
        category=category,
        type=type_,
        type_modifier=_code(entry, "SegmentedPropertyTypeModifierCodeSequence", where, path),
        anatomic_region=region,
        anatomic_region_modifier=region_modifier,
    )


def _color(entry: Mapping[str, Any], where: str, path: Path) -> tuple[int, int, int] | None:
    """The sRGB colour of a dcmqi segment entry (``recommendedDisplayRGBValue``, else CIELab).

    Raises
    ------
    MetadataError
        The value is not a colour.
    """
    if entry.get("recommendedDisplayRGBValue") is not None:
        try:
            return parse_color(entry["recommendedDisplayRGBValue"], f"{where} recommendedDisplayRGBValue")
        except UserError as exc:
            raise MetadataError(str(exc), path) from None
    if entry.get("RecommendedDisplayCIELabValue") is not None:
        from AdaptiveBrushDicomLib.core.colors import dicom_lab_to_rgb

        try:
            r, g, b = dicom_lab_to_rgb([int(v) for v in entry["RecommendedDisplayCIELabValue"]])
            return int(r), int(g), int(b)
        except (TypeError, ValueError, UserError):
            raise MetadataError(f"{where}: RecommendedDisplayCIELabValue must be three integers 0..65535", path) from None
    return None


def _segment_from_dcmqi(entry: Any, where: str, path: Path, layer: int) -> Segment:
    """One ``segmentAttributes`` entry as a :class:`Segment` of ``layer``.

    Raises
    ------
    MetadataError
        Not an object, unknown keys, a bad labelID, terminology, algorithm type or colour.
    """
    if not isinstance(entry, Mapping):
        raise MetadataError(f"{where}: must be an object", path)
    unknown = sorted(set(entry) - _SEGMENT_KEYS)
    if unknown:
        raise MetadataError(f"{where}: unknown key(s) {', '.join(unknown)} (dcmqi seg-schema)", path)
    label = entry.get("labelID")
    if isinstance(label, bool) or not isinstance(label, int) or label < 1:
        raise MetadataError(f"{where}: labelID must be a positive integer, got {label!r}", path)
    where = f"{where} (labelID {label})"
    terminology = _terminology(entry, where, path)
    raw_type = str(entry.get("SegmentAlgorithmType", "SEMIAUTOMATIC")).strip().upper()
    try:
        algorithm_type = AlgorithmType(raw_type)
    except ValueError:
        raise MetadataError(
            f"{where}: SegmentAlgorithmType {raw_type!r} is not AUTOMATIC, SEMIAUTOMATIC or MANUAL", path
        ) from None
    color = _color(entry, where, path)
    name = str(entry.get("SegmentLabel") or "").strip()
    if not name:
        name = terminology.type.meaning if terminology is not None else f"Segment {label}"
    extra: dict[str, Any] = {}
    if entry.get("TrackingIdentifier"):
        extra["tracking_id"] = str(entry["TrackingIdentifier"])
    if entry.get("TrackingUniqueIdentifier"):
        extra["tracking_uid"] = str(entry["TrackingUniqueIdentifier"])
    description = entry.get("SegmentDescription")
    return Segment(
        label=int(label),
        name=name,
        color=color,
        terminology=terminology,
        description=str(description) if description not in (None, "") else None,
        algorithm_type=algorithm_type,
        algorithm_name=(str(entry["SegmentAlgorithmName"])
                        if entry.get("SegmentAlgorithmName") not in (None, "", UNSPECIFIED_ALGORITHM) else None),
        layer=layer,
        extra=extra,
    )


def read_dcmqi_metadata(path: str | Path) -> tuple[list[Segment], SeriesMetadata]:
    """Read a dcmqi segmentation metadata JSON.

    ``segmentAttributes`` is a list of lists: dcmqi takes one inner list per input label
    image. Inner list ``n`` becomes layer ``n`` of our segments.

    Parameters
    ----------
    path : the JSON file.

    Returns
    -------
    (segments, series)

    Raises
    ------
    MetadataError
        Naming the file, the entry (``segmentAttributes[i][j]``) and the field.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, Mapping):
        raise MetadataError("top level must be a JSON object (dcmqi seg-schema)", path)
    groups = data.get("segmentAttributes")
    if not isinstance(groups, list) or not groups:
        raise MetadataError("segmentAttributes must be a non-empty list of lists of segment objects", path)
    segments: list[Segment] = []
    seen: dict[tuple[int, int], str] = {}
    for i, group in enumerate(groups):
        if not isinstance(group, list):
            raise MetadataError(f"segmentAttributes[{i}] must be a list of segment objects", path)
        for j, entry in enumerate(group):
            where = f"segmentAttributes[{i}][{j}]"
            seg = _segment_from_dcmqi(entry, where, path, layer=i)
            key = (seg.layer, seg.label)
            if key in seen:
                raise MetadataError(f"{where}: labelID {seg.label} already used by {seen[key]}", path)
            seen[key] = where
            segments.append(seg)
    return segments, _series_from_dcmqi(data, path)


def _series_from_dcmqi(data: Mapping[str, Any], path: Path) -> SeriesMetadata:
    """The series-level fields of a dcmqi JSON; unknown top-level keys go to ``extra``.

    Raises
    ------
    MetadataError
        SeriesNumber or InstanceNumber is not an integer.
    """
    series = SeriesMetadata()
    for attr, json_key in _SERIES_KEYS.items():
        if data.get(json_key) in (None, ""):
            continue
        value: Any = data[json_key]
        if attr in _INT_FIELDS:
            try:
                value = int(str(value).strip())
            except ValueError:
                raise MetadataError(f"{json_key} must be an integer, got {data[json_key]!r}", path) from None
        else:
            value = str(value)
        setattr(series, attr, value)
    known = set(_SERIES_KEYS.values()) | {"@schema", "segmentAttributes", "segmentAttributesFileMapping"}
    series.extra = {k: v for k, v in data.items() if k not in known}
    return series


def _code_dict(code: Code) -> dict[str, str]:
    """A code as a dcmqi JSON object."""
    return {"CodeValue": code.value, "CodingSchemeDesignator": code.scheme, "CodeMeaning": code.meaning}


def dcmqi_metadata_dict(
    segments: Sequence[Segment],
    series: SeriesMetadata | None = None,
    *,
    default_terminology: bool = True,
) -> dict[str, Any]:
    """Build a dcmqi seg-schema dict from segments (one inner list per layer).

    Segments without terminology get Tissue/Tissue (dcmqi requires category and type)
    unless ``default_terminology`` is False; segments without colour get none (dcmqi
    then uses its default). SeriesNumber/InstanceNumber are written as strings, as in
    dcmqi's examples.
    """
    series = series or SeriesMetadata()
    out: dict[str, Any] = {"@schema": DCMQI_SCHEMA}
    for attr, key in _SERIES_KEYS.items():
        value = getattr(series, attr)
        if value is not None:
            out[key] = str(value)
    layers = sorted({s.layer for s in segments}) or [0]
    out["segmentAttributes"] = [[_dcmqi_entry(s, default_terminology) for s in segments if s.layer == layer]
                                for layer in layers]
    return out


def _dcmqi_entry(s: Segment, default_terminology: bool) -> dict[str, Any]:
    """One segment as a dcmqi ``segmentAttributes`` entry."""
    entry: dict[str, Any] = {"labelID": int(s.label), "SegmentLabel": s.name}
    if s.description:
        entry["SegmentDescription"] = s.description
    t = s.terminology if s.terminology is not None else (Terminology() if default_terminology else None)
    if t is not None:
        entry["SegmentedPropertyCategoryCodeSequence"] = _code_dict(t.category)
        entry["SegmentedPropertyTypeCodeSequence"] = _code_dict(t.type)
        if t.type_modifier is not None:
            entry["SegmentedPropertyTypeModifierCodeSequence"] = _code_dict(t.type_modifier)
        if t.anatomic_region is not None:
            entry["AnatomicRegionSequence"] = _code_dict(t.anatomic_region)
            if t.anatomic_region_modifier is not None:
                entry["AnatomicRegionModifierSequence"] = _code_dict(t.anatomic_region_modifier)
    entry["SegmentAlgorithmType"] = AlgorithmType(s.algorithm_type).value
    if s.algorithm_name:
        entry["SegmentAlgorithmName"] = s.algorithm_name
    elif AlgorithmType(s.algorithm_type) is not AlgorithmType.MANUAL:
        # dcmqi refuses a non-manual segment without one (our SEGs say "unspecified" too)
        entry["SegmentAlgorithmName"] = UNSPECIFIED_ALGORITHM
    if s.color is not None:
        entry["recommendedDisplayRGBValue"] = [int(c) for c in s.color]
    if s.extra.get("tracking_id") and s.extra.get("tracking_uid"):
        entry["TrackingIdentifier"] = str(s.extra["tracking_id"])
        entry["TrackingUniqueIdentifier"] = str(s.extra["tracking_uid"])
    return entry


def write_dcmqi_metadata(
    segments: Sequence[Segment],
    path: str | Path,
    series: SeriesMetadata | None = None,
) -> Path:
    """Write a dcmqi metadata JSON for ``segments`` (see :func:`dcmqi_metadata_dict`).

    Written to a temporary name in the same folder, then renamed.

    Raises
    ------
    UserError
        The file cannot be written (see :func:`~.atomic.atomic_output`).
    """
    path = Path(path)
    data = dcmqi_metadata_dict(segments, series)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
    return path


def apply_dcmqi_metadata(
    labelmap: LabelMap,
    path: str | Path,
    *,
    allow_unmatched: bool = False,
    warnings: list[str] | None = None,
) -> tuple[LabelMap, SeriesMetadata]:
    """Describe ``labelmap``'s segments with a dcmqi metadata JSON (matched by labelID).

    With a one-layer labelmap, all inner lists of ``segmentAttributes`` apply to that
    layer (their labelIDs must then be distinct). Labels that do not match are an error
    unless ``allow_unmatched`` (:func:`check_matched`).

    Returns
    -------
    (new LabelMap, SeriesMetadata)

    Raises
    ------
    MetadataError
        The JSON is malformed, does not match the segmentation (without
        ``allow_unmatched``), or, for a one-layer labelmap, repeats a labelID across lists.
    """
    described, series = read_dcmqi_metadata(path)
    check_matched(labelmap, described, path, allow_unmatched=allow_unmatched, warnings=warnings)
    keep_layers = labelmap.n_layers > 1
    if not keep_layers:
        labels = [d.label for d in described]
        dup = sorted({v for v in labels if labels.count(v) > 1})
        if dup:
            raise MetadataError(
                f"labelID(s) {dup} appear in several segmentAttributes lists, but the segmentation has one layer",
                path,
            )
        described = [replace(d, layer=0) for d in described]
    segments = merge_segments(
        labelmap.segments, described, keep_layers=keep_layers,
        fields=("name", "color", "terminology", "description", "algorithm_type", "algorithm_name"),
    )
    return LabelMap(labelmap.array, labelmap.grid, segments), series
