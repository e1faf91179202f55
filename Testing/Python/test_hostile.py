"""Issue 14, hostile inputs: one test per finding (tracebacks, resource exhaustion, hangs).

Each case exits 2 with one line naming the file, writes nothing, and stays within memory
(the bomb cases run in a subprocess under RLIMIT_AS via ``test_fuzz.run_capped``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from abdicom_testkit import hostile
from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io import image_limits, limits
from test_fuzz import _run, run_capped


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return {s.name: s for s in hostile.write_seeds(tmp_path_factory.mktemp("seeds"), dcmqi=False)}


def _edited(seed, name: str, tmp_path: Path) -> Path:
    change = dict(hostile.EDITS)[name]
    data = hostile._edit(seed.path.read_bytes(), change)
    assert data is not None, name
    path = tmp_path / f"{name}.dcm"
    path.write_bytes(data)
    return path


def _fails(argv: list[str], *fragments: str) -> str:
    rc, out, err, tb = _run(argv)
    assert tb is None, tb
    assert rc == 2, (rc, out, err)
    assert len(err.strip().splitlines()) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    return err


# ------------------------------------------------------------------ tracebacks
@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_deflated_seg(seeds, tmp_path, cut):
    data = seeds["ours-deflate"].path.read_bytes()
    path = tmp_path / "t.dcm"
    path.write_bytes(data[: int(len(data) * cut)])
    _run(["info", str(path)])  # the header may survive a late cut: exit 0 is fine, a traceback is not
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], str(path))
    assert not (tmp_path / "o.seg.nrrd").exists()


def test_corrupt_deflate_stream(seeds, tmp_path):
    data = bytearray(seeds["ours-deflate"].path.read_bytes())
    start = 144 + int.from_bytes(data[140:144], "little")
    data[start + 40:start + 60] = b"\xff" * 20
    path = tmp_path / "c.dcm"
    path.write_bytes(bytes(data))
    _fails(["info", str(path)], "corrupt")
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], "corrupt")


@pytest.mark.parametrize("edit, fragment", [
    ("pixel-spacing-0", "PixelSpacing (0028,0030)"),
    ("pixel-spacing-1-value", "PixelSpacing (0028,0030)"),
    ("pixel-spacing-nan", "PixelSpacing (0028,0030)"),
    ("orientation-zero", "not two unit vectors"),
    ("orientation-nan", "6 finite numbers"),
    ("orientation-parallel", "not at right angles"),
    ("orientation-skewed", "not at right angles"),
    ("orientation-5-values", "6 finite numbers"),
    ("rows-0", "Rows (0028,0010) is 0"),
    ("frames-0", "NumberOfFrames (0028,0008) is 0"),
    ("position-2-values", "has 2 values, not 3"),
    ("position-text", "is not numbers"),
    ("position-nan", "not a position in the patient"),
    ("position-huge", "not a position in the patient"),
    ("bits-1", "BitsAllocated (0028,0100) is 1"),
    ("segment-number-missing", "SegmentNumber (0062,0004)"),
    ("rows-columns-65535", "--max-voxels"),
    ("frames-huge", "--max-voxels"),
])
@pytest.mark.parametrize("with_reference", [False, True])
def test_broken_header_one_line(seeds, tmp_path, edit, fragment, with_reference):
    seed = seeds["ours-explicit"]
    path = _edited(seed, edit, tmp_path)
    ref = ["--reference", str(seed.reference)] if with_reference else []
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd"), *ref], fragment, str(path))
    assert not (tmp_path / "o.seg.nrrd").exists()


@pytest.mark.parametrize("seed", ["ours-deflate", "ours-explicit"])
def test_nested_sequences(seeds, tmp_path, seed):
    """5,000 nested sequences (RecursionError before) in a plain and a Deflated file."""
    path = tmp_path / "nested.dcm"
    path.write_bytes(hostile.nested_sequences(seeds[seed].path.read_bytes()))
    _fails(["info", str(path)], "nested deeper than 32")
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], "nested")


@pytest.mark.parametrize("edit", ["slice-spacing-negative", "slice-spacing-tiny"])
def test_bad_slice_spacing_ignored_not_trusted(seeds, tmp_path, edit):
    """A negative or 1e-9 mm SpacingBetweenSlices is not used: the spacing comes from the frames."""
    seed = seeds["ours-explicit"]
    path = _edited(seed, edit, tmp_path)
    out = tmp_path / "o.seg.nrrd"
    rc, stdout, err, tb = _run(["decode", str(path), "--out", str(out), "--json"])
    assert tb is None and rc == 0, err
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    good = read_seg(seed.path)
    assert json.loads(stdout)["shape_kji"] == list(good.labelmap.grid.shape_kji)


@pytest.mark.parametrize("edit", ["label-latin1-undeclared", "label-invalid-utf8"])
def test_undeclared_or_invalid_text_no_traceback(seeds, tmp_path, edit):
    path = _edited(seeds["ours-explicit"], edit, tmp_path)
    for argv in (["info", str(path)], ["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")]):
        rc, out, err, tb = _run(argv)
        assert tb is None and rc in (0, 2), (rc, err)


def test_slide_microscopy_refused_in_words(seeds, tmp_path):
    def slide(ds):
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        ds.TotalPixelMatrixRows = 40000
        for fg in ds.PerFrameFunctionalGroupsSequence:
            item = Dataset()
            item.XOffsetInSlideCoordinateSystem = 1.0
            item.YOffsetInSlideCoordinateSystem = 2.0
            fg.PlanePositionSlideSequence = Sequence([item])
    data = hostile._edit(seeds["highdicom-labelmap"].path.read_bytes(), slide)
    path = tmp_path / "sm.dcm"
    path.write_bytes(data)
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], "slide-microscopy", "3D image series")


def test_2d_seg_without_positions_refused_in_words(seeds, tmp_path):
    def flat(ds):
        for fg in ds.PerFrameFunctionalGroupsSequence:
            del fg.PlanePositionSequence
        shared = ds.SharedFunctionalGroupsSequence[0]
        if "PlanePositionSequence" in shared:
            del shared.PlanePositionSequence
    data = hostile._edit(seeds["highdicom-labelmap"].path.read_bytes(), flat)
    path = tmp_path / "xray.dcm"
    path.write_bytes(data)
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], "2D image", "PlanePositionSequence")


def test_jpegls_frame_bigger_than_header(seeds, tmp_path):
    path = hostile.jpegls_bomb(seeds["ours-jpegls"].path, tmp_path / "jls.dcm", size=5000)
    _fails(["decode", str(path), "--out", str(tmp_path / "o.seg.nrrd")], "5000 x 5000", "Rows x Columns")


# ------------------------------------------------------------------ resource exhaustion
def _bomb_slice_reference(seeds, tmp_path: Path) -> Path:
    """A copy of the seeds' reference series whose first slice is a deflate bomb (8 GiB inflated)."""
    ref = tmp_path / "ref_bomb"
    shutil.copytree(seeds["ours-explicit"].reference, ref)
    first = sorted(ref.glob("*.dcm"))[0]
    hostile.deflate_bomb(first, first.with_suffix(".tmp"))
    first.with_suffix(".tmp").replace(first)
    return ref


def test_reference_and_series_bombs_within_memory(seeds, tmp_path):
    """Deflate bomb as a reference slice: export reads headers only (fine), synth refuses it,
    db import indexes its header; a 65535 x 65535 reference header is refused; all within 3 GiB."""
    ref = _bomb_slice_reference(seeds, tmp_path)
    big = tmp_path / "ref_big"
    shutil.copytree(seeds["ours-explicit"].reference, big)
    import pydicom

    for p in big.glob("*.dcm"):
        ds = pydicom.dcmread(p)
        ds.Rows = ds.Columns = 65535
        ds.save_as(p)
    labels = tmp_path / "labels.nrrd"
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    _, lm = hostile.phantom_reference(tmp_path / "ref_plain")
    write_seg_nrrd(lm, labels.with_suffix(".seg.nrrd"))
    out = tmp_path / "out"
    out.mkdir()
    db = tmp_path / "index.sqlite"
    results = run_capped([
        ["export", str(labels.with_suffix(".seg.nrrd")), "--reference", str(ref), "--out", str(out / "a.dcm")],
        ["synth", str(ref), "--out", str(out / "series")],
        ["db", "import", str(ref), "--db", str(db), "--workers", "1"],
        ["export", str(labels.with_suffix(".seg.nrrd")), "--reference", str(big), "--out", str(out / "b.dcm")],
    ])
    for r in results:
        assert r["tb"] is None, r["tb"]
    assert results[0]["rc"] == 0, results[0]["err"]
    assert results[1]["rc"] == 2 and "deflate bomb" in results[1]["err"]
    assert results[2]["rc"] == 0, results[2]["err"]
    assert results[3]["rc"] == 2 and "--max-voxels" in results[3]["err"]
    assert sorted(os.listdir(out)) == ["a.dcm"]


def test_gzip_bomb_trial_fails_alone_in_migrate(tmp_path):
    """One trial's .seg.nrrd is a gzip bomb: that trial fails, the others migrate, memory capped."""
    from abdicom_testkit.demo_data import build_demo_legacy

    demo = build_demo_legacy(tmp_path / "demo", n_trials=3, shape=(8, 32, 32), pruned=())
    victim = demo.run_dir / "segmentations" / "trial_001.seg.nrrd"
    assert victim.is_file()
    hostile.gzip_seg_nrrd_bomb(victim)
    [r] = run_capped([["migrate", str(demo.run_dir), "--volumes-dir", str(demo.volumes_dir), "--quiet"]])
    assert r["tb"] is None, r["tb"]
    assert r["rc"] == 1, r["err"]
    trials = json.loads((demo.run_dir / "results.json").read_text())["trials"]
    status = {t["trial_number"]: t.get("dicom_status") for t in trials}
    assert status == {0: "migrated", 1: "failed", 2: "migrated"}
    assert "gzip bomb" in trials[1]["dicom_error"]


def test_seg_nrrd_gzip_bomb_refused_by_reader(tmp_path):
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    bomb = hostile.gzip_seg_nrrd_bomb(tmp_path / "b.seg.nrrd", inflated_bytes=256 << 20)
    with pytest.raises(limits.LimitError, match="gzip bomb"):
        read_segmentation(bomb)


def test_nhdr_data_file_device_refused(tmp_path):
    nhdr = hostile.nhdr_dev_zero(tmp_path / "z.nhdr")
    _fails(["synth", str(nhdr), "--out", str(tmp_path / "s")], "/dev/zero", "device")
    assert not (tmp_path / "s").exists()


def test_decode_of_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "seg.dcm"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "AdaptiveBrushDicomLib", "decode", str(fifo), "--out",
                           str(tmp_path / "o.seg.nrrd"), "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr
    assert json.loads(proc.stdout) == {"error": "SEG file is a FIFO (named pipe); give a regular file",
                                       "file": str(fifo)}
    assert time.monotonic() - t0 < 60


def test_70000_labels_duplicate_check_is_linear():
    """check_segments on 70,000 segments (quadratic before: minutes) still finds a duplicate."""
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.dicom.seg.labels import check_segments
    from AdaptiveBrushDicomLib.errors import UserError

    segments = [Segment(label=n, name=f"s{n}") for n in range(1, 70001)]
    array = np.arange(1, 70001, dtype=np.uint32).reshape(7, 100, 100)
    check_segments(array, segments, "x")
    with pytest.raises(UserError, match=r"label value\(s\) \[5\]"):
        check_segments(array, segments + [Segment(label=5, name="again")], "x")


# ------------------------------------------------------------------ run folders
def test_config_yaml_fifo_does_not_hang(tmp_path):
    from AdaptiveBrushDicomLib.runs.schema import read_config

    os.mkfifo(tmp_path / "config.yaml")
    with pytest.raises(limits.LimitError, match="FIFO"):
        read_config(tmp_path / "config.yaml")


def test_config_yaml_symlink_to_dev_zero(tmp_path):
    from AdaptiveBrushDicomLib.runs.schema import read_config

    (tmp_path / "config.yaml").symlink_to("/dev/zero")
    with pytest.raises(limits.LimitError, match="device"):
        read_config(tmp_path / "config.yaml")


def test_config_yaml_alias_bomb(tmp_path):
    from AdaptiveBrushDicomLib.runs.schema import read_config

    (tmp_path / "config.yaml").write_text(hostile.YAML_BOMB)
    t0 = time.monotonic()
    with pytest.raises(InputFileError, match="alias"):
        read_config(tmp_path / "config.yaml")
    assert time.monotonic() - t0 < 30
    (tmp_path / "config.yaml").write_text("sample_data: MRBrainTumor1\nalgorithm: watershed\n")
    assert read_config(tmp_path / "config.yaml") == {"sample_data": "MRBrainTumor1", "algorithm": "watershed"}


def test_config_yaml_too_big(tmp_path):
    from AdaptiveBrushDicomLib.runs.schema import read_config

    (tmp_path / "config.yaml").write_bytes(b"a: " + b"x" * (5 << 20) + b"\n")
    with pytest.raises(limits.LimitError, match="larger than 4 MiB"):
        read_config(tmp_path / "config.yaml")


@pytest.mark.parametrize("kind, fragment", [("deep", "nested deeper than 64"), ("number", "5001-digit number"),
                                            ("nul", "")])
def test_results_json_hostile(tmp_path, kind, fragment):
    from AdaptiveBrushDicomLib.runs.results import load_run

    (tmp_path / "results.json").write_bytes(hostile.results_json_bombs(tmp_path)[kind])
    with pytest.raises(InputFileError, match=fragment):
        load_run(tmp_path, require_migrated=False)


@pytest.mark.parametrize("value, fragment", [("../outside.dcm", "'..'"), (["a.dcm"], "must be a path"),
                                             (42, "must be a path"), ("dicom/a\x00b.dcm", "NUL byte")])
def test_dicom_seg_path_hostile(tmp_path, value, fragment):
    from AdaptiveBrushDicomLib.runs.layout import safe_relative_path

    with pytest.raises(InputFileError, match=fragment):
        safe_relative_path(tmp_path, value, field_name="trials/0/dicom_seg_path")


def test_legacy_symlink_out_of_folder_refused(tmp_path):
    """results.legacy.json symlinked out of the run: migrate refuses, results.json is not rewritten."""
    from abdicom_testkit.demo_data import build_demo_legacy

    demo = build_demo_legacy(tmp_path / "demo", n_trials=2, shape=(8, 32, 32), pruned=())
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes((demo.run_dir / "results.json").read_bytes())
    (demo.run_dir / "results.legacy.json").symlink_to(outside)
    before = (demo.run_dir / "results.json").read_bytes()
    rc, out, err, tb = _run(["migrate", str(demo.run_dir), "--volumes-dir", str(demo.volumes_dir), "--quiet"])
    assert tb is None and rc != 0
    assert (demo.run_dir / "results.json").read_bytes() == before
    assert not (demo.run_dir / "dicom").exists() or not list((demo.run_dir / "dicom").rglob("trial_*.dcm"))


# ------------------------------------------------------------------ --json on failure
@pytest.mark.parametrize("argv", [
    ["info", "{missing}"],
    ["decode", "{missing}", "--out", "{tmp}/o.seg.nrrd"],
    ["export", "{missing}", "--reference", "{tmp}", "--out", "{tmp}/o.dcm"],
    ["synth", "{missing}", "--out", "{tmp}/s"],
    ["migrate", "{missing}"],
    ["db", "import", "{missing}", "--db", "{tmp}/i.sqlite"],
    ["db", "show", "1.2.3", "--db", "{tmp}/i.sqlite"],
    ["info"],  # a usage mistake
])
def test_json_on_failure(tmp_path, argv):
    argv = [a.format(missing=tmp_path / "nope", tmp=tmp_path) for a in argv] + ["--json"]
    rc, out, err, tb = _run(argv)
    assert tb is None and rc == 2, (rc, out, err)
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    payload = json.loads(lines[0])
    assert set(payload) == {"error", "file"} and payload["error"]


def test_max_voxels_option(seeds, tmp_path):
    seed = seeds["ours-explicit"]
    _fails(["decode", str(seed.path), "--out", str(tmp_path / "o.seg.nrrd"), "--max-voxels", "100"],
           "more than the limit of 100", "--max-voxels")
    rc, out, err, tb = _run(["decode", str(seed.path), "--out", str(tmp_path / "o.seg.nrrd")])
    assert rc == 0, err


def test_db_import_fifo_and_symlink_out(tmp_path):
    """db import: a FIFO is refused in words (not 'no such file'), a symlink out of the folder too."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    _fails(["db", "import", str(fifo), "--db", str(tmp_path / "i.sqlite")], "FIFO")
    folder = tmp_path / "series"
    folder.mkdir()
    outside = tmp_path / "outside.dcm"
    outside.write_bytes(b"\0" * 200)
    (folder / "link.dcm").symlink_to(outside)
    _fails(["db", "import", str(folder), "--db", str(tmp_path / "i.sqlite")], "outside", str(folder))


def test_gzip_check_accepts_real_seg_nrrd_with_trailing_newline():
    """Slicer's .seg.nrrd (corpus gold, 7.3 MB inflated in several 4 MiB steps, a newline after the
    gzip stream) passes the gzip check; the count equals what the sizes imply."""
    from conftest import corpus_path

    path = corpus_path("adaptivebrush-gold", "MRBrainTumor1_tumor", "gold.seg.nrrd")
    data = path.read_bytes()
    start = data.index(b"\n\n") + 2
    import io as _io

    assert limits.gzip_size_at_most(_io.BytesIO(data[start:]), 256 * 256 * 112, path) == 256 * 256 * 112
    image_limits.check_image(path)
