"""Segment <-> DICOM SegmentSequence item, through real highdicom LABELMAP SEGs and dcmqi."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
from AdaptiveBrushDicomLib.io.dcmqi_metadata import read_dcmqi_metadata
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology
from AdaptiveBrushDicomLib.dicom.algorithm_family import algorithm_family
from AdaptiveBrushDicomLib.dicom.segment_item import (
    finalize_dataset,
    from_segment_item,
    segments_from_dataset,
    to_segment_description,
)
from AdaptiveBrushDicomLib.dicom.segment_text import UNSPECIFIED, SegmentMetadataError, format_parameters, parse_parameters
from AdaptiveBrushDicomLib.dicom.tracking_id import decode_slicer_extras, encode_slicer_extras
from AdaptiveBrushDicomLib.core.terminology import same_codes

from conftest import tool_path

REPO = Path(__file__).resolve().parents[2]
DCMQI_CORPUS = REPO / ".." / "shared" / "corpus" / "dcmqi"

LIVER = Terminology(
    category=Code("123037004", "SCT", "Anatomical Structure"),
    type=Code("10200004", "SCT", "Liver"),
    anatomic_region=Code("818981001", "SCT", "Abdomen"),
    anatomic_region_modifier=Code("24028007", "SCT", "Right"),
    context_name="Segmentation category and type - 3D Slicer General Anatomy list",
)
TUMOR = Terminology(
    category=Code("49755003", "SCT", "Morphologically Altered Structure"),
    type=Code("108369006", "SCT", "Neoplasm"),
    type_modifier=Code("399721002", "SCT", "Tumor infiltration by lymphatic vessel not present"),
)
PARAMS = {"edge_sensitivity": 40, "brush_radius_mm": 25.0, "seeds": [[1, 2, 3]], "name": "Ünïcode"}


def _segments() -> list[Segment]:
    return [
        Segment(
            label=300, name="Liver", color=(221, 130, 101), terminology=LIVER, description="trial 42 liver",
            algorithm_type=AlgorithmType.SEMIAUTOMATIC, algorithm_name="watershed", algorithm_version="2.1",
            algorithm_parameters=PARAMS, segment_id="Segment_1",
        ),
        Segment(
            label=7, name="Tumor", color=None, terminology=TUMOR, algorithm_type=AlgorithmType.MANUAL,
            segment_id="tumor id", layer=1,
        ),
    ]


def _ct_sources():
    import pydicom

    folder = DCMQI_CORPUS / "ct-3slice"
    if not folder.is_dir():
        pytest.skip("dcmqi corpus not available")
    sources = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    sources.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    for ds in sources:
        # these files carry an empty SpecificCharacterSet, which highdicom refuses
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet
    return sources


def _labels(name: str) -> np.ndarray:
    import SimpleITK as sitk

    if not (DCMQI_CORPUS / name).exists():
        pytest.skip("dcmqi corpus not available")
    image = sitk.ReadImage(str(DCMQI_CORPUS / name))
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    return sitk.GetArrayFromImage(image)


def _build_seg(segments: list[Segment], pixel: np.ndarray, out: Path) -> Path:
    import highdicom as hd

    descriptions, warnings = [], []
    for number, seg in enumerate(segments, start=1):
        desc, msgs = to_segment_description(seg, number)
        descriptions.append(desc)
        warnings.extend(msgs)
    ds = hd.seg.Segmentation(
        source_images=_ct_sources(),
        pixel_array=pixel.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=1042,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="AdaptiveBrushDicom",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
        series_description="trial_042_watershed",
    )
    finalize_dataset(ds, segments)
    write_segment_private(ds, segments)  # marks the items as ours: their TrackingIDs are trusted
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Our two segments written as a LABELMAP SEG over the 3-slice CT, read back by pydicom."""
    import pydicom

    labels = _labels("liver_spine_seg.nrrd")  # values 0, 1, 2 -> segment numbers
    path = _build_seg([replace(s, layer=s.layer) for s in _segments()], labels, tmp_path_factory.mktemp("seg") / "s.dcm")
    return path, pydicom.dcmread(path)


# ------------------------------------------------------------------ item contents
def test_written_attributes(written):
    _, ds = written
    items = {int(i.SegmentNumber): i for i in ds.SegmentSequence}
    assert set(items) == {0, 1, 2}  # 0 = highdicom's Background
    liver = items[1]
    assert liver.SegmentLabel == "Liver"
    assert liver.SegmentDescription == "trial 42 liver"
    assert liver.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert liver.SegmentAlgorithmName == "watershed"
    cat = liver.SegmentedPropertyCategoryCodeSequence[0]
    assert (cat.CodeValue, cat.CodingSchemeDesignator, cat.CodeMeaning) == ("123037004", "SCT", "Anatomical Structure")
    typ = liver.SegmentedPropertyTypeCodeSequence[0]
    assert (typ.CodeValue, typ.CodeMeaning) == ("10200004", "Liver")
    region = liver.AnatomicRegionSequence[0]
    assert region.CodeValue == "818981001"
    assert region.AnatomicRegionModifierSequence[0].CodeMeaning == "Right"
    alg = liver.SegmentationAlgorithmIdentificationSequence[0]
    assert alg.AlgorithmName == "watershed" and alg.AlgorithmVersion == "2.1"
    assert alg.AlgorithmFamilyCodeSequence[0].CodeValue == "123104"  # DCM Morphological Operations
    # exactly compact, key-sorted JSON, non-ASCII escaped (highdicom alone writes key=value,...)
    assert alg.AlgorithmParameters == (
        '{"brush_radius_mm":25.0,"edge_sensitivity":40,"name":"\\u00dcn\\u00efcode","seeds":[[1,2,3]]}'
    )
    assert json.loads(alg.AlgorithmParameters) == PARAMS
    assert list(liver.RecommendedDisplayCIELabValue) == [41663, 41166, 40794]
    assert liver.TrackingID == "Segment_1 (label 300)"
    tumor = items[2]
    assert tumor.SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in tumor
    mod = tumor.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0]
    assert mod.CodeValue == "399721002"
    assert tumor.TrackingID == "tumor id (label 7, layer 1)"
    # TrackingUID: derived from the study and the TrackingID, identical for the same segment
    assert tumor.TrackingUID != liver.TrackingUID
    # the Background item gets an explicit black
    assert list(items[0].RecommendedDisplayCIELabValue) == [0, 32896, 32896]


def test_round_trip_through_file(written):
    _, ds = written
    back = segments_from_dataset(ds)
    assert sorted(back) == [1, 2]
    for number, original in enumerate(_segments(), start=1):
        seg = back[number]
        assert seg.label == original.label and seg.layer == original.layer
        assert seg.segment_id == original.segment_id
        assert seg.name == original.name
        assert seg.description == original.description
        assert seg.algorithm_type == original.algorithm_type
        assert seg.algorithm_name == original.algorithm_name
        assert seg.algorithm_version == original.algorithm_version
        assert seg.algorithm_parameters == original.algorithm_parameters
        assert same_codes(seg.terminology, original.terminology)
        assert seg.terminology == replace(
            original.terminology,
            context_name="Segmentation category and type - DICOM master list",
        )
    assert back[1].color == (221, 130, 101)
    # no colour given: the Neoplasm type is not in the table, so palette entry 1 (segment 2)
    assert back[2].color == (216, 101, 79)


def test_from_segment_item_of_background(written):
    _, ds = written
    number, seg = from_segment_item(next(i for i in ds.SegmentSequence if i.SegmentNumber == 0))
    assert number == 0 and seg.name == "Background"
    assert seg.terminology.type == Code("125040", "DCM", "Background")
    assert 0 in segments_from_dataset(ds, include_background=True)


def test_no_terminology_defaults_to_tissue_with_warning():
    desc, warnings = to_segment_description(Segment(label=1, name="blob", algorithm_name="level_set"), 1)
    assert desc.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"
    assert desc.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    assert any("no terminology" in w and "blob" in w for w in warnings)
    assert list(desc.RecommendedDisplayCIELabValue) == [43803, 26565, 37724]  # Tissue green
    alg = desc.SegmentationAlgorithmIdentificationSequence[0]
    assert alg.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Deformable Models"
    assert alg.AlgorithmVersion == UNSPECIFIED
    number, back = from_segment_item(desc)
    assert back.algorithm_version is None and back.algorithm_name == "level_set"


def test_semiautomatic_without_name_warns():
    desc, warnings = to_segment_description(Segment(label=1, name="x"), 1)
    assert desc.SegmentAlgorithmName == UNSPECIFIED
    assert any("without an algorithm name" in w for w in warnings)
    assert from_segment_item(desc)[1].algorithm_name is None


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"name": "L" * 65}, "SegmentLabel (LO) is 65 characters, the limit is 64"),
        ({"description": "d" * 1025}, "SegmentDescription (ST) is 1025 characters, the limit is 1024"),
        ({"algorithm_name": "a" * 65}, "AlgorithmName (LO) is 65 characters"),
        ({"algorithm_version": "v" * 65}, "AlgorithmVersion (LO) is 65"),
        ({"algorithm_parameters": {"x": "p" * 10240}}, "AlgorithmParameters (LT)"),
        ({"algorithm_parameters": {"x": {1, 2}}}, "not JSON-serialisable"),
        ({"algorithm_parameters": {"x": float("nan")}}, "not JSON-serialisable"),
        ({"terminology": Terminology(type=Code("1", "SCT", "m" * 65))}, "type CodeMeaning (LO) is 65 characters"),
        ({"terminology": Terminology(type=Code("1", "XYZ", "thing"))}, "unknown coding scheme 'XYZ'"),
        ({"name": "a\\b"}, "backslash"),
        ({"name": " "}, "empty"),
        ({"color": (0, 0, 256)}, "colour (0, 0, 256) is not an 8-bit RGB triple"),
        ({"algorithm_type": "GUESSED"}, "SegmentAlgorithmType 'GUESSED'"),
    ],
)
def test_invalid_values_raise_naming_segment_and_field(changes, fragment):
    seg = replace(_segments()[0], **changes)
    with pytest.raises(SegmentMetadataError) as exc:
        to_segment_description(seg, 1)
    assert fragment in str(exc.value)
    assert isinstance(exc.value, UserError)
    if "name" not in changes:
        assert "'Liver'" in str(exc.value)


# ------------------------------------------------------------------- Slicer extras
def test_extras_encoding():
    seg = _segments()[0]
    assert encode_slicer_extras(seg) == ("Segment_1 (label 300)", [])
    assert decode_slicer_extras("Segment_1 (label 300)").segment_id == "Segment_1"
    extras = decode_slicer_extras("my (odd) id (label 5, layer 2)")
    assert (extras.segment_id, extras.label, extras.layer) == ("my (odd) id", 5, 2)
    assert decode_slicer_extras("(label 9)").segment_id is None
    assert decode_slicer_extras("Liver") is None  # dcmqi's example TrackingIdentifier
    tid, warnings = encode_slicer_extras(replace(seg, segment_id="x" * 60))
    assert tid == "(label 300)" and "does not fit" in warnings[0]
    tid, _ = encode_slicer_extras(replace(seg, segment_id=None, layer=3))
    assert tid == "(label 300, layer 3)"


def test_foreign_tracking_id_is_kept_in_extra():
    import highdicom as hd

    desc, _ = to_segment_description(_segments()[0], 4)
    desc.TrackingID = "Liver"
    desc.TrackingUID = "1.2.3"
    number, seg = from_segment_item(desc)
    assert number == 4 and seg.label == 4 and seg.segment_id is None
    assert seg.extra["tracking_id"] == "Liver" and seg.extra["tracking_uid"] == "1.2.3"
    assert isinstance(desc, hd.seg.SegmentDescription)


def test_manual_segment_with_empty_parameters_round_trips():
    seg = Segment(label=1, name="m", algorithm_type=AlgorithmType.MANUAL, algorithm_parameters={})
    desc, _ = to_segment_description(seg, 1)
    assert desc.SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters == "{}"
    back = from_segment_item(desc)[1]
    assert back.algorithm_parameters == {} and back.algorithm_name is None


def test_parameters_helpers():
    assert format_parameters({"b": 1, "a": {"d": 2, "c": 1}}) == '{"a":{"c":1,"d":2},"b":1}'
    assert parse_parameters('{"a":1}') == ({"a": 1}, None)
    assert parse_parameters("alpha=1,beta=x") == ({"alpha": "1", "beta": "x"}, None)  # highdicom style
    assert parse_parameters("free text") == (None, "free text")


def test_highdicom_parameters_format_is_not_json():
    """Why finalize_dataset exists: highdicom joins parameters as key=value pairs."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    seq = hd.AlgorithmIdentificationSequence(
        name="w", family=codes.cid7162.ArtificialIntelligence, version="1", parameters={"b": "2", "a": "1"}
    )
    assert seq[0].AlgorithmParameters == "b=2,a=1"


@pytest.mark.parametrize(
    "name, kind, meaning",
    [
        ("watershed", AlgorithmType.AUTOMATIC, "Morphological Operations"),
        ("geodesic_level_set", AlgorithmType.AUTOMATIC, "Deformable Models"),
        ("region_growing", AlgorithmType.SEMIAUTOMATIC, "Neighborhood Analysis"),
        ("otsu_threshold", AlgorithmType.AUTOMATIC, "Histogram Analysis"),
        ("manual_refinement", AlgorithmType.MANUAL, "Manual Processing"),
        ("nnUNet", AlgorithmType.AUTOMATIC, "Artificial Intelligence"),
        (None, AlgorithmType.MANUAL, "Manual Processing"),
        ("mystery", AlgorithmType.AUTOMATIC, "Neighborhood Analysis"),
        ("sample_threshold", AlgorithmType.AUTOMATIC, "Histogram Analysis"),  # "sam" only as a token
        ("MedSAM 2", AlgorithmType.AUTOMATIC, "Artificial Intelligence"),
        ("Geodesic Active Contour", AlgorithmType.SEMIAUTOMATIC, "Deformable Models"),
        ("adaptive brush (watershed)", AlgorithmType.SEMIAUTOMATIC, "Morphological Operations"),
    ],
)
def test_algorithm_family(name, kind, meaning):
    assert algorithm_family(name, kind).meaning == meaning


# ----------------------------------------------------------------------------- dcmqi
def test_dcmqi_reads_our_metadata(tmp_path):
    """dcmqi JSON -> our Segments -> SEG -> dcmqi segimage2itkimage -> same codes, labels, colours."""
    import SimpleITK as sitk

    tool = tool_path("segimage2itkimage")
    meta_path = DCMQI_CORPUS / "seg-example_liver_spine.json"
    if not meta_path.exists():
        pytest.skip("dcmqi corpus not available")
    segments, series = read_dcmqi_metadata(meta_path)
    segments = [replace(s, layer=0) for s in segments]  # one label image holds both labels
    labels = _labels("liver_spine_seg.nrrd")
    seg_path = _build_seg(segments, labels, tmp_path / "seg.dcm")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [tool, "--inputDICOM", str(seg_path), "--outputDirectory", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Failed to get CIELab values" not in proc.stdout + proc.stderr
    produced = json.loads((out / "meta.json").read_text())
    got = {e["labelID"]: e for group in produced["segmentAttributes"] for e in group}
    original = json.loads(meta_path.read_text())
    wanted = {e["labelID"]: e for group in original["segmentAttributes"] for e in group}
    assert sorted(got) == sorted(wanted) == [1, 2]
    for label, want in wanted.items():
        have = got[label]
        for key in ("SegmentLabel", "SegmentDescription", "SegmentAlgorithmType", "recommendedDisplayRGBValue",
                    "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence"):
            assert have[key] == want[key], (label, key)
        if "SegmentAlgorithmName" in want:
            assert have["SegmentAlgorithmName"] == want["SegmentAlgorithmName"]
    # and the voxels: dcmqi writes one NRRD with the segment numbers (= labels 1, 2 here)
    images = sorted(out.glob("*.nrrd"))
    assert len(images) == 1
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(images[0]))), labels)


def test_dcmqi_warns_without_colour(tmp_path):
    """Measured cause of dcmqi's "Failed to get CIELab values": a segment item without
    RecommendedDisplayCIELabValue (Type 3; highdicom writes none unless given a colour)."""
    import pydicom

    tool = tool_path("segimage2itkimage")
    labels = _labels("liver_spine_seg.nrrd")
    seg_path = _build_seg(_segments()[:1] + [Segment(label=2, name="b", algorithm_name="x")], labels, tmp_path / "a.dcm")
    ds = pydicom.dcmread(seg_path)
    del ds.SegmentSequence[0].RecommendedDisplayCIELabValue  # Background item: no warning
    ds.save_as(tmp_path / "no_bg_colour.dcm")
    del ds.SegmentSequence[2].RecommendedDisplayCIELabValue  # a real segment: warning
    ds.save_as(tmp_path / "no_colour.dcm")
    results = {}
    for name in ("no_bg_colour", "no_colour"):
        out = tmp_path / name
        out.mkdir()
        proc = subprocess.run(
            [tool, "--inputDICOM", str(tmp_path / f"{name}.dcm"), "--outputDirectory", str(out)],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        results[name] = "Failed to get CIELab values" in proc.stdout + proc.stderr
    assert results == {"no_bg_colour": False, "no_colour": True}


@pytest.mark.parametrize("name", ["sparse-labelmap-noppv.dcm", "sparse-labelmap-ppv5.dcm"])
def test_read_dcmqi_written_labelmap(name):
    """A LABELMAP written by dcmqi (foreign TrackingID, no algorithm identification)."""
    import pydicom

    path = DCMQI_CORPUS / name
    if not path.exists():
        pytest.skip("dcmqi corpus not available")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    segs = segments_from_dataset(ds)
    assert list(segs) == [1]
    liver = segs[1]
    assert (liver.label, liver.name, liver.description) == (1, "Liver", "Liver Segmentation")
    assert liver.terminology.type == Code("10200004", "SCT", "Liver")
    assert liver.color == (221, 130, 101)
    assert liver.algorithm_type is AlgorithmType.SEMIAUTOMATIC and liver.algorithm_name == "SlicerEditor"
    assert liver.segment_id is None and liver.extra["tracking_id"] == "Liver"
    # dcmqi's Background item: SCT "Spatial and Relational Concept" / DCM "Background"
    background = segments_from_dataset(ds, include_background=True)[0]
    assert background.terminology.type == Code("125040", "DCM", "Background")


def test_non_ascii_text_gets_utf8_character_set(tmp_path):
    import pydicom

    segments = [
        Segment(1, "Région ü", (1, 2, 3), description="déjà vu", algorithm_type=AlgorithmType.MANUAL),
        Segment(2, "b", algorithm_type=AlgorithmType.MANUAL),
    ]
    path = _build_seg(segments, _labels("liver_spine_seg.nrrd"), tmp_path / "utf8.dcm")
    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    item = next(i for i in ds.SegmentSequence if i.SegmentNumber == 1)
    assert item.SegmentLabel == "Région ü" and item.SegmentDescription == "déjà vu"
    raw = path.read_bytes()
    assert "Région ü".encode("utf-8") in raw
    # ASCII-only segment text leaves the character set alone (highdicom writes none here)
    plain = _build_seg(
        [Segment(1, "a", algorithm_type=AlgorithmType.MANUAL), Segment(2, "b", algorithm_type=AlgorithmType.MANUAL)],
        _labels("liver_spine_seg.nrrd"), tmp_path / "ascii.dcm",
    )
    assert "SpecificCharacterSet" not in pydicom.dcmread(plain)
