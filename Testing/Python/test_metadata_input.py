"""dcmqi metadata JSON and segment tables -> Segments; dcmqi JSON writing."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.io.dcmqi_metadata import (
    SeriesMetadata,
    apply_dcmqi_metadata,
    dcmqi_metadata_dict,
    read_dcmqi_metadata,
    write_dcmqi_metadata,
)
from AdaptiveBrushDicomLib.io.segment_metadata import MetadataError
from AdaptiveBrushDicomLib.io.segment_table import apply_segment_table, read_segment_table
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment
from AdaptiveBrushDicomLib.core.terminology import format_terminology_entry

from conftest import tool_path

REPO = Path(__file__).resolve().parents[2]
DCMQI_CORPUS = REPO / ".." / "shared" / "corpus" / "dcmqi"
TERM = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
    "~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^"
)


def corpus(name: str) -> Path:
    p = DCMQI_CORPUS / name
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p


def _labelmap(labels=(1, 2), layers: int = 1) -> LabelMap:
    grid = Grid((2, 3, 4), (1, 1, 1), (0, 0, 0))
    a = np.zeros((2, 3, 4), dtype=np.uint8)
    a[0, 0, :2] = labels[0]
    a[1, 2, 2:] = labels[1]
    segs = [Segment(label=v, name=f"Segment_{v}", segment_id=f"Segment_{v}") for v in labels]
    return LabelMap(a, grid, segs)


# ------------------------------------------------------------------------ dcmqi JSON
def test_read_dcmqi_example():
    segments, series = read_dcmqi_metadata(corpus("seg-example.json"))
    assert len(segments) == 1
    s = segments[0]
    assert (s.label, s.name, s.description) == (1, "Liver", "Liver Segmentation")
    assert s.terminology.category == Code("85756007", "SCT", "Tissue")
    assert s.terminology.type == Code("10200004", "SCT", "Liver")
    assert s.algorithm_type is AlgorithmType.SEMIAUTOMATIC and s.algorithm_name == "SlicerEditor"
    assert s.color == (221, 130, 101)
    assert s.extra == {"tracking_id": "Liver", "tracking_uid": "1.2.3"}
    assert series == SeriesMetadata(
        series_description="Segmentation", series_number=300, instance_number=1, content_creator_name="Doe^John",
        clinical_trial_series_id="Session1", clinical_trial_time_point_id="1",
        clinical_trial_coordinating_center_name="BWH",
    )


def test_read_dcmqi_two_lists_become_layers():
    segments, _ = read_dcmqi_metadata(corpus("seg-example_liver_spine.json"))
    assert [(s.label, s.layer, s.name, s.algorithm_type.value) for s in segments] == [
        (1, 0, "Liver", "SEMIAUTOMATIC"), (2, 1, "Thoracic spine", "MANUAL")
    ]
    assert segments[1].color == (226, 202, 134) and segments[1].algorithm_name is None


def test_write_then_read_is_identity(tmp_path):
    segments, series = read_dcmqi_metadata(corpus("seg-example_liver_spine.json"))
    out = write_dcmqi_metadata(segments, tmp_path / "m.json", series)
    again, series2 = read_dcmqi_metadata(out)
    assert again == segments and series2 == series
    # same content as dcmqi's own example, key for key
    original = json.loads(corpus("seg-example_liver_spine.json").read_text())
    written = json.loads(out.read_text())
    assert written["segmentAttributes"] == original["segmentAttributes"]
    for key in ("SeriesDescription", "SeriesNumber", "ContentCreatorName", "ClinicalTrialSeriesID"):
        assert written[key] == original[key]


def test_dcmqi_dict_defaults_and_all_codes():
    from AdaptiveBrushDicomLib.core.terminology import parse_terminology_entry

    t = parse_terminology_entry(
        "c~SCT^49755003^Morphologically Altered Structure~SCT^108369006^Neoplasm~SCT^255609007^Benign"
        "~a~SCT^41216001^Prostate~SCT^24028007^Right"
    )
    d = dcmqi_metadata_dict([Segment(1, "a"), Segment(2, "b", terminology=t, color=(1, 2, 3))])
    a, b = d["segmentAttributes"][0]
    assert a["SegmentedPropertyTypeCodeSequence"]["CodeMeaning"] == "Tissue" and "recommendedDisplayRGBValue" not in a
    assert b["SegmentedPropertyTypeModifierCodeSequence"]["CodeValue"] == "255609007"
    assert b["AnatomicRegionSequence"]["CodeValue"] == "41216001"
    assert b["AnatomicRegionModifierSequence"]["CodeMeaning"] == "Right"
    assert b["recommendedDisplayRGBValue"] == [1, 2, 3]


def test_dcmqi_itkimage2segimage_accepts_our_json(tmp_path):
    """Our written JSON drives dcmqi's writer; the SEG it makes has our labels and codes."""
    import pydicom

    tool = Path(tool_path("itkimage2segimage"))
    segments, series = read_dcmqi_metadata(corpus("seg-example_liver_spine.json"))
    segments = [replace(s, layer=0) for s in segments]  # one label file
    meta = write_dcmqi_metadata(segments, tmp_path / "meta.json", series)
    out = tmp_path / "dcmqi.dcm"
    proc = subprocess.run(
        [str(tool), "--inputImageList", str(corpus("liver_spine_seg.nrrd")), "--inputDICOMDirectory",
         str(corpus("ct-3slice")), "--inputMetadata", str(meta), "--outputDICOM", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ds = pydicom.dcmread(out)
    from AdaptiveBrushDicomLib.dicom.segment_item import segments_from_dataset

    back = segments_from_dataset(ds)
    assert [back[n].name for n in sorted(back)] == ["Liver", "Thoracic spine"]
    assert [back[n].terminology.type.value for n in sorted(back)] == ["10200004", "122495006"]
    assert [back[n].color for n in sorted(back)] == [(220, 129, 101), (226, 202, 134)]
    assert str(ds.SeriesDescription) == "Segmentation" and int(ds.SeriesNumber) == 300


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.pop("segmentAttributes"), "segmentAttributes must be"),
        (lambda d: d["segmentAttributes"][0][0].update(labelID=0), "segmentAttributes[0][0]: labelID must be"),
        (lambda d: d["segmentAttributes"][0][0].update(Colour=[1, 2, 3]), "unknown key(s) Colour"),
        (lambda d: d["segmentAttributes"][0][0]["SegmentedPropertyTypeCodeSequence"].pop("CodeMeaning"),
         "SegmentedPropertyTypeCodeSequence lacks CodeMeaning"),
        (lambda d: d["segmentAttributes"][0][0]["SegmentedPropertyTypeCodeSequence"].update(
            CodingSchemeDesignator="BOGUS"), "unknown coding scheme 'BOGUS'"),
        (lambda d: d["segmentAttributes"][0][0].update(SegmentAlgorithmType="GUESSED"), "GUESSED"),
        (lambda d: d["segmentAttributes"][0][0].update(recommendedDisplayRGBValue=[1, 2]), "colour"),
        (lambda d: d.update(SeriesNumber="three"), "SeriesNumber must be an integer"),
    ],
)
def test_dcmqi_errors_name_file_entry_and_field(tmp_path, mutate, fragment):
    data = json.loads(corpus("seg-example.json").read_text())
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MetadataError) as exc:
        read_dcmqi_metadata(path)
    assert fragment in str(exc.value)
    assert str(path) in str(exc.value)


def test_dcmqi_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{ nope")
    with pytest.raises(UserError, match="not valid JSON .line 1"):
        read_dcmqi_metadata(path)
    with pytest.raises(UserError, match="no such file"):
        read_dcmqi_metadata(tmp_path / "missing.json")


def test_apply_dcmqi_metadata_to_labelmap():
    lm, series = apply_dcmqi_metadata(_labelmap((1, 2)), corpus("seg-example_liver_spine.json"))
    assert [(s.label, s.layer, s.name, s.segment_id) for s in lm.segments] == [
        (1, 0, "Liver", "Segment_1"), (2, 0, "Thoracic spine", "Segment_2")
    ]
    assert lm.segments[0].terminology.type.meaning == "Liver"
    assert series.series_number == 300
    # described but absent labels: refused (as dcmqi does), or appended as empty segments with one warning
    with pytest.raises(MetadataError, match=r"label\(s\) \[1\] are not in the segmentation.*--allow-unmatched"):
        apply_dcmqi_metadata(_labelmap((2, 5)), corpus("seg-example_liver_spine.json"))
    warnings: list[str] = []
    lm2, _ = apply_dcmqi_metadata(_labelmap((2, 5)), corpus("seg-example_liver_spine.json"),
                                  allow_unmatched=True, warnings=warnings)
    assert [s.label for s in lm2.segments] == [2, 5, 1]
    assert len(warnings) == 1 and "[1] are not in the segmentation" in warnings[0]


# ----------------------------------------------------------------------- segment table
def test_segment_table_csv(tmp_path):
    p = tmp_path / "segments.csv"
    p.write_text(
        "label,name,color,terminology\n"
        f"1,Liver,#dd8265,{TERM}\n"
        '2,Spine,"226,202,134",\n'
        "# a comment line\n"
        "\n"
        "300,Tumor,,\n"
    )
    segs = read_segment_table(p)
    assert [(s.label, s.name, s.color) for s in segs] == [
        (1, "Liver", (221, 130, 101)), (2, "Spine", (226, 202, 134)), (300, "Tumor", None)
    ]
    assert format_terminology_entry(segs[0].terminology) == TERM
    assert segs[1].terminology is None


def test_segment_table_tsv_any_column_order(tmp_path):
    p = tmp_path / "segments.tsv"
    p.write_text("Name\tLabel\tColor\nLiver\t1\t221 130 101\n")
    assert read_segment_table(p) == [Segment(label=1, name="Liver", color=(221, 130, 101))]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("label,name\nx,Liver\n", "line 2, column 'label': 'x' is not a positive integer"),
        ("label,name\n1,\n", "line 2, column 'name': empty"),
        ("label,name,color\n1,a,#12\n", "line 2, column 'color'"),
        ("label,name,color\n1,a,1,2,3\n", "line 2: 5 fields but the header has 3"),
        ("label,name,terminology\n1,a,not~a~terminology\n", "line 2, column 'terminology'"),
        ("label,name\n1,a\n1,b\n", "line 3, column 'label': label 1 already given on line 2"),
        ("id,name\n1,a\n", "header must name columns"),
        ("label,name\n", "no rows"),
        ("", "empty segment table"),
    ],
)
def test_segment_table_errors(tmp_path, body, fragment):
    p = tmp_path / "t.csv"
    p.write_text(body)
    with pytest.raises(MetadataError) as exc:
        read_segment_table(p)
    assert fragment in str(exc.value) and str(p) in str(exc.value)


def test_apply_segment_table_keeps_ids_and_algorithm(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("label,name,color\n2,Spine,#e2ca86\n")
    lm = _labelmap((1, 2))
    lm.segments[1].algorithm_type = AlgorithmType.AUTOMATIC
    out = apply_segment_table(lm, p)
    s = out.segments[1]
    assert (s.name, s.color, s.segment_id, s.algorithm_type) == ("Spine", (226, 202, 134), "Segment_2",
                                                                 AlgorithmType.AUTOMATIC)
    assert out.segments[0] == lm.segments[0]
