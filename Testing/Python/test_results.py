"""Reading migrated runs and gold standards (results.py) and the results.json schema."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from abdicom_testkit.demo_data import build_demo_legacy
from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.runs.migrate import migrate_paths
from AdaptiveBrushDicomLib.runs.layout import safe_relative_path
from AdaptiveBrushDicomLib.runs.results import (
    algorithm_from_config, find_gold_for_run, iter_gold_standards, load_gold_standard, load_run, sample_name_from,
)
from AdaptiveBrushDicomLib.runs.schema import load_schema, validate_results


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    demo = build_demo_legacy(tmp_path_factory.mktemp("res"), n_trials=5, shape=(12, 40, 48))
    legacy_copy = tmp_path_factory.mktemp("legacy") / "run"
    shutil.copytree(demo.run_dir, legacy_copy, copy_function=shutil.copy2)
    summary = migrate_paths([demo.root], volumes_dir=demo.volumes_dir, progress=False)
    assert summary.exit_code == 0, summary.to_text()
    return demo, legacy_copy


@pytest.fixture
def run_copy(migrated, tmp_path) -> Path:
    demo, _ = migrated
    dest = tmp_path / "run"
    shutil.copytree(demo.run_dir, dest, copy_function=shutil.copy2)
    return dest


def test_schema_is_valid_draft_2020_12():
    import jsonschema

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$defs"]["trial"]["required"] == ["trial_number"]


def test_load_migrated_run(migrated):
    demo, _ = migrated
    run = load_run(demo.run_dir)
    assert run.migrated and run.name == demo.run_dir.name
    assert run.sample == demo.sample
    assert run.volume_dir.is_dir() and len(list(run.volume_dir.glob("*.dcm"))) == 12
    assert [t.number for t in run.trials] == list(range(5))
    for t in run.trials:
        assert t.algorithm == t.params["algorithm"]
        if t.number in demo.pruned_trials:
            assert t.pruned and t.seg_path is None and t.status == "pruned" and t.value is None
        else:
            assert t.seg_path.is_file() and t.status == "migrated" and t.series_instance_uid
    legacy = json.loads((demo.run_dir / "results.legacy.json").read_text())
    best = run.best_trial
    assert best is not None and best.number == legacy["best_trial"]["trial_number"]
    ranked = run.ranked()
    assert ranked[0].value == max(t.value for t in run.trials if t.value is not None)
    assert all(not t.pruned for t in ranked)


def test_gold_standard_of_a_run(migrated):
    demo, _ = migrated
    run = load_run(demo.run_dir)
    gold = run.gold_standard()  # found in ../../GoldStandards by StudyInstanceUID
    assert gold is not None and gold.folder == demo.gold_dir
    assert gold.dicom.study_instance_uid == run.dicom.study_instance_uid
    assert gold.seg_path.is_file() and gold.sample == demo.sample
    assert find_gold_for_run(run, [demo.gold_standards_dir]).folder == demo.gold_dir
    assert [g.name for g in iter_gold_standards([demo.gold_dir])] == [demo.gold_dir.name]
    assert find_gold_for_run(run, []) is None


def test_legacy_run_is_refused_or_read_as_legacy(migrated):
    _, legacy = migrated
    with pytest.raises(InputFileError, match="abdicom migrate"):
        load_run(legacy)
    run = load_run(legacy, require_migrated=False)
    assert not run.migrated and run.volume_dir is None
    assert all(t.seg_path is None for t in run.trials)
    assert run.best_trial is not None


def test_best_trial_forms(run_copy):
    data = json.loads((run_copy / "results.json").read_text())
    data["best_trial"] = 1
    (run_copy / "results.json").write_text(json.dumps(data))
    assert load_run(run_copy).best_trial.number == 1
    data["best_trial"] = None
    data["direction"] = "minimize"
    (run_copy / "results.json").write_text(json.dumps(data))
    run = load_run(run_copy)
    assert run.best_trial.value == min(t.value for t in run.trials if t.value is not None)


@pytest.mark.parametrize("bad, where", [
    ("../../etc/passwd", "'..'"),
    ("/etc/passwd", "absolute"),
    ("C:\\data\\x.dcm", "absolute"),
])
def test_dicom_seg_path_may_not_leave_the_run(run_copy, bad, where):
    data = json.loads((run_copy / "results.json").read_text())
    data["trials"][0]["dicom_seg_path"] = bad
    (run_copy / "results.json").write_text(json.dumps(data))
    with pytest.raises(InputFileError) as exc:
        load_run(run_copy)
    assert "results.json" in str(exc.value)
    assert where in str(exc.value) or "trials/0/dicom_seg_path" in str(exc.value)


def test_dicom_seg_path_symlink_out_is_refused(run_copy, tmp_path):
    seg = run_copy / "dicom" / "segmentations" / "trial_000.dcm"
    outside = tmp_path / "elsewhere.dcm"
    shutil.move(seg, outside)
    os.symlink(outside, seg)
    with pytest.raises(InputFileError, match="outside the folder"):
        load_run(run_copy)


def test_missing_seg_file_is_reported(run_copy):
    (run_copy / "dicom" / "segmentations" / "trial_001.dcm").unlink()
    with pytest.raises(InputFileError, match="trial 1: SEG dicom/segmentations/trial_001.dcm"):
        load_run(run_copy)
    assert load_run(run_copy, check_files=False).trial(1).seg_path is not None


def test_schema_errors_name_the_field(run_copy):
    data = json.loads((run_copy / "results.json").read_text())
    data["trials"][2]["trial_number"] = -3
    data["dicom"]["study_instance_uid"] = "not-a-uid"
    del data["trials"][0]["dicom_series_uid"]
    with pytest.raises(InputFileError) as exc:
        validate_results(data, "results.json")
    msg = str(exc.value)
    assert "trials/2/trial_number" in msg and "dicom/study_instance_uid" in msg and "trials/0" in msg
    (run_copy / "results.json").write_text("[1, 2")
    with pytest.raises(InputFileError, match="not valid JSON"):
        load_run(run_copy)


def test_safe_relative_path(tmp_path):
    (tmp_path / "a").mkdir()
    assert safe_relative_path(tmp_path, "a/b.dcm", field_name="f") == tmp_path / "a" / "b.dcm"
    for bad in ("../x", "a/../../x", "/x", "\\\\server\\x", "", "D:x"):
        with pytest.raises(InputFileError):
            safe_relative_path(tmp_path, bad, field_name="f")
    os.symlink(tmp_path.parent, tmp_path / "up")
    with pytest.raises(InputFileError, match="outside"):
        safe_relative_path(tmp_path, "up/x", field_name="f")


def test_sample_and_algorithm_from_config():
    assert sample_name_from({"sample_data": "MRHead"}) == "MRHead"
    assert sample_name_from({"volume": {"name": "MRBrainTumor1"}}) == "MRBrainTumor1"
    assert sample_name_from({"recipes": [{"sample_data": "A"}, {"sample_data": "A"}]}) == "A"
    assert sample_name_from({"recipes": [{"sample_data": "A"}, {"sample_data": "B"}]}) is None
    assert sample_name_from({}) is None
    assert algorithm_from_config({"algorithm": "watershed"}) == "watershed"
    assert algorithm_from_config({"algorithms": ["level_set"]}) == "level_set"
    assert algorithm_from_config({"algorithms": ["a", "b"]}) is None


def test_gold_standard_loader(migrated, tmp_path):
    demo, _ = migrated
    gold = load_gold_standard(demo.gold_dir, require_migrated=True)
    assert gold.seg_path == demo.gold_dir / "dicom" / "gold.dcm"
    assert gold.metadata["sample_data"] == demo.sample
    plain = tmp_path / "g"
    plain.mkdir()
    shutil.copy2(demo.gold_dir / "gold.seg.nrrd", plain / "gold.seg.nrrd")
    assert load_gold_standard(plain).dicom is None
    with pytest.raises(InputFileError, match="not been migrated"):
        load_gold_standard(plain, require_migrated=True)
    with pytest.raises(InputFileError, match="not a gold standard"):
        load_gold_standard(tmp_path)


def test_trial_content_description_keeps_the_trial_suffix():
    from AdaptiveBrushDicomLib.runs.migrate import _trial_content_description

    assert _trial_content_description("optuna_2026-01-28", 42) == "optuna_2026-01-28 trial 42"
    long = _trial_content_description("r" * 100, 1234)
    assert len(long) == 64 and long.endswith(" trial 1234")
    from AdaptiveBrushDicomLib.store.series_kind import run_name_from_content

    assert run_name_from_content(_trial_content_description("run_a", 7)) == "run_a"


def test_run_demo_migration(tmp_path):
    import io

    from abdicom_testkit.demo_data import run_demo_migration
    from AdaptiveBrushDicomLib.errors import UserError

    buf = io.StringIO()
    assert run_demo_migration(tmp_path / "legacy", n_trials=4, out=buf) is True
    text = buf.getvalue()
    assert "already migrated, nothing changed" in text and "exact" in text and "DIFF" not in text
    with pytest.raises(UserError, match="not empty"):
        run_demo_migration(tmp_path / "legacy", out=buf)
