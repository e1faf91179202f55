"""Tests of ``abdicom db ...`` (``cli_db.py``) through a tiny argparse harness that does what
the main CLI does: parse, call the handler, print a UserError on one line with exit 2."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest

from AdaptiveBrushDicomLib.cli import db as cli_db
from AdaptiveBrushDicomLib.errors import EXIT_USAGE, UserError

from test_index import build_corpus, build_migrated_corpus


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Parse ``argv`` with a parser that only has the ``db`` command; (exit code, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="abdicom")
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    cli_db.register(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
    except UserError as exc:
        print(f"abdicom: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def corpus_module(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("cli") / "data")


@pytest.fixture
def data(corpus_module, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(corpus_module.root, root)
    corpus_module.copy_root = root
    return corpus_module


def test_import_list_segs_show_json(data, tmp_path, capsys):
    db = str(tmp_path / "i.sqlite")
    code, out, err = run(["db", "--db", db, "import", str(data.copy_root), "--json"], capsys)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["added"] == 13 and payload["ok"] and payload["db"] == db

    code, out, _ = run(["db", "import", str(data.copy_root), "--db", db], capsys)  # --db after the subcommand
    assert code == 0 and "13 unchanged" in out
    code, out, _ = run(["db", "--db", db, "import", "--rehash", "--workers", "1", str(data.copy_root)], capsys)
    assert code == 0 and "13 unchanged" in out

    code, out, _ = run(["db", "--db", db, "list", "--json"], capsys)
    studies = json.loads(out)["studies"]
    assert code == 0 and len(studies) == 4
    assert {s["study_description"] for s in studies} >= {"run_A", "run_B", "MRBrainTumor1"}

    code, out, _ = run(["db", "--db", db, "list"], capsys)
    assert "run_A" in out and "trial_010_watershed" in out

    code, out, _ = run(["db", "--db", db, "segs-for", data.volume_uid, "--json"], capsys)
    p = json.loads(out)
    assert code == 0 and p["count"] == 6
    assert [g["run_name"] for g in p["studies"]] == ["MRBrainTumor1", "run_A", "run_B"]
    assert [s["trial_number"] for s in p["studies"][1]["segs"]] == [1, 2, 10]
    assert p["studies"][1]["segs"][2]["algorithms"] == ["watershed"]
    assert p["studies"][0]["segs"][0]["kind"] == "gold"

    code, out, _ = run(["db", "--db", db, "segs-for", data.volume_uid], capsys)
    assert "gold gold_standard" in out and "trial 10 trial_010_watershed" in out and "Tumor, Edema" in out

    code, out, _ = run(["db", "--db", db, "show", data.trials_a[2], "--json"], capsys)
    assert code == 0 and json.loads(out)["seg"]["series_description"] == "trial_002_level_set"
    code, out, _ = run(["db", "--db", db, "show", data.volume_uid], capsys)
    assert "referencing segs: 6" in out


def test_verify_and_remove_missing_exit_codes(data, tmp_path, capsys):
    db = str(tmp_path / "i.sqlite")
    run(["db", "--db", db, "import", str(data.copy_root)], capsys)
    code, out, _ = run(["db", "--db", db, "verify", "--json"], capsys)
    assert code == 0 and json.loads(out)["clean"]
    shutil.rmtree(data.copy_root / "runB")
    code, out, _ = run(["db", "--db", db, "verify"], capsys)
    assert code == cli_db.EXIT_PROBLEMS and "2 missing" in out
    code, out, _ = run(["db", "--db", db, "remove-missing", "--json"], capsys)
    assert code == 0 and json.loads(out)["instances"] == 2
    code, out, _ = run(["db", "--db", db, "verify", "--full", "--json"], capsys)
    assert code == 0 and json.loads(out)["checked"] == 11


def test_problems_and_user_errors(data, tmp_path, capsys):
    db = str(tmp_path / "i.sqlite")
    (data.copy_root / "readme.txt").write_text("hi")
    (data.copy_root / "broken.dcm").write_bytes(data.volume_paths[0].read_bytes()[:-40])
    code, out, _ = run(["db", "--db", db, "import", str(data.copy_root), "--json"], capsys)
    p = json.loads(out)
    assert code == cli_db.EXIT_PROBLEMS and p["non_dicom"] == 1 and len(p["errors"]) == 1
    assert p["errors"][0]["path"].endswith("broken.dcm")

    code, out, err = run(["db", "--db", db, "show", "1.2.3.4.5"], capsys)
    assert code == EXIT_USAGE and out == "" and len(err.strip().splitlines()) == 1
    assert "1.2.3.4.5" in err and "abdicom db import" in err

    code, _, err = run(["db", "--db", db, "import", str(tmp_path / "missing")], capsys)
    assert code == EXIT_USAGE and "missing" in err and "no such file" in err

    code, _, err = run(["db", "--db", str(tmp_path), "list"], capsys)
    assert code == EXIT_USAGE and "is a folder" in err


def test_db_env_var_default(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABDICOM_DB", str(tmp_path / "env.sqlite"))
    code, out, _ = run(["db", "import", str(data.copy_root / "volume"), "--json"], capsys)
    assert code == 0 and json.loads(out)["db"] == str(tmp_path / "env.sqlite")


def test_wired_into_main_cli(data, tmp_path):
    """``abdicom db`` as a user runs it (through ``python -m AdaptiveBrushDicomLib``)."""
    env = {**os.environ, "ABDICOM_DB": str(tmp_path / "main.sqlite")}
    cmd = [sys.executable, "-m", "AdaptiveBrushDicomLib"]
    r = subprocess.run(cmd + ["db", "import", str(data.copy_root), "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["added"] == 13
    r = subprocess.run(cmd + ["db", "show", "9.9.9"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == EXIT_USAGE and r.stderr.startswith("abdicom: error:") and len(r.stderr.splitlines()) == 1


def test_segs_for_shows_runs_in_a_shared_study(tmp_path, capsys):
    c = build_migrated_corpus(tmp_path / "m")
    db = str(tmp_path / "i.sqlite")
    run(["db", "--db", db, "import", str(c.root)], capsys)
    code, out, _ = run(["db", "--db", db, "segs-for", c.volume_uid], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith("study MRBrainTumor1")
    assert "gold gold_tumor" in lines[2] and lines[3] == "  run optuna_a" and "trial 1 trial_001" in lines[4]
    assert "  run optuna_b" in lines
    code, out, _ = run(["db", "--db", db, "segs-for", c.volume_uid, "--json"], capsys)
    segs = json.loads(out)["studies"][0]["segs"]
    assert [s["run_name"] for s in segs] == ["MRBrainTumor1"] + ["optuna_a"] * 3 + ["optuna_b"] * 3
