"""Issue 14, "silently wrong": guards on what users hand us by mistake.

An image exported as a segmentation, a metadata table for other labels, a series folder
with a damaged slice, over-long descriptions, a foreign SQLite file as --db, non-ASCII
series text, and a thousand identical warnings.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from AdaptiveBrushDicomLib.cli.main import main
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.messages import summarize_warnings
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg


def _write_image(path, array, grid):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    grid.apply_to_sitk(image)
    sitk.WriteImage(image, str(path), True)


def _one_error(capsys, *fragments):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("abdicom: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _many_labels(grid, n):
    lab = np.zeros(grid.shape_kji, dtype=np.uint16)
    flat = lab.reshape(-1)
    flat[: n * 3] = np.repeat(np.arange(1, n + 1, dtype=np.uint16), 3)
    return lab


# ------------------------------------------------------------------ image instead of labels
def test_image_exported_by_mistake_is_refused(tmp_path, capsys, phantom_series):
    image, labels, _, grid, reference = phantom_series
    noise = np.random.default_rng(3).integers(0, 8, size=image.shape)
    mr = (image.astype(np.int32) * 8 + noise).astype(np.uint16)  # an MR-like uint16 image
    assert len(np.unique(mr)) > 1000
    _write_image(tmp_path / "t1.nii.gz", mr, grid)
    out = tmp_path / "t1.dcm"
    assert main(["export", str(tmp_path / "t1.nii.gz"), "--reference", str(reference.folder),
                 "--out", str(out)]) == 2
    _one_error(capsys, "looks like an image", "--max-labels 1000")
    assert not out.exists()
    # the limit is the user's: 5 labels are too many for --max-labels 4, fine by default
    _write_image(tmp_path / "lab.nrrd", labels, grid)
    assert main(["export", str(tmp_path / "lab.nrrd"), "--reference", str(reference.folder),
                 "--out", str(out), "--max-labels", "4"]) == 2
    _one_error(capsys, "has 5 distinct values")
    assert main(["export", str(tmp_path / "lab.nrrd"), "--reference", str(reference.folder), "--out", str(out)]) == 0


# ------------------------------------------------------------------ metadata table vs labels
@pytest.mark.parametrize("rows, fragment", [
    ("1,Liver\n2,Spleen\n9,Kidney\n", "label(s) [9] are not in the segmentation"),
    ("1,Liver\n", "label(s) [2] of the segmentation have no entry"),
])
def test_segment_table_that_does_not_match_is_refused(tmp_path, capsys, phantom_series, rows, fragment):
    import pydicom

    *_, grid, reference = phantom_series
    lab = np.zeros(grid.shape_kji, dtype=np.uint8)
    lab[2:4, 5:9, 5:9] = 1
    lab[6:8, 10:14, 10:14] = 2
    _write_image(tmp_path / "lab.nrrd", lab, grid)
    (tmp_path / "t.csv").write_text("label,name\n" + rows)
    args = ["export", str(tmp_path / "lab.nrrd"), "--reference", str(reference.folder), "--out",
            str(tmp_path / "s.dcm"), "--segments", str(tmp_path / "t.csv")]
    assert main(args) == 2
    _one_error(capsys, fragment, "--allow-unmatched", "t.csv")
    assert not (tmp_path / "s.dcm").exists()
    assert main(args + ["--allow-unmatched"]) == 0
    err = capsys.readouterr().err
    assert len([ln for ln in err.splitlines() if "does not match the segmentation" in ln]) == 1
    names = [str(i.SegmentLabel) for i in pydicom.dcmread(tmp_path / "s.dcm").SegmentSequence if i.SegmentNumber]
    assert names == (["Liver", "Spleen", "Kidney"] if "9" in rows else ["Liver", "Label_2"])


# ------------------------------------------------------------------ warnings summarised
def test_warnings_are_one_line_per_kind(tmp_path, capsys, phantom_series):
    *_, grid, reference = phantom_series
    lab = _many_labels(grid, 30)
    _write_image(tmp_path / "lab.nrrd", lab, grid)
    assert main(["export", str(tmp_path / "lab.nrrd"), "--reference", str(reference.folder),
                 "--out", str(tmp_path / "s.dcm")]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("abdicom: warning:")]
    terminology = [ln for ln in warnings if "no terminology" in ln]
    assert len(terminology) == 1 and "30 segments ('Label_1', 'Label_2', 'Label_3', ...)" in terminology[0]
    assert len(warnings) == 2  # the other kind: "without an algorithm name"


def test_summarize_warnings_keeps_single_and_distinct_messages():
    msgs = [f"segment 'S{i}': Slicer segment ID 'id{i}' does not fit" for i in range(4)]
    msgs += ["segment 'x': no terminology", "run a: slow", "run a: slow"]
    assert summarize_warnings(msgs) == [
        "4 segments ('S0', 'S1', 'S2', ...): Slicer segment ID '…' does not fit",
        "segment 'x': no terminology",
        "run a: slow (2 times)",
    ]


# ------------------------------------------------------------------ synth input folder
def test_synth_refuses_a_series_folder_with_a_truncated_slice(tmp_path, capsys, phantom_series):
    *_, reference = phantom_series
    folder = tmp_path / "copy"
    folder.mkdir()
    files = sorted(reference.folder.glob("*.dcm"))
    for p in files:
        (folder / p.name).write_bytes(p.read_bytes())
    victim = folder / files[5].name
    victim.write_bytes(victim.read_bytes()[:3000])
    assert main(["synth", str(folder), "--out", str(tmp_path / "out")]) == 2
    _one_error(capsys, files[5].name, "the file is incomplete: PixelData (7FE0,0010) ends after ",
               "copy it again from its source")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ series-level text
@pytest.mark.parametrize("command", ["synth", "export"])
def test_series_description_over_64_characters_is_one_line(tmp_path, capsys, phantom_series, command):
    _, labels, _, grid, reference = phantom_series
    _write_image(tmp_path / "lab.nrrd", labels, grid)
    long = "trial_" + "x" * 70
    if command == "synth":
        args = ["synth", str(tmp_path / "lab.nrrd"), "--out", str(tmp_path / "out")]
    else:
        args = ["export", str(tmp_path / "lab.nrrd"), "--reference", str(reference.folder), "--out",
                str(tmp_path / "out" / "s.dcm")]
    assert main(args + ["--series-description", long]) == 2
    _one_error(capsys, "SeriesDescription (0008,103E)", "at most 64", "--series-description has 76")
    assert not (tmp_path / "out").exists()


def test_non_ascii_content_description_gets_a_character_set(tmp_path, phantom_series):
    import pydicom

    _, labels, segments, _, reference = phantom_series
    write_seg(LabelMap(labels, reference.grid, segments), reference, tmp_path / "s.dcm",
              content_description="Lauf Größe", series_description="trial_1")
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.ContentDescription == "Lauf Größe"
    write_seg(LabelMap(labels, reference.grid, [Segment(label=s.label, name=s.name) for s in segments]),
              reference, tmp_path / "a.dcm", content_description="plain", series_description="trial_2")
    assert "SpecificCharacterSet" not in pydicom.dcmread(tmp_path / "a.dcm")  # ASCII stays default


# ------------------------------------------------------------------ db on a foreign SQLite file
@pytest.mark.parametrize("user_version", [0, 1, 2])
def test_db_commands_leave_a_foreign_sqlite_file_unchanged(tmp_path, capsys, user_version):
    other = tmp_path / "notes.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE series (a)")  # even a table name we use
    con.execute("INSERT INTO series VALUES (1)")
    con.execute(f"PRAGMA user_version = {user_version}")
    con.commit()
    con.close()
    before = other.read_bytes()
    assert before[18:20] == b"\x01\x01"  # rollback journal, not WAL
    for args in (["db", "list"], ["db", "import", str(tmp_path)]):
        assert main(args + ["--db", str(other)]) == 2
        _one_error(capsys, "not an AdaptiveBrushDicom index", "not changed")
    assert other.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]  # no -wal / -shm files
