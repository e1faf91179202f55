"""abdicom migrate with worker processes (``--jobs auto``, the CLI default) and the batched
renames of new SEGs: same bytes as a serial run, worker count from CPUs / items / memory,
no worker outliving a killed migration, the copied DICOM source's headers reused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import corpus_path

from AdaptiveBrushDicomLib.runs import migrate as mig
from AdaptiveBrushDicomLib.runs import parallel
from AdaptiveBrushDicomLib.errors import UserError
from abdicom_testkit.demo_data import DemoPaths, build_demo_legacy, copy_demo

PKG_DIR = Path(mig.__file__).resolve().parents[2]
REPORTS = ("migration_report.json", "migration_report.md")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> DemoPaths:
    return build_demo_legacy(tmp_path_factory.mktemp("template"), n_trials=12, shape=(12, 40, 48))


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(PKG_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "AdaptiveBrushDicomLib", "migrate", *args], capture_output=True,
                          text=True, env=_env(), timeout=300)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in REPORTS}


def test_default_auto_and_jobs_3_give_the_bytes_of_a_serial_run(template, tmp_path, monkeypatch):
    serial, auto, three = (copy_demo(template, tmp_path / n) for n in ("serial", "auto", "three"))
    assert _cli(str(serial.root), "--volumes-dir", str(serial.volumes_dir), "--jobs", "1", "--quiet").returncode == 0
    proc = _cli(str(auto.root), "--volumes-dir", str(auto.volumes_dir), "--quiet")  # default: --jobs auto
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _cli(str(three.root), "--volumes-dir", str(three.volumes_dir), "--jobs", "3", "--quiet").returncode == 0
    want = _files(serial.root)
    assert len([k for k in want if k.endswith(".dcm") and "segmentations" in k]) == 11  # 12 trials, 1 pruned
    assert _files(auto.root) == want
    assert _files(three.root) == want
    assert not [p for p in auto.root.rglob(".*") if p.name != ".abdicom-migrate.lock"]  # no temporaries


def test_auto_worker_count_follows_cpus_items_and_memory(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 8)
    monkeypatch.setattr(parallel, "available_memory", lambda: 64 << 30)
    assert parallel.resolve_jobs("auto", 100, 6_553_600) == 8
    assert parallel.resolve_jobs("auto", 3, 6_553_600) == 3  # never more workers than items
    assert parallel.resolve_jobs("auto", 1, 6_553_600) == 1
    assert parallel.resolve_jobs(4, 2, 0) == 2 and parallel.resolve_jobs(2, 100, 0) == 2
    # W2-size trials (78.6 M voxels, ~780 MB per worker) with 2 GiB available: one worker
    monkeypatch.setattr(parallel, "available_memory", lambda: 2 << 30)
    assert parallel.resolve_jobs("auto", 100, 512 * 512 * 300) == 1
    monkeypatch.setattr(parallel, "available_memory", lambda: None)  # unknown (not Linux): CPUs decide
    assert parallel.resolve_jobs("auto", 100, 512 * 512 * 300) == 8


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_bad_jobs_values_are_one_line_errors(value):
    with pytest.raises(UserError, match="--jobs"):
        parallel.parse_jobs(value)
    assert parallel.parse_jobs("AUTO") == "auto" and parallel.parse_jobs("2") == 2


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_migration_is_killed(template, tmp_path):
    victim = copy_demo(template, tmp_path / "victim-run")
    cmd = [sys.executable, "-m", "AdaptiveBrushDicomLib", "migrate", str(victim.root), "--volumes-dir",
           str(victim.volumes_dir), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        for line in proc.stderr:  # kill once the workers are migrating trials
            if "trial_" in line:
                break
        workers = [p for p in _processes_mentioning(str(victim.root)) if p != proc.pid]
        assert workers, "no worker process found"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _processes_mentioning(str(victim.root)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_mentioning(str(victim.root)) == [], "a worker outlived the killed migration"
    finally:
        if proc.poll() is None:
            proc.kill()
    # and nothing holds the folder: a re-run finishes it
    done = _cli(str(victim.root), "--volumes-dir", str(victim.volumes_dir), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr


def test_copied_dicom_source_reuses_its_parsed_headers_with_the_same_bytes(tmp_path):
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.runs import worker
    import numpy as np

    src = corpus_path("dcmqi", "ct-3slice")
    if not src.is_dir():
        pytest.skip("../shared/corpus not available")
    source = ReferenceSeries.from_folder(src)
    copy = tmp_path / "dicom" / "volume"
    copy.mkdir(parents=True)
    for k, p in enumerate(source.paths):  # what migrate's _copy_original does
        shutil.copyfile(p, copy / f"{k + 1:04d}.dcm")
    worker._REFERENCES.pop(str(copy), None)
    worker.remember_reference(copy, source)
    remembered = worker._reference(str(copy))
    parsed = ReferenceSeries.from_folder(copy)
    assert remembered.paths == parsed.paths and remembered.folder == parsed.folder
    assert remembered.sop_instance_uids == parsed.sop_instance_uids
    labels = np.zeros(parsed.grid.shape_kji, dtype=np.uint8)
    labels[1, 100:200, 150:300] = 1
    labels[2, 50:90, 60:120] = 2
    lm = LabelMap(labels, parsed.grid, [Segment(1, "liver"), Segment(2, "lesion")])
    from datetime import datetime, timezone

    kwargs = dict(series_instance_uid="1.2.826.0.1.3680043.8.498.1", sop_instance_uid="1.2.826.0.1.3680043.8.498.2",
                  content_datetime=datetime(2026, 1, 28, 12, 0, tzinfo=timezone.utc))  # as migrate gives them
    write_seg(lm, remembered, tmp_path / "a.dcm", **kwargs)
    write_seg(lm, parsed, tmp_path / "b.dcm", **kwargs)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    assert np.array_equal(read_seg(tmp_path / "a.dcm", parsed).labelmap.array, labels)
    worker._REFERENCES.pop(str(copy), None)
