"""Issue 14, "silently wrong": SEGs of other writers that used to decode wrongly with exit 0.

Every file is written by highdicom (abdicom_testkit.foreign), then edited with pydicom or
at the byte level the way a writer bug or a damaged copy would. Each case either decodes
exactly (with a note) or is refused with one line naming the item / attribute.
"""

from __future__ import annotations

import numpy as np
import pytest

from AdaptiveBrushDicomLib.cli.main import main
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.errors import InputFileError

from abdicom_testkit.foreign import highdicom_seg


def _labels(grid) -> np.ndarray:
    lab = np.zeros(grid.shape_kji, dtype=np.uint8)
    lab[2:5, 5:15, 5:15] = 1
    lab[6:9, 20:30, 20:34] = 2
    return lab


@pytest.fixture
def foreign(tmp_path, phantom_series):
    """(path of an Explicit VR LE highdicom LABELMAP SEG, labels, reference)."""
    *_, grid, reference = phantom_series
    labels = _labels(grid)
    path = tmp_path / "f.dcm"
    highdicom_seg(reference, labels, {1: "Liver", 2: "Spleen"}, path)
    return path, labels, reference


def _refused(tmp_path, capsys, seg, reference, *fragments):
    out = tmp_path / "o.seg.nrrd"
    assert main(["decode", str(seg), "--reference", str(reference.folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert not out.exists()
    return err


def test_bits_allocated_32_labels_are_not_truncated(tmp_path, foreign):
    import pydicom

    path, labels, reference = foreign
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.astype("<u4")
    frames[frames == 2] = 70000  # a value only 32 bits hold (4464 when cut to 16 bits)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "b32.dcm")
    decoded = read_seg(tmp_path / "b32.dcm", reference=reference)
    expected = np.where(labels == 2, 70000, labels.astype(np.uint32))
    assert np.array_equal(decoded.labelmap.array, expected)
    assert any("70000" in n and "no SegmentSequence item" in n for n in decoded.notes)


def test_pixel_data_longer_than_declared_is_refused(tmp_path, capsys, foreign):
    import pydicom

    path, _, reference = foreign
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData * 2
    ds.save_as(tmp_path / "long.dcm")
    _refused(tmp_path, capsys, tmp_path / "long.dcm", reference, "PixelData (7FE0,0010)", "NumberOfFrames")


def test_damaged_segment_label_tag_names_the_item(tmp_path, capsys, foreign):
    path, _, reference = foreign
    raw = bytearray(path.read_bytes())
    label_tag = b"\x62\x00\x05\x00LO"  # (0062,0005) SegmentLabel, explicit VR LE
    second = raw.find(label_tag, raw.find(label_tag) + 1)  # item 2: Liver (item 1 is highdicom's Background)
    second = raw.find(label_tag, second + 1) if b"Liver" not in raw[second:second + 16] else second
    assert b"Liver" in raw[second:second + 16]
    raw[second + 3] = 0x01  # -> (0062,0105): the name is "gone" for a reader that skips unknown tags
    (tmp_path / "bad.dcm").write_bytes(bytes(raw))
    _refused(tmp_path, capsys, tmp_path / "bad.dcm", reference, "SegmentSequence (0062,0002) item",
             "(0062,0105)", "corrupt")


@pytest.mark.parametrize("edit, fragment", [
    ("no_label", "SegmentLabel (0062,0005)"),
    ("bad_colour", "RecommendedDisplayCIELabValue (0062,000D)"),
    ("no_number", "SegmentNumber (0062,0004)"),
])
def test_damaged_segment_item_is_refused_naming_it(tmp_path, capsys, foreign, edit, fragment):
    import pydicom

    path, _, reference = foreign
    ds = pydicom.dcmread(path)
    item = next(i for i in ds.SegmentSequence if i.SegmentNumber == 2)
    if edit == "no_label":
        del item.SegmentLabel
    elif edit == "bad_colour":
        item.RecommendedDisplayCIELabValue = [1000, 2000]
    else:
        del item.SegmentNumber
    ds.save_as(tmp_path / "bad.dcm")
    _refused(tmp_path, capsys, tmp_path / "bad.dcm", reference, "SegmentSequence (0062,0002) item 3", fragment)


def test_duplicate_segment_numbers_are_refused_naming_both(tmp_path, capsys, foreign):
    import pydicom

    path, _, reference = foreign
    ds = pydicom.dcmread(path)
    next(i for i in ds.SegmentSequence if i.SegmentNumber == 2).SegmentNumber = 1
    ds.save_as(tmp_path / "dup.dcm")
    _refused(tmp_path, capsys, tmp_path / "dup.dcm", reference, "items 2 and 3 both have SegmentNumber 1",
             "'Liver' and 'Spleen'")


def test_binary_frames_of_an_undescribed_segment_are_kept_with_a_note(tmp_path, phantom_series):
    import pydicom

    *_, grid, reference = phantom_series
    labels = _labels(grid)
    highdicom_seg(reference, labels, {1: "Liver", 2: "Spleen"}, tmp_path / "b.dcm", binary=True)
    ds = pydicom.dcmread(tmp_path / "b.dcm")
    ds.SegmentSequence = [i for i in ds.SegmentSequence if i.SegmentNumber != 2]
    ds.save_as(tmp_path / "b1.dcm")
    decoded = read_seg(tmp_path / "b1.dcm", reference=reference)
    assert np.array_equal(decoded.labelmap.array, labels)  # before: segment 2's voxels were dropped
    assert [s.name for s in decoded.labelmap.segments] == ["Liver", "Segment 2"]
    assert any("SegmentNumber(s) [2] have no SegmentSequence item" in n for n in decoded.notes)


def test_undamaged_foreign_file_still_decodes(foreign):
    path, labels, reference = foreign
    decoded = read_seg(path, reference=reference)
    assert np.array_equal(decoded.labelmap.array, labels)
    assert decoded.notes == []
    with pytest.raises(InputFileError):
        read_seg(path.with_name("missing.dcm"), reference=reference)
