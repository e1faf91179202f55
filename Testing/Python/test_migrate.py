"""Migration of legacy optimization runs and gold standards to DICOM (issue 5).

Covers: the migrated layout and UIDs, verification by decoding, idempotence, kill -9 at
random moments followed by a re-run (same files, UIDs and bytes as an uninterrupted run,
which also runs with --jobs 2), bad input of every kind listed in the issue, and the
gold standards of ../shared/corpus/adaptivebrush-gold migrated with --volume.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import corpus_path

from AdaptiveBrushDicomLib.runs import migrate as mig
from abdicom_testkit.demo_data import DemoPaths, build_demo_legacy, copy_demo
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.runs.results import load_gold_standard, load_run
from AdaptiveBrushDicomLib.runs.schema import validate_results

SHAPE = (12, 40, 48)
N_TRIALS = 5
PKG_DIR = Path(mig.__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> DemoPaths:
    return build_demo_legacy(tmp_path_factory.mktemp("template"), n_trials=N_TRIALS, shape=SHAPE)


@pytest.fixture
def demo(template, tmp_path) -> DemoPaths:
    return copy_demo(template, tmp_path / "demo")


def snapshot(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mtime_ns) of every file (symlinks as their target text)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.name in exclude:
            continue
        if p.is_symlink():
            out[str(p.relative_to(root))] = (os.readlink(p).encode(), 0)
        elif p.is_file():
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def contents(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {k: v[0] for k, v in snapshot(root, exclude).items()}


def run_migrate(*paths: Path, **kwargs):
    kwargs.setdefault("progress", False)
    return mig.migrate_paths(list(paths), **kwargs)


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "AdaptiveBrushDicomLib", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def items_by_key(report) -> dict[str, mig.ItemRecord]:
    return {i.key: i for i in report.items}


def report_for(summary, folder: Path):
    for r in summary.reports:
        if Path(r.folder) == folder:
            return r
    raise AssertionError(f"no report for {folder}")


# ----------------------------------------------------------------------------- happy path
def test_migrate_run_and_gold(demo):
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    originals = contents(demo.root)
    summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    assert {r.kind for r in summary.reports} == {"run", "gold_standard"}

    # originals untouched, legacy copy byte-identical
    after = contents(demo.root)
    for rel, data in originals.items():
        if rel.endswith(("results.json", "metadata.json")):
            continue
        assert after[rel] == data, rel
    assert (demo.run_dir / "results.legacy.json").read_bytes() == originals[str(
        (demo.run_dir / "results.json").relative_to(demo.root))]
    assert (demo.gold_dir / "metadata.legacy.json").read_bytes() == originals[str(
        (demo.gold_dir / "metadata.json").relative_to(demo.root))]

    # every legacy field kept, dicom fields added
    legacy = json.loads((demo.run_dir / "results.legacy.json").read_text())
    new = json.loads((demo.run_dir / "results.json").read_text())
    validate_results(new)
    for key, value in legacy.items():
        if key != "trials":
            assert new[key] == value
    for old_t, new_t in zip(legacy["trials"], new["trials"]):
        assert {k: v for k, v in new_t.items() if not k.startswith("dicom_")} == old_t

    # one image -> one study, one volume series, shared by run and gold standard
    run = load_run(demo.run_dir)
    gold = load_gold_standard(demo.gold_dir, require_migrated=True)
    assert run.dicom.patient_id == f"AdaptiveBrush_{demo.sample}"
    assert run.dicom.study_instance_uid == gold.dicom.study_instance_uid
    assert run.dicom.volume_series_uid == gold.dicom.volume_series_uid
    ref = ReferenceSeries.from_folder(run.volume_dir)
    assert ref.series_instance_uid == run.dicom.volume_series_uid
    assert ReferenceSeries.from_folder(gold.volume_dir).sop_instance_uids == ref.sop_instance_uids

    # each trial: status, SEG decodes to its source voxel by voxel, series naming
    rep = report_for(summary, demo.run_dir)
    recs = items_by_key(rep)
    assert len(run.trials) == N_TRIALS
    for t in run.trials:
        rec = recs[f"trial_{t.number:03d}"]
        if t.number in demo.pruned_trials:
            assert t.status == "pruned" and t.seg_path is None
            assert rec.status == "skipped" and rec.reason_code == "pruned"
            continue
        assert t.status == "migrated" and rec.status == "migrated"
        assert rec.source_sha256 and rec.output_sha256 and rec.voxels_verified == int(np.prod(SHAPE))
        decoded = read_seg(t.seg_path, reference=ref)
        assert decoded.series_instance_uid == t.series_instance_uid == rec.series_instance_uid
        assert decoded.referenced_series_uid == ref.series_instance_uid
        assert decoded.series_description == f"{run.name} trial_{t.number:03d}_{t.params['algorithm']}"
        assert int(decoded.dataset.SeriesNumber) == 1000 + t.number
        src = read_segmentation(demo.run_dir / "segmentations" / f"trial_{t.number:03d}.seg.nrrd")
        assert np.array_equal(decoded.labelmap.array.astype(int), src.array.astype(int))
        seg = decoded.labelmap.segments[0]
        assert seg.algorithm_type.value == "AUTOMATIC"
        assert seg.algorithm_name == t.params["algorithm"]
    # gold standard: semi-automatic (clicks + base algorithm)
    g = read_seg(gold.seg_path, reference=gold.volume_dir)
    assert g.labelmap.segments[0].algorithm_type.value == "SEMIAUTOMATIC"
    # reports
    report = json.loads((demo.run_dir / "migration_report.json").read_text())
    assert report["totals"]["migrated"] == N_TRIALS - len(demo.pruned_trials)
    assert report["totals"]["failed"] == 0
    assert "| trial_000 | migrated |" in (demo.run_dir / "migration_report.md").read_text()
    # nothing temporary left behind (the lock file beside dicom/ may stay)
    assert not [p for p in demo.root.rglob(".*") if p.is_file() and p.name != ".abdicom-migrate.lock"]


def test_second_run_changes_nothing(demo, capsys):
    from AdaptiveBrushDicomLib.cli.main import main

    assert run_migrate(demo.root, volumes_dir=demo.volumes_dir).exit_code == 0
    before = snapshot(demo.root)
    # no volume needed any more: an already migrated folder is recognised first
    assert main(["migrate", str(demo.root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("already migrated") == 2
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.reports[0].status == "already_migrated"
    assert snapshot(demo.root) == before


def test_dry_run_writes_nothing(demo):
    before = snapshot(demo.root)
    summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir, dry_run=True)
    assert summary.exit_code == 0
    rep = report_for(summary, demo.run_dir)
    assert rep.status == "planned"
    assert sum(1 for i in rep.items if i.status == "planned") == N_TRIALS - len(demo.pruned_trials)
    assert snapshot(demo.root) == before


def test_without_volume_says_how_to_give_one(demo):
    before = snapshot(demo.root)
    with pytest.raises(UserError) as exc:
        run_migrate(demo.run_dir)
    msg = str(exc.value)
    assert "--volume" in msg and "--volumes-dir" in msg and demo.sample in msg
    with pytest.raises(UserError, match="none of"):
        run_migrate(demo.run_dir, volumes_dir=demo.root)  # no <sample>.nrrd there
    proc = cli("migrate", str(demo.run_dir))
    assert proc.returncode == 2 and "--volumes-dir" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(demo.root) == before


# ----------------------------------------------------------------------------- kill -9
def _run_and_kill(cmd: list[str], env: dict, after_lines: int, delay: float) -> bool:
    """Start ``cmd``; SIGKILL it ``delay`` s after it printed ``after_lines`` progress lines.

    Returns True if it was killed, False if it finished first."""
    import queue
    import threading

    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump() -> None:
        for line in p.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = 0
    while seen < after_lines:
        line = lines.get(timeout=60)
        if line is None:
            break
        seen += ": " in line and "/" in line
    time.sleep(delay)
    killed = p.poll() is None
    if killed:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return killed


def test_kill9_at_random_moments_then_rerun_equals_uninterrupted(template, tmp_path):
    reference = copy_demo(template, tmp_path / "a")
    victim = copy_demo(template, tmp_path / "b")
    ref_summary = run_migrate(reference.root, volumes_dir=reference.volumes_dir)
    assert ref_summary.exit_code == 0, ref_summary.to_text()

    env = dict(os.environ, PYTHONPATH=str(PKG_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = random.Random(20260125)
    history = []
    for scenario in range(4):
        # a fresh copy per scenario; a scenario counts when it was killed at least twice
        # before a run got to the end (trials take ~50 ms here, so a late kill may miss)
        victim = copy_demo(template, tmp_path / f"b{scenario}")
        cmd = [sys.executable, "-m", "AdaptiveBrushDicomLib", "migrate", str(victim.root),
               "--volumes-dir", str(victim.volumes_dir)]
        kills = 0
        for attempt in range(4):
            # random point: after 0..4 of the 6 progress lines (1 gold + 5 trials) plus a
            # random delay; with 0 lines the kill lands in start-up, volume writing or the
            # first SEG
            after = rng.randint(0, 4)
            delay = rng.uniform(0.0, 0.05) if after else rng.uniform(0.6, 1.8)
            killed = _run_and_kill(cmd, env, after, delay)
            history.append((scenario, after, round(delay, 3), killed))
            if not killed:
                break
            kills += 1
        if kills >= 2:
            break
    print("kill history (scenario, after lines, delay s, killed):", history)
    assert kills >= 2, f"could not kill the migration twice before it finished: {history}"
    # finish with two worker processes: parallel and serial results must be identical too
    proc = cli("migrate", str(victim.root), "--volumes-dir", str(victim.volumes_dir), "--jobs", "2", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    reports = ("migration_report.json", "migration_report.md")
    a, b = contents(reference.root, reports), contents(victim.root, reports)
    assert sorted(a) == sorted(b)  # same files, no temporary leftovers
    for rel in a:
        assert a[rel] == b[rel], f"{rel} differs after kill -9 + re-run"
    for folder in (reference.run_dir, reference.gold_dir):
        ra = json.loads((folder / "migration_report.json").read_text())
        rb = json.loads((victim.root / folder.relative_to(reference.root) / "migration_report.json").read_text())
        keys = ("key", "status", "series_instance_uid", "sop_instance_uid", "output_sha256", "source_sha256",
                "voxels_verified")
        assert [{k: i[k] for k in keys} for i in ra["items"]] == [{k: i[k] for k in keys} for i in rb["items"]]
    # and once more: nothing changes
    before = snapshot(victim.root)
    proc = cli("migrate", str(victim.root), "--quiet")
    assert proc.returncode == 0 and "already migrated" in proc.stdout
    assert snapshot(victim.root) == before


# ----------------------------------------------------------------------------- bad input
def _write_seg(path: Path, array: np.ndarray, grid, segments) -> None:
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    write_seg_nrrd(LabelMap(array, grid, segments), path)


def test_bad_trials_are_reported_and_the_others_migrated(demo, tmp_path):
    from abdicom_testkit.phantom import phantom_grid
    from AdaptiveBrushDicomLib.core.segment import Segment

    run = demo.run_dir
    segs = run / "segmentations"
    grid = phantom_grid(shape=SHAPE)
    outside = tmp_path / "outside.seg.nrrd"
    shutil.copy2(segs / "trial_000.seg.nrrd", outside)
    (segs / "trial_012.seg.nrrd").symlink_to(outside)
    # half a voxel off the volume's lattice
    off = grid.with_shape_and_origin(grid.shape_kji, np.asarray(grid.origin) + np.asarray(grid.spacing_ijk) / 2)
    box = np.zeros(SHAPE, np.uint8)
    box[4:8, 10:20, 10:20] = 1
    _write_seg(segs / "trial_013.seg.nrrd", box, off, [Segment(1, "Box")])
    # two layers sharing voxels
    layers = np.zeros((2,) + SHAPE, np.uint8)
    layers[0, 4:8, 10:20, 10:20] = 1
    layers[1, 5:9, 15:25, 15:25] = 1
    _write_seg(segs / "trial_014.seg.nrrd", layers, grid, [Segment(1, "A", layer=0), Segment(1, "B", layer=1)])
    (segs / "trial_017.seg.nrrd").write_bytes(b"NRRD0004\nthis is not a segmentation\n")

    data = json.loads((run / "results.json").read_text())
    extra = [
        {"trial_number": 10, "params": {}, "segmentation_path": "../../outside.seg.nrrd"},
        {"trial_number": 11, "params": {}, "segmentation_path": str(outside)},
        {"trial_number": 12, "params": {}},
        {"trial_number": 13, "params": {}},
        {"trial_number": 14, "params": {}},
        {"trial_number": 15, "params": {}},
        {"trial_number": 15, "params": {}},
        {"trial_number": 16, "params": {}, "pruned": False},
        {"trial_number": 17, "params": {}},
    ]
    data["trials"] += extra
    (run / "results.json").write_text(json.dumps(data, indent=2))
    outside_before = outside.read_bytes()

    summary = run_migrate(run, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    rep = summary.reports[0]
    assert rep.status == "partial"
    recs = items_by_key(rep)
    expect = {"trial_010": "path_outside", "trial_011": "path_outside", "trial_012": "path_outside",
              "trial_013": "wrong_geometry", "trial_014": "overlap", "trial_015#10": "duplicate",
              "trial_015#11": "duplicate", "trial_016": "missing_file", "trial_017": "unreadable"}
    for key, code in expect.items():
        assert recs[key].status == "failed", key
        assert recs[key].reason_code == code, (key, recs[key].reason)
        assert recs[key].reason
    assert "'..'" in recs["trial_010"].reason and "absolute" in recs["trial_011"].reason
    assert "outside" in recs["trial_012"].reason and "lattice" in recs["trial_013"].reason
    assert "share" in recs["trial_014"].reason and "appears 2 times" in recs["trial_015#10"].reason
    for n in range(N_TRIALS):
        want = "skipped" if n in demo.pruned_trials else "migrated"
        assert recs[f"trial_{n:03d}"].status == want
    assert outside.read_bytes() == outside_before
    # results.json records the failures and still validates; the run loads
    new = json.loads((run / "results.json").read_text())
    validate_results(new)
    failed = [t for t in new["trials"] if t.get("dicom_status") == "failed"]
    assert len(failed) == len(extra) and all(t["dicom_error"] for t in failed)
    loaded = load_run(run)
    assert len(loaded.migrated_trials) == N_TRIALS - len(demo.pruned_trials)
    md = (run / "migration_report.md").read_text()
    # the Markdown report is for people: one row per failed item with its sentence, no reason codes
    for key in expect:
        assert f"| {key} | failed |" in md, key
    assert not any(code in md for code in expect.values() if "_" in code), md  # path_outside, ...
    assert "lattice" in md and "appears 2 times" in md
    # CLI: non-zero exit, failures listed
    proc = cli("migrate", str(run), "--volumes-dir", str(demo.volumes_dir), "--quiet")
    assert proc.returncode == 1 and "trial_013: failed" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (b"{ not json", "not valid JSON"),
    (json.dumps({"trials": [{"params": {}}]}).encode(), "trials/0: 'trial_number' is a required property"),
    (json.dumps({"config_name": "x"}).encode(), "'trials' is a required property"),
    (json.dumps({"trials": [{"trial_number": "seven"}]}).encode(), "trials/0/trial_number"),
])
def test_broken_results_json(demo, content, message):
    (demo.run_dir / "results.json").write_bytes(content)
    summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    run_rep = report_for(summary, demo.run_dir)
    assert run_rep.status == "failed" and message in run_rep.errors[0], run_rep.errors
    assert "results.json" in run_rep.errors[0]
    assert report_for(summary, demo.gold_dir).status == "migrated"  # the other folder still migrated
    assert (demo.run_dir / "results.json").read_bytes() == content  # untouched
    assert not (demo.run_dir / "dicom").exists()
    # refused: nothing at all is written into the folder (the summary says why)
    assert not (demo.run_dir / "migration_report.json").exists()
    assert "left unchanged" in run_rep.errors[0]


def test_disk_full_then_resume(demo, monkeypatch):
    real_replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith("trial_002.dcm"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(mig.os, "replace", full)
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    rec = items_by_key(summary.reports[0])["trial_002"]
    assert rec.status == "failed" and rec.reason_code == "io_error" and "disk full" in rec.reason
    assert not (demo.run_dir / "dicom/segmentations/trial_002.dcm").exists()
    assert not [p for p in (demo.run_dir / "dicom").rglob(".*")]  # no partial file, no lock
    assert items_by_key(summary.reports[0])["trial_001"].status == "migrated"
    assert json.loads((demo.run_dir / "results.json").read_text())["trials"][2]["dicom_status"] == "failed"

    monkeypatch.setattr(mig.os, "replace", real_replace)
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    recs = items_by_key(summary.reports[0])
    assert recs["trial_002"].status == "migrated" and not recs["trial_002"].already_present
    assert recs["trial_001"].already_present
    assert load_run(demo.run_dir).trial(2).status == "migrated"


def test_read_only_folder(demo, monkeypatch):
    run = demo.run_dir
    before = snapshot(demo.root)
    real_open = open

    def deny(path, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and Path(path).resolve().is_relative_to(run.resolve()):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, mode, *a, **k)

    if os.geteuid() != 0:  # a real read-only folder where permissions apply
        run.chmod(0o555)
    else:  # root ignores permissions: refuse writes at the open() the migration uses
        from AdaptiveBrushDicomLib.runs import files as mig_files

        monkeypatch.setattr(mig_files, "open", deny, raising=False)
    try:
        summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir)
    finally:
        run.chmod(0o755)
    assert summary.exit_code == 1
    rep = report_for(summary, demo.run_dir)
    assert rep.status == "failed" and "not writable" in rep.errors[0] and "chmod" in rep.errors[0]
    assert report_for(summary, demo.gold_dir).status == "migrated"
    after = snapshot(demo.root)
    assert {k: v for k, v in after.items() if k.startswith("optimization_results")} == \
        {k: v for k, v in before.items() if k.startswith("optimization_results")}


def test_conflicting_existing_seg_is_not_overwritten(demo):
    assert run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir).exit_code == 0
    seg0 = demo.run_dir / "dicom/segmentations/trial_000.dcm"
    seg1 = demo.run_dir / "dicom/segmentations/trial_001.dcm"
    foreign = seg1.read_bytes()
    seg0.write_bytes(foreign)  # someone put another SEG where trial 0's belongs
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    rec = items_by_key(summary.reports[0])["trial_000"]
    assert rec.reason_code == "conflict" and "move it out" in rec.reason
    assert seg0.read_bytes() == foreign


def test_discover_and_volume_lookup(demo, tmp_path):
    jobs = mig.discover([demo.root])
    assert [(j.kind, j.name) for j in jobs] == [("gold_standard", demo.gold_dir.name), ("run", demo.run_dir.name)]
    assert [j.kind for j in mig.discover([demo.runs_dir])] == ["run"]
    assert [j.kind for j in mig.discover([demo.gold_dir])] == ["gold_standard"]
    with pytest.raises(UserError, match="no optimization run"):
        mig.discover([tmp_path])
    assert mig.find_volume(demo.sample, demo.volumes_dir) == demo.volume_path
    (tmp_path / "MRHead").mkdir()
    assert mig.find_volume("MRHead", tmp_path) == tmp_path / "MRHead"
    assert mig.find_volume("nothing", tmp_path) is None


def test_progress_plain_lines_and_bar():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    plain = io.StringIO()
    p = mig.Progress("run x", 2, plain)
    p.step("trial_000 migrated")
    p.step("trial_001 migrated")
    assert plain.getvalue().splitlines() == ["run x: 1/2 trial_000 migrated", "run x: 2/2 trial_001 migrated"]
    tty = Tty()
    p = mig.Progress("run x", 2, tty)
    p.step("a")
    p.step("b")
    assert tty.getvalue().count("\r") == 2 and "[" + "#" * 30 + "]" in tty.getvalue()


# ----------------------------------------------------------------------------- corpus gold standards
@pytest.mark.parametrize("name", ["MRBrainTumor1_tumor", "idc_mri_t2_lesion"])
def test_corpus_gold_standard_with_volume(name, tmp_path):
    import SimpleITK as sitk

    from AdaptiveBrushDicomLib.core.align import align_to_grid
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    src = corpus_path("adaptivebrush-gold", name)
    gold = tmp_path / "GoldStandards" / name
    gold.parent.mkdir()
    shutil.copytree(src, gold, copy_function=shutil.copy2)
    for p in [gold, *gold.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # the corpus is read-only
    lm = read_segmentation(gold / "gold.seg.nrrd")
    # the source image is not available: an image on the gold's grid stands in for it
    meta = json.loads((gold / "metadata.json").read_text())
    volume_name = (meta.get("sample_data") or meta.get("idc_patient")) + ".nrrd"
    rng = np.random.default_rng(0)
    image = rng.integers(0, 50, size=lm.grid.shape_kji, dtype=np.int16)
    img = lm.grid.apply_to_sitk(sitk.GetImageFromArray(image))
    sitk.WriteImage(img, str(tmp_path / volume_name), True)

    summary = run_migrate(gold, volume=tmp_path / volume_name)
    assert summary.exit_code == 0, summary.to_text()
    g = load_gold_standard(gold, require_migrated=True)
    # the patient named by the metadata (idc_patient), else one made from the sample name
    assert g.dicom.patient_id == meta.get("idc_patient", "AdaptiveBrush_" + volume_name[: -len(".nrrd")])
    decoded = read_seg(g.seg_path, reference=g.volume_dir)
    expected = align_to_grid(lm.array, lm.grid, decoded.labelmap.grid)
    if expected.ndim == 4:
        expected = expected.max(axis=0)
    assert np.array_equal(decoded.labelmap.array.astype(int), expected.astype(int))
    assert np.count_nonzero(expected) == meta["statistics"]["voxel_count"]
    assert [s.name for s in decoded.labelmap.segments] == [s.name for s in lm.segments]
    assert decoded.labelmap.segments[0].algorithm_type.value == "SEMIAUTOMATIC"
    assert json.loads((gold / "metadata.legacy.json").read_text()) == meta


def test_script_wrapper_is_the_cli(demo):
    script = PKG_DIR.parent / "scripts" / "migrate_to_dicom.py"
    proc = subprocess.run([sys.executable, str(script), str(demo.root), "--volumes-dir", str(demo.volumes_dir),
                           "--dry-run", "--json", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dry_run"] is True and out["exit_code"] == 0
    assert sorted(f["kind"] for f in out["folders"]) == ["gold_standard", "run"]
    assert not (demo.run_dir / "dicom").exists()


def test_same_image_in_another_format_gives_the_same_uids(template, tmp_path):
    """One image -> one Study/Series, whether given as NRRD or as a DICOM folder."""
    first = copy_demo(template, tmp_path / "nrrd")
    assert run_migrate(first.run_dir, volumes_dir=first.volumes_dir).exit_code == 0
    second = copy_demo(template, tmp_path / "dicomdir")
    vols = tmp_path / "vols"
    shutil.copytree(first.run_dir / "dicom" / "volume", vols / second.sample)  # DIR/<sample>/ DICOM folder
    assert mig.find_volume(second.sample, vols) == vols / second.sample
    assert run_migrate(second.gold_dir, volumes_dir=vols).exit_code == 0
    run, gold = load_run(first.run_dir), load_gold_standard(second.gold_dir)
    assert gold.dicom.study_instance_uid == run.dicom.study_instance_uid
    assert gold.dicom.volume_series_uid == run.dicom.volume_series_uid
    assert contents(first.run_dir / "dicom" / "volume") == contents(second.gold_dir / "dicom" / "volume")


def test_cropped_and_flipped_sources_are_aligned_to_the_volume(demo):
    """Slicer saves segmentations cropped to their extent, sometimes with flipped axes."""
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

    segs = demo.run_dir / "segmentations"
    full = read_segmentation(segs / "trial_000.seg.nrrd")
    k, j, i = np.nonzero(full.array)
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
    origin = full.grid.index_to_lps(np.array([i.min(), j.min(), k.min()], dtype=float))
    cropped = full.grid.with_shape_and_origin(full.array[box].shape, origin)
    write_seg_nrrd(LabelMap(full.array[box], cropped, full.segments), segs / "trial_000.seg.nrrd")
    # trial 1 with the i axis reversed (same voxels, other index order)
    one = read_segmentation(segs / "trial_001.seg.nrrd")
    g = one.grid
    flipped = type(g)(g.shape_kji, g.spacing_ijk, tuple(g.index_to_lps(np.array([g.shape_kji[2] - 1, 0, 0], float))),
                      g.direction * np.array([-1.0, 1.0, 1.0]))
    write_seg_nrrd(LabelMap(one.array[:, :, ::-1].copy(), flipped, one.segments), segs / "trial_001.seg.nrrd")

    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    run = load_run(demo.run_dir)
    ref = ReferenceSeries.from_folder(run.volume_dir)
    assert np.array_equal(read_seg(run.trial(0).seg_path, ref).labelmap.array.astype(int), full.array.astype(int))
    assert np.array_equal(read_seg(run.trial(1).seg_path, ref).labelmap.array.astype(int), one.array.astype(int))


def test_stale_temporary_files_are_removed_user_files_kept(demo):
    run = demo.run_dir
    (run / ".results.json.tmp-999999").write_text("{ half written")
    (run / ".notes.tmp-123").write_text("a user's file that only looks like ours")
    vol = run / "dicom" / "volume"
    vol.mkdir(parents=True)
    shutil.copy2(demo.volume_path, vol / ".0003.dcm.tmp-77")  # a truncated slice would break the series
    summary = run_migrate(run, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    assert not (run / ".results.json.tmp-999999").exists() and not (vol / ".0003.dcm.tmp-77").exists()
    assert (run / ".notes.tmp-123").read_text().startswith("a user's file")
    assert any("temporary file" in n for n in summary.reports[0].notes)


def test_broken_config_yaml(demo):
    (demo.run_dir / "config.yaml").write_text("sample_data: [unclosed\n")
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    err = summary.reports[0].errors[0]
    assert "config.yaml" in err and "not valid YAML" in err
    assert not (demo.run_dir / "dicom").exists()
