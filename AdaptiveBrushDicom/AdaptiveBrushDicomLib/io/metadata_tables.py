"""Segment and series metadata from files users already have.

* dcmqi metadata JSON (the ``--inputMetadata`` of dcmqi's ``itkimage2segimage``, schema
  ``doc/schemas/seg-schema.json`` of dcmqi) -> ``list[Segment]`` + :class:`SeriesMetadata`,
  and back (:func:`write_dcmqi_metadata`, e.g. to feed dcmqi in interop tests);
* a segment table (CSV or TSV) with the header ``label,name,color,terminology``
  -> ``list[Segment]``;
* :func:`apply_dcmqi_metadata` / :func:`apply_segment_table` put that metadata on the
  segments of a :class:`~.labelmap.LabelMap` (matched by label value).

Every error names the file, and the segment entry / row and column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from AdaptiveBrushDicomLib.core.colors import parse_color
from AdaptiveBrushDicomLib.io.atomic import atomic_output
from AdaptiveBrushDicomLib.errors import InputFileError, UserError
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.core.terminology import TerminologyError, check_code, parse_terminology_text

__all__ = [
    "DCMQI_SCHEMA",
    "MetadataError",
    "SeriesMetadata",
    "apply_dcmqi_metadata",
    "apply_segment_table",
    "check_matched",
    "dcmqi_metadata_dict",
    "merge_segments",
    "read_dcmqi_metadata",
    "read_segment_table",
    "write_dcmqi_metadata",
]

DCMQI_SCHEMA = "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/seg-schema.json#"


class MetadataError(InputFileError):
    """A metadata file is malformed; the message names file, entry/row and field."""


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


# ------------------------------------------------------------------------ dcmqi JSON
def _load_json(path: Path) -> Any:
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


def _segment_from_dcmqi(entry: Any, where: str, path: Path, layer: int) -> Segment:
    if not isinstance(entry, Mapping):
        raise MetadataError(f"{where}: must be an object", path)
    unknown = sorted(set(entry) - _SEGMENT_KEYS)
    if unknown:
        raise MetadataError(f"{where}: unknown key(s) {', '.join(unknown)} (dcmqi seg-schema)", path)
    label = entry.get("labelID")
    if isinstance(label, bool) or not isinstance(label, int) or label < 1:
        raise MetadataError(f"{where}: labelID must be a positive integer, got {label!r}", path)
    where = f"{where} (labelID {label})"
    category = _code(entry, "SegmentedPropertyCategoryCodeSequence", where, path)
    type_ = _code(entry, "SegmentedPropertyTypeCodeSequence", where, path)
    if (category is None) != (type_ is None):
        raise MetadataError(
            f"{where}: give both SegmentedPropertyCategoryCodeSequence and SegmentedPropertyTypeCodeSequence", path
        )
    terminology = None
    if category is not None and type_ is not None:
        region = _code(entry, "AnatomicRegionSequence", where, path)
        region_modifier = _code(entry, "AnatomicRegionModifierSequence", where, path)
        if region is None and region_modifier is not None:
            raise MetadataError(f"{where}: AnatomicRegionModifierSequence without AnatomicRegionSequence", path)
        terminology = Terminology(
            category=category,
            type=type_,
            type_modifier=_code(entry, "SegmentedPropertyTypeModifierCodeSequence", where, path),
            anatomic_region=region,
            anatomic_region_modifier=region_modifier,
        )
    raw_type = str(entry.get("SegmentAlgorithmType", "SEMIAUTOMATIC")).strip().upper()
    try:
        algorithm_type = AlgorithmType(raw_type)
    except ValueError:
        raise MetadataError(
            f"{where}: SegmentAlgorithmType {raw_type!r} is not AUTOMATIC, SEMIAUTOMATIC or MANUAL", path
        ) from None
    color = None
    if entry.get("recommendedDisplayRGBValue") is not None:
        try:
            color = parse_color(entry["recommendedDisplayRGBValue"], f"{where} recommendedDisplayRGBValue")
        except UserError as exc:
            raise MetadataError(str(exc), path) from None
    elif entry.get("RecommendedDisplayCIELabValue") is not None:
        from AdaptiveBrushDicomLib.core.colors import dicom_lab_to_rgb

        try:
            color = dicom_lab_to_rgb([int(v) for v in entry["RecommendedDisplayCIELabValue"]])
        except (TypeError, ValueError, UserError):
            raise MetadataError(f"{where}: RecommendedDisplayCIELabValue must be three integers 0..65535", path) from None
    name = str(entry.get("SegmentLabel") or "").strip()
    if not name:
        name = type_.meaning if type_ is not None else f"Segment {label}"
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
    return segments, series


def _code_dict(code: Code) -> dict[str, str]:
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
    groups: list[list[dict[str, Any]]] = []
    for layer in layers:
        group = []
        for s in segments:
            if s.layer != layer:
                continue
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
            group.append(entry)
        groups.append(group)
    out["segmentAttributes"] = groups
    return out


def write_dcmqi_metadata(
    segments: Sequence[Segment],
    path: str | Path,
    series: SeriesMetadata | None = None,
) -> Path:
    """Write a dcmqi metadata JSON for ``segments`` (see :func:`dcmqi_metadata_dict`).

    Written to a temporary name in the same folder, then renamed.
    """
    path = Path(path)
    data = dcmqi_metadata_dict(segments, series)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
    return path


# ----------------------------------------------------------------------- segment table
_TABLE_COLUMNS = ("label", "name", "color", "terminology")


def read_segment_table(path: str | Path) -> list[Segment]:
    """Read a CSV / TSV segment table.

    The first line is a header naming at least ``label`` and ``name``; ``color`` and
    ``terminology`` are optional columns (any order, case-insensitive). The delimiter is
    a tab if the header contains one, else a comma (fields with commas are quoted, e.g.
    ``"221,130,101"``). ``color`` is ``#rrggbb`` or ``r,g,b``; ``terminology`` is a Slicer
    TerminologyEntry string or a short code (``SCT^52988006^Lesion``, see
    :func:`~.terminology.parse_terminology_text`). Empty cells mean "not given"; empty
    lines and lines starting with ``#`` are skipped.

    Raises
    ------
    MetadataError
        Naming the file, the line number and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise MetadataError("no such file; check the path", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read ({exc})", path) from None
    lines = text.splitlines()
    header_index = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None)
    if header_index is None:
        raise MetadataError("empty segment table; expected a header 'label,name,color,terminology'", path)
    delimiter = "\t" if "\t" in lines[header_index] else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    unknown = [h for h in header if h not in _TABLE_COLUMNS]
    if unknown or "label" not in header or "name" not in header or len(set(header)) != len(header):
        raise MetadataError(
            f"line {header_index + 1}: header must name columns from {', '.join(_TABLE_COLUMNS)} "
            f"(label and name required, each once), got {', '.join(header)}",
            path,
        )
    segments: list[Segment] = []
    seen: dict[int, int] = {}
    for offset, row in enumerate(reader, start=header_index + 2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            raise MetadataError(
                f"line {offset}: {len(row)} fields but the header has {len(header)}; quote values that contain "
                f"'{delimiter}' (e.g. \"221,130,101\")",
                path,
            )
        cells = dict(zip(header, [c.strip() for c in row] + [""] * (len(header) - len(row))))
        try:
            label = int(cells["label"])
            if label < 1:
                raise ValueError
        except ValueError:
            raise MetadataError(f"line {offset}, column 'label': {cells['label']!r} is not a positive integer", path) from None
        if label in seen:
            raise MetadataError(f"line {offset}, column 'label': label {label} already given on line {seen[label]}", path)
        seen[label] = offset
        name = cells["name"]
        if not name:
            raise MetadataError(f"line {offset}, column 'name': empty", path)
        color = None
        if cells.get("color"):
            try:
                color = parse_color(cells["color"], f"line {offset}, column 'color'")
            except UserError as exc:
                raise MetadataError(str(exc), path) from None
        terminology = None
        if cells.get("terminology"):
            try:
                terminology = parse_terminology_text(cells["terminology"])
            except UserError as exc:
                raise MetadataError(f"line {offset}, column 'terminology': {exc}", path) from None
        segments.append(Segment(label=label, name=name, color=color, terminology=terminology))
    if not segments:
        raise MetadataError("segment table has a header but no rows", path)
    return segments


# ------------------------------------------------------------------ apply to labelmap
#: Segment fields a metadata source may set (the others -- label, layer, segment ID --
#: belong to the segmentation itself).
_DESCRIBED_FIELDS = (
    "name", "color", "terminology", "description", "algorithm_type", "algorithm_name", "algorithm_version",
    "algorithm_parameters",
)


def merge_segments(
    existing: Sequence[Segment],
    described: Iterable[Segment],
    *,
    keep_layers: bool = True,
    fields: Sequence[str] = _DESCRIBED_FIELDS,
) -> list[Segment]:
    """Put described metadata on existing segments, matched by label value (and layer).

    Parameters
    ----------
    existing : the segmentation's segments.
    described : segments read from a metadata file.
    keep_layers : match on (layer, label) when True, on label alone when False.
    fields : which :class:`Segment` fields ``described`` may set. A field is only taken
        when the described value is not None; ``extra`` entries are merged.

    Returns
    -------
    list of Segment
        Existing segments in their order (updated), then described labels that had no
        segment (empty segments are allowed in a SEG).
    """
    out = list(existing)
    index: dict[tuple[int, int], int] = {}
    for n, s in enumerate(out):
        index.setdefault(((s.layer if keep_layers else 0), s.label), n)
    for d in described:
        key = ((d.layer if keep_layers else 0), d.label)
        i = index.get(key)
        if i is None:
            out.append(replace(d, layer=key[0]))
            index[key] = len(out) - 1
            continue
        e = out[i]
        changes = {f: getattr(d, f) for f in fields if getattr(d, f) is not None}
        out[i] = replace(e, **changes, extra={**e.extra, **d.extra})
    return out


def _is_undescribed(segment: Segment) -> bool:
    """A segment that only exists because its value is in a label image ("Label_<n>",
    no colour, no terminology, see ``volumes.read_label_image``)."""
    return segment.name == f"Label_{segment.label}" and segment.color is None and segment.terminology is None


def check_matched(
    labelmap: LabelMap,
    described: Sequence[Segment],
    path: str | Path,
    *,
    allow_unmatched: bool = False,
    warnings: list[str] | None = None,
) -> None:
    """Check that a metadata table and a segmentation describe the same labels.

    Unmatched are: labels the table names that the segmentation does not have (they would
    become empty segments), and labels of a label image the table does not name. dcmqi
    refuses such a pair; so do we, unless ``allow_unmatched`` (then one line is appended to
    ``warnings`` and the empty segments are kept).

    Raises
    ------
    MetadataError
        Unmatched labels without ``allow_unmatched``; the message lists them.
    """
    present = {s.label for s in labelmap.segments}
    named = {d.label for d in described}
    absent = sorted(named - present)
    unnamed = sorted({s.label for s in labelmap.segments if _is_undescribed(s)} - named)
    if not absent and not unnamed:
        return
    parts = []
    if absent:
        parts.append(f"label(s) {absent[:10]}{' ...' if len(absent) > 10 else ''} are not in the segmentation")
    if unnamed:
        parts.append(f"label(s) {unnamed[:10]}{' ...' if len(unnamed) > 10 else ''} of the segmentation have "
                     "no entry")
    text = "; ".join(parts)
    if not allow_unmatched:
        raise MetadataError(f"does not match the segmentation: {text}; fix the table or pass --allow-unmatched",
                            path)
    if warnings is not None:
        warnings.append(f"{path}: does not match the segmentation ({text}); --allow-unmatched: "
                        "absent labels written as empty segments, unnamed ones as Label_<n>")


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


def apply_segment_table(
    labelmap: LabelMap,
    path: str | Path,
    *,
    allow_unmatched: bool = False,
    warnings: list[str] | None = None,
) -> LabelMap:
    """Describe ``labelmap``'s segments with a segment table (matched by label value;
    unmatched labels as in :func:`check_matched`)."""
    described = read_segment_table(path)
    check_matched(labelmap, described, path, allow_unmatched=allow_unmatched, warnings=warnings)
    segments = merge_segments(labelmap.segments, described, keep_layers=False, fields=("name", "color", "terminology"))
    return LabelMap(labelmap.array, labelmap.grid, segments)
