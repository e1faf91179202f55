"""Slicer TerminologyEntry strings and slicerio dicts <-> Terminology."""

from __future__ import annotations

from pathlib import Path

import pytest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.core.segment import Code, Terminology
from AdaptiveBrushDicomLib.core.terminology import (
    TerminologyError,
    check_coding_scheme,
    format_terminology_entry,
    parse_terminology_entry,
    same_codes,
    terminology_from_slicerio,
    terminology_to_slicerio,
)

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / ".." / "shared" / "corpus" / "adaptivebrush-gold"

SLICER_DEFAULT = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~SCT^85756007^Tissue"
    "~^^~Anatomic codes - DICOM master list~^^~^^"
)
FULL = (
    "Segmentation category and type - DICOM master list~SCT^49755003^Morphologically Altered Structure"
    "~SCT^108369006^Neoplasm~SCT^399721002^Tumor infiltration by lymphatic vessel not present"
    "~Anatomic codes - DICOM master list~SCT^41216001^Prostate~SCT^24028007^Right"
)


def test_parse_slicer_default():
    t = parse_terminology_entry(SLICER_DEFAULT)
    assert t.category == Code("85756007", "SCT", "Tissue")
    assert t.type == Code("85756007", "SCT", "Tissue")
    assert t.type_modifier is None and t.anatomic_region is None and t.anatomic_region_modifier is None
    assert t.context_name == "Segmentation category and type - 3D Slicer General Anatomy list"
    assert t.anatomic_context_name == "Anatomic codes - DICOM master list"
    assert format_terminology_entry(t) == SLICER_DEFAULT


def test_parse_all_seven_parts_round_trip():
    t = parse_terminology_entry(FULL)
    assert t.type == Code("108369006", "SCT", "Neoplasm")
    assert t.type_modifier == Code("399721002", "SCT", "Tumor infiltration by lymphatic vessel not present")
    assert t.anatomic_region == Code("41216001", "SCT", "Prostate")
    assert t.anatomic_region_modifier == Code("24028007", "SCT", "Right")
    assert format_terminology_entry(t) == FULL


def test_gold_seg_nrrd_terminology_matches_slicerio():
    """The gold standard's tag, read by slicerio, gives the same Terminology both ways."""
    slicerio = pytest.importorskip("slicerio")
    path = GOLD / "MRBrainTumor1_tumor" / "gold.seg.nrrd"
    if not path.exists():
        pytest.skip("gold corpus not available")
    seg = slicerio.read_segmentation(str(path), skip_voxels=True)
    item = seg["segments"][0]
    t = terminology_from_slicerio(item["terminology"])
    header = path.read_bytes()[:8192].decode("latin-1")
    entry = header.split("TerminologyEntry:", 1)[1].split("|", 1)[0]
    assert t == parse_terminology_entry(entry)
    assert format_terminology_entry(t) == entry
    # and back through slicerio's own string writer
    assert slicerio.segmentation.terminology_entry_to_string(terminology_to_slicerio(t)) == entry


def test_slicerio_dict_round_trip_all_parts():
    slicerio = pytest.importorskip("slicerio")
    t = parse_terminology_entry(FULL)
    d = terminology_to_slicerio(t)
    assert d["category"] == ["SCT", "49755003", "Morphologically Altered Structure"]
    assert d["typeModifier"][1] == "399721002"
    assert d["anatomicRegionModifier"] == ["SCT", "24028007", "Right"]
    assert terminology_from_slicerio(d) == t
    # slicerio's own parser of our string gives the same dict
    assert slicerio.segmentation.terminology_entry_from_string(format_terminology_entry(t)) == d


def test_slicerio_optional_keys_absent():
    t = Terminology()
    d = terminology_to_slicerio(t)
    assert "typeModifier" not in d and "anatomicRegion" not in d and "anatomicRegionModifier" not in d
    assert terminology_from_slicerio(d) == t
    assert terminology_from_slicerio({"contextName": "x"}) is None


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("only~three~parts", "expected 7 parts"),
        (SLICER_DEFAULT + "~^^", "got 8"),
        (SLICER_DEFAULT.replace("SCT^85756007^Tissue~SCT", "SCT^85756007~SCT", 1), "3 parts"),
        (SLICER_DEFAULT.replace("SCT^85756007^Tissue~SCT", "SCT^^Tissue~SCT", 1), "incomplete code"),
        (SLICER_DEFAULT.replace("SCT^85756007^Tissue~SCT", "^^~SCT", 1), "required code is empty"),
        (SLICER_DEFAULT.replace("~^^~^^", "~^^~SCT^24028007^Right"), "modifier given without"),
    ],
)
def test_malformed_entries_name_the_string(bad, fragment):
    with pytest.raises(UserError) as exc:
        parse_terminology_entry(bad)
    assert fragment in str(exc.value)
    assert "TerminologyEntry" in str(exc.value)


def test_unknown_coding_scheme():
    with pytest.raises(TerminologyError, match="unknown coding scheme 'FOO'"):
        parse_terminology_entry(SLICER_DEFAULT.replace("SCT^85756007^Tissue~SCT", "FOO^1^Thing~SCT", 1))
    assert check_coding_scheme("99MYLAB") == "99MYLAB"
    for scheme in ("SCT", "DCM", "FMA", "UMLS", "SRT"):
        assert check_coding_scheme(scheme) == scheme
    with pytest.raises(TerminologyError, match="unknown coding scheme"):
        check_coding_scheme("sct")


@pytest.mark.parametrize("char", ["~", "^", "|"])
def test_separators_in_meanings_are_rejected(char):
    t = Terminology(type=Code("10200004", "SCT", f"Liver {char} left"))
    with pytest.raises(TerminologyError, match="cannot hold"):
        format_terminology_entry(t)
    with pytest.raises(TerminologyError, match="cannot hold"):
        terminology_to_slicerio(t)


def test_context_name_with_tilde_rejected():
    with pytest.raises(TerminologyError, match="context name"):
        format_terminology_entry(Terminology(context_name="a~b"))


def test_same_codes_ignores_context_names():
    a = parse_terminology_entry(SLICER_DEFAULT)
    b = Terminology()
    assert a != b and same_codes(a, b)
    assert not same_codes(a, parse_terminology_entry(FULL))
    assert same_codes(None, None) and not same_codes(a, None)
