"""What a newcomer meets: ``info`` counts segments like ``export``; ``db segs-for`` / ``db show``
take a run name or PatientID, print readable values and each trial's score (from the run's
results.json, checked against the values the generated run recorded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from abdicom_testkit.demo_data import DEMO_RUN, build_demo_legacy

ABDICOM = [sys.executable, "-m", "AdaptiveBrushDicomLib"]


def run(args, cwd, env=None):
    proc = subprocess.run(ABDICOM + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_info_counts_segments_like_export(tmp_path, phantom_series):
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    _image, labels, segments, grid, _ref = phantom_series
    write_seg_nrrd(LabelMap(labels, grid, segments), tmp_path / "s.seg.nrrd")
    rc, out, err = run(["export", tmp_path / "s.seg.nrrd", "--reference", tmp_path / "ref", "--out",
                        tmp_path / "s.dcm", "--json"], tmp_path)
    assert rc == 0, err
    exported = json.loads(out)["segments"]
    assert exported == len(segments)
    rc, out, err = run(["info", tmp_path / "s.dcm", "--json"], tmp_path)
    info = json.loads(out)
    assert info["segment_count"] == exported and len(info["segments"]) == exported + 1  # + Background
    rc, out, err = run(["info", tmp_path / "s.dcm"], tmp_path)
    seg_line = next(line for line in out.splitlines() if line.strip().startswith("segments"))
    assert seg_line.split()[1] == str(exported) and "plus Background" in seg_line
    body = out.splitlines()
    bg = next(i for i, line in enumerate(body) if "background:" in line)
    assert all("background:" not in line for line in body[:bg]) and bg > next(
        i for i, line in enumerate(body) if segments[-1].name in line)  # listed apart, after the user segments


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    from AdaptiveBrushDicomLib.runs import migrate as mig
    from AdaptiveBrushDicomLib.runs.results import load_run

    paths = build_demo_legacy(tmp_path_factory.mktemp("demo"), n_trials=5, shape=(12, 40, 48))
    mig.migrate_paths([paths.run_dir, paths.gold_dir], volumes_dir=paths.volumes_dir, progress=False)
    db = tmp_path_factory.mktemp("db") / "index.sqlite"
    rc, _o, err = run(["db", "--db", db, "import", paths.root], paths.root)
    assert rc == 0, err
    return paths, load_run(paths.run_dir), db


@pytest.mark.parametrize("by", ["series_uid", "run_name", "patient_id"])
def test_segs_for_accepts_uid_run_or_patient_with_scores(migrated, by):
    paths, run_res, db = migrated
    key = {"series_uid": run_res.dicom.volume_series_uid, "run_name": DEMO_RUN,
           "patient_id": run_res.dicom.patient_id}[by]
    rc, out, err = run(["db", "--db", db, "segs-for", key, "--json"], paths.root)
    assert rc == 0, err
    payload = json.loads(out)
    segs = [s for st in payload["studies"] for s in st["segs"]]
    trials = {s["trial_number"]: s for s in segs if s["kind"] == "trial"}
    expected = {t.number: t.value for t in run_res.trials if t.seg_path is not None}
    assert set(trials) == set(expected)
    for number, value in expected.items():
        assert trials[number]["score"]["value"] == pytest.approx(value)
    best = [n for n, s in trials.items() if s["score"]["best"]]
    assert best == [run_res.best_trial.number]
    if by != "run_name":
        assert any(s["kind"] == "gold" for s in segs)
    rc, text, err = run(["db", "--db", db, "segs-for", key], paths.root)
    assert rc == 0, err
    n = run_res.best_trial.number
    line = next(line for line in text.splitlines() if f"trial {n} " in line)
    assert f"score {expected[n]:.4g} (best)" in line


def test_show_readable_with_score(migrated):
    paths, run_res, db = migrated
    trial = run_res.migrated_trials[0]
    rc, out, err = run(["db", "--db", db, "show", trial.series_instance_uid], paths.root)
    assert rc == 0, err
    assert f"score: {trial.value:.4g}" in out
    for repr_marker in ("None", "['", "{'", "True", "False", "()"):
        assert repr_marker not in out, (repr_marker, out)
    rc, out, err = run(["db", "--db", db, "show", DEMO_RUN], paths.root)
    assert rc == 0, err
    assert out.startswith("level: run") and f"score {trial.value:.4g}" in out
    rc, out, err = run(["db", "--db", db, "show", DEMO_RUN, "--json"], paths.root)
    shown = {s["trial_number"]: s["score"] for s in json.loads(out)["segs"] if s["kind"] == "trial"}
    assert shown[trial.number] == pytest.approx(trial.value)
    rc, out, err = run(["db", "--db", db, "show", "no_such_run"], paths.root)
    assert rc == 2 and "not a series UID, run name or PatientID" in err
