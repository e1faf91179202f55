"""`abdicom compare` and `abdicom runs` on the migrated demo run (values checked against the
Dice that demo_data computed with numpy when it generated the trials)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

ABDICOM = [sys.executable, "-m", "AdaptiveBrushDicomLib"]


def run(args, cwd):
    proc = subprocess.run(ABDICOM + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from abdicom_testkit.demo_data import build_demo_legacy, migrate_paths

    root = tmp_path_factory.mktemp("demo")
    paths = build_demo_legacy(root, n_trials=8)
    summary = migrate_paths([paths.root], volumes_dir=paths.volumes_dir, progress=False)
    assert summary.exit_code == 0
    legacy = json.loads((paths.run_dir / "results.legacy.json").read_text())
    return root, paths, {t["trial_number"]: t["value"] for t in legacy["trials"]}


def test_compare_run_json_csv_plot(demo, tmp_path):
    root, paths, values = demo
    rc, out, err = run(["compare", paths.run_dir, "--json", "--csv", tmp_path / "m.csv", "--plot",
                        tmp_path / "m.png"], root)
    assert rc == 0, err
    assert err == ""  # no progress with --json
    data = json.loads(out)
    assert data["gold"]["path"].endswith("dicom/gold.dcm")
    assert [s["name"] for s in data["gold"]["segments"]] == ["Tumor"]
    scored = {n: v for n, v in values.items() if v is not None}
    assert sorted(t["trial_number"] for t in data["trials"]) == sorted(scored)
    assert data["skipped"] == [{"trial_number": n, "reason": "pruned"} for n in paths.pruned_trials]
    for t in data["trials"]:
        (seg,) = t["segments"]
        assert set(seg) >= {"name", "dice", "jaccard", "hd95_mm", "assd_mm", "volume_gold_ml", "volume_trial_ml"}
        # demo_data's numpy Dice of the source .seg.nrrd (rounded to 6 digits)
        assert seg["dice"] == pytest.approx(scored[t["trial_number"]], abs=1e-6)
        assert t["mean_dice"] == seg["dice"]
        assert t["path"].endswith(f"trial_{t['trial_number']:03d}.dcm")
        assert t["series_instance_uid"].startswith("1.2.826.0.1.3680043.8.498.")
    best = max(scored.values())
    assert scored[data["best_trial"]] == best
    with open(tmp_path / "m.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(scored)
    assert {int(r["trial_number"]) for r in rows} == set(scored)
    from matplotlib.image import imread

    png = imread(tmp_path / "m.png")
    assert png.ndim == 3 and png.shape[1] > 1000 and png.shape[0] > 400
    assert png[..., :3].std() > 0.05  # not a blank canvas


def test_compare_gold_and_trial_files_text_and_progress(demo, tmp_path):
    root, paths, values = demo
    trials = sorted((paths.run_dir / "dicom" / "segmentations").glob("trial_*.dcm"))
    rc, out, err = run(["compare", paths.gold_dir / "gold.seg.nrrd", *trials, "--reference",
                        paths.run_dir / "dicom" / "volume", "--jobs", "1"], root)
    assert rc == 0, err
    assert f"compare: {len(trials)}/{len(trials)}" in err
    assert "rank" in out and "HD95 mm" in out and "best: trial" in out
    # ranks in the table follow the Dice values
    table = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    dice = [float(cells[4]) for cells in table]
    assert dice == sorted(dice, reverse=True)


def test_compare_refuses_existing_output_and_writes_nothing(demo, tmp_path):
    root, paths, _ = demo
    existing = tmp_path / "m.csv"
    existing.write_text("mine\n")
    rc, out, err = run(["compare", paths.run_dir, "--csv", existing, "--plot", tmp_path / "p.png"], root)
    assert rc == 2 and "output exists" in err and "Traceback" not in err
    assert existing.read_text() == "mine\n" and not (tmp_path / "p.png").exists()
    rc, out, err = run(["compare", paths.gold_dir / "gold.seg.nrrd"], root)
    assert rc == 2 and "at least one trial" in err
    rc, out, err = run(["compare", paths.gold_dir / "gold.seg.nrrd", tmp_path / "missing.dcm"], root)
    assert rc == 2 and "missing.dcm" in err


def test_compare_off_grid_trial_needs_resample(demo, tmp_path):
    from AdaptiveBrushDicomLib.core.geometry import Grid
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

    root, paths, _ = demo
    gold = read_segmentation(paths.gold_dir / "gold.seg.nrrd")
    g = gold.grid
    moved = Grid(g.shape_kji, g.spacing_ijk, tuple(np.asarray(g.origin) + 0.3), g.direction)
    gold.grid = moved
    write_seg_nrrd(gold, tmp_path / "moved.seg.nrrd")
    rc, out, err = run(["compare", paths.gold_dir / "gold.seg.nrrd", tmp_path / "moved.seg.nrrd"], root)
    assert rc == 2 and "--resample nearest" in err and "moved.seg.nrrd" in err
    rc, out, err = run(["compare", paths.gold_dir / "gold.seg.nrrd", tmp_path / "moved.seg.nrrd", "--resample",
                        "nearest", "--json"], root)
    assert rc == 0, err
    (trial,) = json.loads(out)["trials"]
    assert trial["resampled"] and 0.5 < trial["mean_dice"] <= 1.0


def test_runs_ranked_with_mean_dice(demo):
    root, paths, values = demo
    rc, out, err = run(["runs", paths.run_dir.parent, "--json"], root)
    assert rc == 0, err
    (summary,) = json.loads(out)["runs"]
    assert summary["direction"] == "maximize" and summary["gold"].endswith("gold.dcm")
    ranked = [t for t in summary["trials"] if t["rank"] is not None]
    assert [t["rank"] for t in ranked] == list(range(1, len(ranked) + 1))
    assert [t["value"] for t in ranked] == sorted((v for v in values.values() if v is not None), reverse=True)
    assert ranked[0]["best"] and sum(t["best"] for t in summary["trials"]) == 1
    for t in ranked:
        assert t["mean_dice"] == pytest.approx(t["value"], abs=1e-6)
        assert t["seg_path"].endswith(".dcm") and t["series_instance_uid"]
    pruned = [t for t in summary["trials"] if t["rank"] is None]
    assert [t["trial_number"] for t in pruned] == paths.pruned_trials and pruned[0]["seg_path"] is None
    rc, text, err = run(["runs", paths.run_dir, "--no-dice"], root)
    assert rc == 0, err
    best_line = [line for line in text.splitlines() if line.startswith("*")]
    assert len(best_line) == 1 and f" {ranked[0]['trial_number']} " in best_line[0]
    assert "dicom/segmentations/trial_" in text


def test_runs_refuses_a_folder_that_is_not_a_run(tmp_path):
    rc, out, err = run(["runs", tmp_path], tmp_path)
    assert rc == 2 and "not an optimization run" in err
