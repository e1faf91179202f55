"""Broken files at the other reading entry points: run folders (``migrate``), DICOM folders
(``synth``, ``export``/``decode --reference``, a run's DICOM source), the index
(``db import``), the Slicer plugin's header read; and a series with a missing slice.

Every refusal: exit 2 with one stderr line naming the file and what to do, no traceback,
nothing written; where a command skips bad files by design (``migrate`` per trial,
``db import`` per file) the skip is reported with the same words and the rest goes on.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from abdicom_testkit.demo_data import DemoPaths, build_demo_legacy, copy_demo
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.errors import IncompleteFileError
from AdaptiveBrushDicomLib.runs import migrate as mig
from test_fuzz import _run

ADVICE = "copy it again from its source"
SHAPE = (12, 40, 48)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> DemoPaths:
    return build_demo_legacy(tmp_path_factory.mktemp("template"), n_trials=4, shape=SHAPE)


@pytest.fixture(scope="module")
def series(template, tmp_path_factory) -> Path:
    """The demo volume as a DICOM series (12 slices, 1.4 mm apart)."""
    out = tmp_path_factory.mktemp("series") / "series"
    rc, _, err, tb = _run(["synth", str(template.volume_path), "--out", str(out)])
    assert rc == 0 and tb is None, err
    return out


def _one_line(argv: list[str], *fragments: str) -> str:
    rc, out, err, tb = _run(argv)
    assert tb is None, tb
    assert rc == 2, (rc, out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "force=True" not in err
    for f in fragments:
        assert f in err, (f, err)
    return err


def _broken_series(series: Path, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A copy of ``series`` with slice 0007.dcm cut short / emptied / removed: (folder, that file)."""
    folder = tmp_path / kind / "AdaptiveBrushPhantom"
    shutil.copytree(series, folder)
    victim = folder / "0007.dcm"
    if kind == "truncated":
        victim.write_bytes(victim.read_bytes()[:-500])
    elif kind == "empty":
        victim.write_bytes(b"")
    else:
        victim.unlink()
    return folder, victim


EXPECT = {
    "truncated": ("0007.dcm", "the file is incomplete: PixelData (7FE0,0010) ends after 3,340 of its 3,840 bytes "
                  "(0 of 1 frames of 40 rows x 48 columns x 16 bits)", ADVICE),
    "empty": ("0007.dcm", "is empty (0 bytes), too short for a DICOM file, in the series folder",
              "Copy it again from its source, or remove it"),
    "gap": ("has a gap in its slice positions: 2.80 mm between 0006.dcm at LPS (-45.00, -45.00, -21.00) mm and "
            "0008.dcm at LPS (-45.00, -45.00, -18.20) mm, where the slices are 1.40 mm apart (about 1 slice(s) "
            "missing); copy the series again from its source",),
}


# ------------------------------------------------------------------ DICOM folders
@pytest.mark.parametrize("kind", ["truncated", "empty", "gap"])
def test_synth_refuses_a_broken_series_folder(series, tmp_path, kind):
    folder, _ = _broken_series(series, tmp_path, kind)
    out = tmp_path / "out"
    err = _one_line(["synth", str(folder), "--out", str(out)], *EXPECT[kind])
    assert not out.exists()
    if kind == "gap":
        assert "or give --allow-missing-slices to keep the slices at their own positions" in err


def test_synth_allow_missing_slices_keeps_the_slices_at_their_positions(series, tmp_path):
    """With the option the 11 slices are written where they were, the gap kept (GDCM alone
    spread them over the whole extent: 1.54 mm apart, each slice after the gap misplaced)."""
    import pydicom

    folder, _ = _broken_series(series, tmp_path, "gap")
    out = tmp_path / "out"
    rc, _, err, tb = _run(["synth", str(folder), "--out", str(out), "--allow-missing-slices"])
    assert rc == 0 and tb is None, err
    assert err.strip() == ""  # no ITK warning lines either
    src, new = ReferenceSeries.from_folder(folder), ReferenceSeries.from_folder(out)
    assert new.grid.shape_kji == (11, 40, 48) and not new.grid.is_regular
    assert np.allclose(new.grid.slice_origins(), src.grid.slice_origins(), atol=1e-4)
    for a, b in zip(src.paths, new.paths):  # the same image on every slice
        assert np.array_equal(pydicom.dcmread(a).pixel_array, pydicom.dcmread(b).pixel_array)


def test_synth_varying_spacing_is_no_gap(tmp_path):
    """1.25 / 1.3 mm reconstructions (every gap < 1.5x the median): not a missing slice."""
    from AdaptiveBrushDicomLib.core.geometry import Grid
    from AdaptiveBrushDicomLib.dicom.slice_gaps import slice_gaps
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    grid = Grid((6, 20, 24), (0.9, 0.8, 1.25), (-10.0, 5.0, 30.0), np.eye(3),
                slice_positions_mm=[0, 1.25, 2.5, 3.8, 5.1, 6.35])
    create_synthetic_series(np.ones(grid.shape_kji, np.int16), grid, tmp_path / "vary", patient_id="v")
    assert slice_gaps(ReferenceSeries.from_folder(tmp_path / "vary")) == []
    rc, _, err, _ = _run(["synth", str(tmp_path / "vary"), "--out", str(tmp_path / "out")])
    assert rc == 0, err


@pytest.mark.parametrize("kind", ["truncated", "empty"])
def test_export_and_decode_refuse_a_reference_slice_cut_short(template, series, tmp_path, kind):
    folder, _ = _broken_series(series, tmp_path, kind)
    trial = template.run_dir / "segmentations" / "trial_000.seg.nrrd"
    good = tmp_path / "good.dcm"
    rc, _, err, _ = _run(["export", str(trial), "--reference", str(series), "--out", str(good)])
    assert rc == 0, err
    out = tmp_path / "out"
    out.mkdir()
    _one_line(["export", str(trial), "--reference", str(folder), "--out", str(out / "x.dcm")], *EXPECT[kind])
    _one_line(["decode", str(good), "--reference", str(folder), "--out", str(out / "x.seg.nrrd")], *EXPECT[kind])
    assert os.listdir(out) == []


# ------------------------------------------------------------------ run folders
def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["truncated", "empty", "gap"])
def test_migrate_refuses_a_broken_dicom_source(template, series, tmp_path, kind):
    demo = copy_demo(template, tmp_path / "demo")
    folder, _ = _broken_series(series, tmp_path / "vols", kind)
    before = _snapshot(demo.run_dir)
    _one_line(["migrate", str(demo.run_dir), "--volumes-dir", str(folder.parent), "--quiet"],
              "DICOM source folder for", *EXPECT[kind])
    assert _snapshot(demo.run_dir) == before  # nothing written (no dicom/, results.json untouched)


@pytest.mark.parametrize("cut, expect", [
    ("empty", "is empty (0 bytes): it is not a NRRD file, or it was cut short; " + ADVICE),
    ("header", "inside its NRRD header (no blank line before the data): the file is incomplete, or not a NRRD "
               "file; " + ADVICE),
    ("data", "the file is incomplete: its NRRD data (gzip) ends after "),
])
def test_migrate_reports_a_trial_seg_nrrd_cut_short(template, tmp_path, cut, expect):
    """A trial's .seg.nrrd cut short fails alone (reported, with the words of the refusal);
    the other trials migrate."""
    demo = copy_demo(template, tmp_path / "demo")
    trial = demo.run_dir / "segmentations" / "trial_001.seg.nrrd"
    data = trial.read_bytes()
    head = data.index(b"\n\n") + 2
    trial.write_bytes({"empty": b"", "header": data[:head // 2], "data": data[:head + (len(data) - head) // 2]}[cut])
    summary = mig.migrate_paths([demo.run_dir], volumes_dir=demo.volumes_dir, progress=False)
    assert summary.exit_code == 1
    items = {i.key: i for i in summary.reports[0].items}
    assert items["trial_001"].status == "failed"
    assert "trial_001.seg.nrrd" in items["trial_001"].reason and expect in items["trial_001"].reason
    migrated = [k for k, i in items.items() if i.status == "migrated"]
    assert migrated and "trial_001" not in migrated
    assert not (demo.run_dir / "dicom" / "segmentations" / "trial_001.dcm").exists()


@pytest.mark.parametrize("cut", ["empty", "header", "data"])
def test_export_refuses_a_seg_nrrd_cut_short(template, series, tmp_path, cut):
    src = template.run_dir / "segmentations" / "trial_000.seg.nrrd"
    data = src.read_bytes()
    head = data.index(b"\n\n") + 2
    path = tmp_path / "in.seg.nrrd"
    path.write_bytes({"empty": b"", "header": data[:head // 2], "data": data[:head + (len(data) - head) // 2]}[cut])
    out = tmp_path / "out"
    out.mkdir()
    _one_line(["export", str(path), "--reference", str(series), "--out", str(out / "x.dcm")], "in.seg.nrrd", ADVICE)
    assert os.listdir(out) == []


def test_export_refuses_a_seg_nrrd_with_corrupt_gzip_data(template, series, tmp_path):
    src = template.run_dir / "segmentations" / "trial_000.seg.nrrd"
    data = bytearray(src.read_bytes())
    head = data.index(b"\n\n") + 2
    for i in range(head + 50, len(data), 97):  # bytes flipped in the gzip data, the header intact
        data[i] ^= 0xFF
    path = tmp_path / "flipped.seg.nrrd"
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    _one_line(["export", str(path), "--reference", str(series), "--out", str(out / "x.dcm")], "flipped.seg.nrrd",
              ADVICE)
    assert os.listdir(out) == []


# ------------------------------------------------------------------ the index, the Slicer plugin
def test_db_import_reports_empty_and_cut_files_and_indexes_the_rest(template, series, tmp_path):
    folder = tmp_path / "incoming"
    shutil.copytree(series, folder)
    trial = template.run_dir / "segmentations" / "trial_000.seg.nrrd"
    seg = tmp_path / "seg.dcm"
    assert _run(["export", str(trial), "--reference", str(series), "--out", str(seg)])[0] == 0
    (folder / "seg_cut.dcm").write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    (folder / "empty.dcm").write_bytes(b"")
    db = tmp_path / "index.sqlite"
    rc, out, err, tb = _run(["db", "--db", str(db), "import", str(folder), "--json"])
    assert tb is None and rc in (0, 1), err
    report = json.loads(out)
    assert report["added"] == len(list(series.glob("*.dcm")))
    assert report["non_dicom"] == 1  # the empty file: skipped and counted, as every non-DICOM file is
    (error,) = report["errors"]
    assert error["path"].endswith("seg_cut.dcm") and error["reason"].startswith("the file is incomplete: "), error
    assert error["reason"].endswith(ADVICE)


def test_slicer_plugin_header_read_of_a_seg_cut_short(template, series, tmp_path):
    """examineForImport reads the SEG's references with ``plugin_rules.read_seg_references``: a
    file cut inside them is an IncompleteFileError (the plugin logs it and load() reports it),
    a file cut after them still gives its references; ``read_seg`` (what load() calls) then
    refuses it in one line."""
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.slicer import plugin_rules

    trial = template.run_dir / "segmentations" / "trial_000.seg.nrrd"
    seg = tmp_path / "seg.dcm"
    assert _run(["export", str(trial), "--reference", str(series), "--out", str(seg), "--compression",
                 "explicit"])[0] == 0
    data = seg.read_bytes()
    whole = plugin_rules.read_seg_references(str(seg))
    late = tmp_path / "late.dcm"
    late.write_bytes(data[: len(data) - 100])
    assert plugin_rules.read_seg_references(str(late)) == whole
    with pytest.raises(IncompleteFileError, match="PixelData \\(7FE0,0010\\) ends after") as err:
        read_seg(late, reference=series)
    assert "\n" not in str(err.value) and ADVICE in str(err.value)
    early = tmp_path / "early.dcm"
    early.write_bytes(data[:600])
    with pytest.raises(IncompleteFileError, match="the file is incomplete: it ends at byte 600, inside"):
        plugin_rules.read_seg_references(str(early))
