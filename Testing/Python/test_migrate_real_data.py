"""Migration on real data (issue 12): DICOM sources kept, growing runs, identity from
content, runs told apart, DICOM-only dicom/, byte-identical outputs on every write path,
resampling that loses everything, several folders in one command, bad input.

The DICOM source is the real CT series ``../shared/corpus/dcmqi/ct-3slice``; gold
standards with ``idc_patient`` come from ``../shared/corpus/adaptivebrush-gold``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import corpus_path

from abdicom_testkit.demo_data import DemoPaths, build_demo_legacy, copy_demo
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.runs import migrate as mig
from AdaptiveBrushDicomLib.runs.results import load_gold_standard, load_run

SHAPE = (12, 40, 48)
PKG_DIR = Path(mig.__file__).resolve().parents[2]
FIXED_MTIME = 1767225600


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> DemoPaths:
    return build_demo_legacy(tmp_path_factory.mktemp("template12"), n_trials=5, shape=SHAPE)


@pytest.fixture
def demo(template, tmp_path) -> DemoPaths:
    return copy_demo(template, tmp_path / "demo")


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_migrate(*paths: Path, **kwargs):
    kwargs.setdefault("progress", False)
    return mig.migrate_paths(list(paths), **kwargs)


def report_for(summary, folder: Path):
    for r in summary.reports:
        if Path(r.folder) == folder:
            return r
    raise AssertionError(f"no report for {folder}")


def items(report) -> dict:
    return {i.key: i for i in report.items}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "AdaptiveBrushDicomLib", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def write_trial(path: Path, mask: np.ndarray, grid, name: str = "Tumor", mtime: int = FIXED_MTIME) -> None:
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    path.parent.mkdir(parents=True, exist_ok=True)
    write_seg_nrrd(LabelMap(mask.astype(np.uint8), grid, [Segment(1, name, color=(200, 40, 40))]), path)
    os.utime(path, (mtime, mtime))


def box_mask(shape, n: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    k1 = min(shape[0], 1 + n % shape[0])
    m[:k1, 10 + n: 60 + 3 * n, 20: 90 + 2 * n] = 1
    return m


# ----------------------------------------------------------------------------- CT corpus run
@pytest.fixture
def ct_run(tmp_path):
    """A run + gold standard made on the real CT series (config names sample ct-3slice)."""
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    ct = corpus_path("dcmqi", "ct-3slice")
    ref = ReferenceSeries.from_folder(ct)
    run = tmp_path / "runs" / "ct_run"
    trials = []
    for n in range(3):
        write_trial(run / "segmentations" / f"trial_{n:03d}.seg.nrrd", box_mask(ref.grid.shape_kji, n), ref.grid,
                    mtime=FIXED_MTIME + n)
        trials.append({"trial_number": n, "params": {"algorithm": "watershed", "edge": 10 + n},
                       "value": 0.5 + n / 10})
    (run / "results.json").write_text(json.dumps({"config_name": "ct_run", "trials": trials,
                                                  "best_trial": trials[-1]}, indent=2))
    (run / "config.yaml").write_text("sample_data: ct-3slice\n")
    gold = tmp_path / "GoldStandards" / "ct_gold"
    write_trial(gold / "gold.seg.nrrd", box_mask(ref.grid.shape_kji, 1), ref.grid)
    (gold / "metadata.json").write_text(json.dumps({"sample_data": "ct-3slice", "algorithm": "manual"}))
    return ct, ref, run, gold


def test_dicom_source_is_referenced_and_kept_byte_for_byte(ct_run):
    import pydicom

    ct, ref, run, gold = ct_run
    summary = run_migrate(run, gold, volumes_dir=ct.parent)
    assert summary.exit_code == 0, summary.to_text()
    first = pydicom.dcmread(ref.paths[0], stop_before_pixels=True)
    for folder in (run, gold):
        vol = folder / "dicom" / "volume"
        names = sorted(p.name for p in vol.iterdir())
        assert names == [f"{k + 1:04d}.dcm" for k in range(len(ref.paths))]
        for k, src in enumerate(ref.paths):  # the originals, byte for byte, in slice order
            assert (vol / f"{k + 1:04d}.dcm").read_bytes() == src.read_bytes()
    data = json.loads((run / "results.json").read_text())
    block = data["dicom"]
    assert block["volume_source"] == "original"
    assert block["patient_id"] == str(first.PatientID)
    assert block["study_instance_uid"] == first.StudyInstanceUID
    assert block["volume_series_uid"] == first.SeriesInstanceUID
    assert block["frame_of_reference_uid"] == first.FrameOfReferenceUID
    meta = json.loads((gold / "metadata.json").read_text())
    assert meta["dicom"]["volume_source"] == "original"
    segs = [run / t["dicom_seg_path"] for t in data["trials"]] + [gold / meta["dicom"]["seg_path"]]
    for path in segs:
        ds = pydicom.dcmread(path)
        assert ds.PatientID == first.PatientID and ds.StudyInstanceUID == first.StudyInstanceUID
        assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
        assert str(ds.get("PatientName", "")) == str(first.get("PatientName", ""))
        assert str(ds.get("StudyID", "")) == str(first.get("StudyID", ""))
        refd = ds.ReferencedSeriesSequence[0]
        assert refd.SeriesInstanceUID == first.SeriesInstanceUID
        assert {i.ReferencedSOPInstanceUID for i in refd.ReferencedInstanceSequence} <= set(ref.sop_instance_uids)
    # the volume series is the original CT, not an MR copy
    assert {pydicom.dcmread(p, stop_before_pixels=True).Modality for p in (run / "dicom/volume").iterdir()} == {"CT"}


def test_export_reference_is_the_original_series(ct_run, tmp_path):
    import pydicom

    ct, ref, run, _ = ct_run
    out = tmp_path / "x.dcm"
    proc = cli("export", str(run / "segmentations/trial_000.seg.nrrd"), "--reference", str(ct), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    ds = pydicom.dcmread(out)
    first = pydicom.dcmread(ref.paths[0], stop_before_pixels=True)
    assert (ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == \
        (first.PatientID, first.StudyInstanceUID, first.FrameOfReferenceUID)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID


def test_dicom_source_folder_with_several_series_or_no_images(ct_run, tmp_path):
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    ct, ref, run, _ = ct_run
    other = tmp_path / "run_copy"
    shutil.copytree(run, other)
    vols = tmp_path / "vols"
    two = vols / "ct-3slice"
    shutil.copytree(ct, two)
    create_synthetic_series(np.zeros((2, 8, 8), np.int16), ref.grid.with_shape_and_origin((2, 8, 8), ref.grid.origin),
                            two / "other", patient_id="someone")
    before = snapshot(run)
    with pytest.raises(UserError) as exc:
        run_migrate(run, volumes_dir=vols)
    assert "several image series" in str(exc.value) and str(two) in str(exc.value)
    assert snapshot(run) == before
    # a folder holding only a SEG (a non-image series)
    assert run_migrate(other, volumes_dir=ct.parent).exit_code == 0
    segs = tmp_path / "segvols" / "ct-3slice"
    segs.mkdir(parents=True)
    shutil.copy2(other / "dicom/segmentations/trial_000.dcm", segs / "seg.dcm")
    with pytest.raises(UserError) as exc:
        run_migrate(run, volumes_dir=segs.parent)
    assert "no DICOM image" in str(exc.value) and str(segs) in str(exc.value)
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- synthetic: patient / modality
def test_synthetic_patient_id_from_metadata_and_options(tmp_path):
    import pydicom
    import SimpleITK as sitk

    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    name = "idc_mri_t2_lesion"
    gold = tmp_path / "GoldStandards" / name
    shutil.copytree(corpus_path("adaptivebrush-gold", name), gold)
    for p in [gold, *gold.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    lm = read_segmentation(gold / "gold.seg.nrrd")
    image = np.random.default_rng(0).integers(0, 50, size=lm.grid.shape_kji, dtype=np.int16)
    vol = tmp_path / "lesion_volume.nrrd"
    sitk.WriteImage(lm.grid.apply_to_sitk(sitk.GetImageFromArray(image)), str(vol), True)
    second = tmp_path / "second" / name
    shutil.copytree(gold, second)

    assert run_migrate(gold, volume=vol).exit_code == 0
    g = load_gold_standard(gold, require_migrated=True)
    assert g.dicom.patient_id == "UPENN-GBM-00220"  # idc_patient, not the file name
    assert g.dicom.extra["volume_source"] == "synthetic"
    ds = pydicom.dcmread(gold / "dicom/volume/0001.dcm", stop_before_pixels=True)
    assert ds.PatientID == "UPENN-GBM-00220" and ds.Modality == "MR"

    assert run_migrate(second, volume=vol, patient_id="P-42", modality="CT").exit_code == 0
    ds = pydicom.dcmread(second / "dicom/volume/0001.dcm", stop_before_pixels=True)
    assert ds.PatientID == "P-42" and ds.Modality == "CT"
    seg = pydicom.dcmread(second / "dicom/gold.dcm")
    assert seg.PatientID == "P-42"
    # the CLI has the options too
    proc = cli("migrate", "--help")
    assert "--modality" in proc.stdout and "--patient-id" in proc.stdout


def test_run_patient_id_from_results_json(demo):
    data = json.loads((demo.run_dir / "results.json").read_text())
    data["patient_id"] = "PAT-7"
    (demo.run_dir / "results.json").write_text(json.dumps(data, indent=2))
    assert run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir).exit_code == 0
    assert load_run(demo.run_dir).dicom.patient_id == "PAT-7"


# ----------------------------------------------------------------------------- growing run
def _optimizer_adds_trial(demo: DemoPaths, keep_dicom_fields: bool) -> None:
    """What the optimizer does: rewrite results.json with one more trial and a new best."""
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    run = demo.run_dir
    base = json.loads((run / ("results.json" if keep_dicom_fields else "results.legacy.json")).read_text())
    src = read_segmentation(run / "segmentations/trial_000.seg.nrrd")
    mask = (src.array != 0).astype(np.uint8)
    mask[:, :2] = 0
    n = max(t["trial_number"] for t in base["trials"]) + 1
    write_trial(run / "segmentations" / f"trial_{n:03d}.seg.nrrd", mask, src.grid, mtime=FIXED_MTIME + n)
    trial = {"trial_number": n, "params": {"algorithm": "connected_threshold", "lower": 1.0}, "value": 0.999}
    base["trials"].append(trial)
    base["best_trial"] = trial
    base["n_trials"] = len(base["trials"])
    (run / "results.json").write_text(json.dumps(base, indent=2))


@pytest.mark.parametrize("keep_dicom_fields", [False, True])
def test_a_run_that_grows_keeps_every_trial(demo, keep_dicom_fields):
    run = demo.run_dir
    assert run_migrate(run, volumes_dir=demo.volumes_dir).exit_code == 0
    legacy = (run / "results.legacy.json").read_bytes()
    segs = contents(run / "dicom" / "segmentations")
    _optimizer_adds_trial(demo, keep_dicom_fields)
    summary = run_migrate(run, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    rep = summary.reports[0]
    assert rep.totals()["new"] == 1
    assert "1 new" in summary.to_text()
    data = json.loads((run / "results.json").read_text())
    assert [t["trial_number"] for t in data["trials"]] == list(range(demo.n_trials + 1))
    assert data["best_trial"]["trial_number"] == demo.n_trials and data["n_trials"] == demo.n_trials + 1
    new = data["trials"][-1]
    assert new["dicom_status"] == "migrated" and (run / new["dicom_seg_path"]).is_file()
    assert (run / "results.legacy.json").read_bytes() == legacy  # the first original stays
    after = contents(run / "dicom" / "segmentations")
    assert {k: after[k] for k in segs} == segs  # old SEGs untouched
    assert load_run(run).best_trial.number == demo.n_trials
    # and again: nothing changes
    before = snapshot(run)
    assert run_migrate(run, volumes_dir=demo.volumes_dir).reports[0].status == "already_migrated"
    assert snapshot(run) == before


def test_changed_seg_nrrd_is_reported_not_overwritten(demo):
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

    run = demo.run_dir
    assert run_migrate(run, volumes_dir=demo.volumes_dir).exit_code == 0
    seg1 = (run / "dicom/segmentations/trial_001.dcm").read_bytes()
    # same voxels, new file bytes (re-saved): still the same segmentation
    lm = read_segmentation(run / "segmentations/trial_000.seg.nrrd")
    (run / "segmentations/trial_000.seg.nrrd").unlink()
    write_seg_nrrd(lm, run / "segmentations/trial_000.seg.nrrd")
    (run / "segmentations/trial_000.seg.nrrd").write_bytes(
        (run / "segmentations/trial_000.seg.nrrd").read_bytes() + b"\n")
    # other voxels
    one = read_segmentation(run / "segmentations/trial_001.seg.nrrd")
    arr = one.array.copy()
    arr[0, 0, 0] = 1 - arr[0, 0, 0]
    write_seg_nrrd(LabelMap(arr, one.grid, one.segments), run / "segmentations/trial_001.seg.nrrd")
    summary = run_migrate(run, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    recs = items(summary.reports[0])
    assert recs["trial_000"].status == "migrated" and recs["trial_000"].already_present
    assert recs["trial_001"].status == "changed"
    assert "changed" in recs["trial_001"].reason and "trial_001.dcm" in recs["trial_001"].reason
    assert (run / "dicom/segmentations/trial_001.dcm").read_bytes() == seg1
    assert "trial_001: changed" in summary.to_text()
    assert "changed" in (run / "migration_report.md").read_text()


def test_half_written_results_json_is_refused_and_nothing_changes(demo):
    run = demo.run_dir
    assert run_migrate(demo.root, volumes_dir=demo.volumes_dir).exit_code == 0
    text = (run / "results.json").read_text()
    (run / "results.json").write_text(text[: len(text) // 2])
    before = snapshot(demo.root)
    summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 1
    rep = report_for(summary, run)
    assert rep.status == "failed" and "not valid JSON" in rep.errors[0] and "results.json" in rep.errors[0]
    assert "results.json" in summary.to_text()
    assert snapshot(demo.root) == before


# ----------------------------------------------------------------------------- identity from content
def test_renamed_moved_or_copied_run_is_already_migrated(demo, tmp_path):
    assert run_migrate(demo.root, volumes_dir=demo.volumes_dir).exit_code == 0
    renamed = demo.run_dir.with_name("renamed_run")
    demo.run_dir.rename(renamed)
    moved = tmp_path / "elsewhere" / "deep"
    moved.mkdir(parents=True)
    copied = moved / "copy_of_run"
    shutil.copytree(renamed, copied, copy_function=shutil.copy2)
    for folder in (renamed, copied):
        before = snapshot(folder)
        summary = run_migrate(folder, volumes_dir=demo.volumes_dir)
        assert summary.exit_code == 0, summary.to_text()
        assert summary.reports[0].status == "already_migrated"
        assert "already migrated" in summary.to_text()
        assert snapshot(folder) == before
    # the copy grows: old trials stay as they are, the new one gets UIDs of the same run
    before = contents(copied / "dicom" / "segmentations")
    _optimizer_adds_trial(replace(demo, run_dir=copied), keep_dicom_fields=True)
    summary = run_migrate(copied, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    assert summary.reports[0].totals()["new"] == 1
    after = contents(copied / "dicom" / "segmentations")
    assert {k: after[k] for k in before} == before
    data = json.loads((copied / "results.json").read_text())
    assert data["trials"][-1]["dicom_status"] == "migrated"
    assert data["dicom"]["name"] == demo.run_dir.name  # the run's own name, not the copy's folder


def test_uids_do_not_depend_on_folder_names(template, tmp_path):
    a = copy_demo(template, tmp_path / "a")
    b = copy_demo(template, tmp_path / "b")
    b.run_dir.rename(b.run_dir.with_name("other_folder_name"))
    assert run_migrate(a.run_dir, volumes_dir=a.volumes_dir).exit_code == 0
    assert run_migrate(b.run_dir.with_name("other_folder_name"), volumes_dir=b.volumes_dir).exit_code == 0
    assert contents(a.run_dir / "dicom") == contents(b.run_dir.with_name("other_folder_name") / "dicom")


# ----------------------------------------------------------------------------- runs told apart
def test_two_runs_on_one_image_are_told_apart(template, tmp_path):
    import pydicom

    from AdaptiveBrushDicomLib.dicom.naming import parse_trial_series_description

    a = copy_demo(template, tmp_path / "a")
    second = tmp_path / "a" / "optimization_results" / "second_run_with_a_rather_long_name_2026-01-28_v2_final"
    shutil.copytree(a.run_dir, second, copy_function=shutil.copy2)
    data = json.loads((second / "results.json").read_text())
    data["config_name"] = second.name
    (second / "results.json").write_text(json.dumps(data, indent=2))
    (second / "config.yaml").write_text((second / "config.yaml").read_text().replace(a.run_dir.name, second.name))
    assert run_migrate(a.runs_dir, volumes_dir=a.volumes_dir).exit_code == 0
    d1 = pydicom.dcmread(a.run_dir / "dicom/segmentations/trial_000.dcm", stop_before_pixels=True)
    d2 = pydicom.dcmread(second / "dicom/segmentations/trial_000.dcm", stop_before_pixels=True)
    assert d1.StudyInstanceUID == d2.StudyInstanceUID  # one image, one study
    assert d1.SeriesInstanceUID != d2.SeriesInstanceUID
    assert (d1.SeriesDescription, d1.SeriesNumber) != (d2.SeriesDescription, d2.SeriesNumber)
    for ds, run in ((d1, a.run_dir.name), (d2, second.name)):
        desc = str(ds.SeriesDescription)
        assert len(desc) <= 64 and "trial_000_connected_threshold" in desc
        assert parse_trial_series_description(desc) == (0, "connected_threshold")
    assert a.run_dir.name in str(d1.SeriesDescription)
    assert str(d2.SeriesDescription).startswith(second.name[:20])
    # abdicom db list: the two trial-0 series are two different lines
    db = tmp_path / "index.sqlite"
    proc = cli("db", "--db", str(db), "import", str(a.runs_dir))
    assert proc.returncode == 0, proc.stderr
    listing = cli("db", "--db", str(db), "list").stdout
    lines = [ln for ln in listing.splitlines() if "trial_000_connected_threshold" in ln]
    assert len(lines) == 2 and len(set(lines)) == 2, listing
    assert any(a.run_dir.name in ln for ln in lines) and any(second.name[:20] in ln for ln in lines)


# ----------------------------------------------------------------------------- dicom/ holds DICOM only, lock
def test_dicom_folder_holds_only_dicom_files(demo):
    import pydicom

    assert run_migrate(demo.root, volumes_dir=demo.volumes_dir).exit_code == 0
    for folder in (demo.run_dir, demo.gold_dir):
        files = [p for p in (folder / "dicom").rglob("*") if p.is_file()]
        assert files
        for p in files:
            assert not p.name.startswith(".") and p.suffix == ".dcm", p
            pydicom.dcmread(p, stop_before_pixels=True)  # a DICOM file (preamble + DICM), no force


def test_folder_lock_is_a_filelock_outside_dicom(demo):
    from filelock import FileLock

    from AdaptiveBrushDicomLib.runs.lock import lock_path

    path = lock_path(demo.run_dir)
    assert "dicom" not in path.relative_to(demo.run_dir).parts
    with FileLock(str(path), timeout=0):
        summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir)
        rep = report_for(summary, demo.run_dir)
        assert rep.status == "failed" and "another migration" in rep.errors[0]
        assert report_for(summary, demo.gold_dir).status == "migrated"
        assert not (demo.run_dir / "dicom").exists()
    assert run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir).exit_code == 0


# ----------------------------------------------------------------------------- byte-identical outputs
@pytest.mark.parametrize("compression", ["deflate", "explicit", "rle", "jpegls", "jpeg2000"])
def test_second_migration_gives_identical_bytes(template, tmp_path, compression):
    a = copy_demo(template, tmp_path / "a")
    b = copy_demo(template, tmp_path / "b")
    for d in (a, b):
        s = run_migrate(d.root, volumes_dir=d.volumes_dir, compression=compression)
        assert s.exit_code == 0, s.to_text()
    assert contents(a.run_dir / "dicom") == contents(b.run_dir / "dicom")
    assert contents(a.gold_dir / "dicom") == contents(b.gold_dir / "dicom")


def test_non_ascii_names_give_identical_bytes(template, tmp_path):
    """A non-ASCII run name goes into ContentDescription: the highdicom path (UTF-8)."""
    import pydicom

    a = copy_demo(template, tmp_path / "a")
    data = json.loads((a.run_dir / "results.json").read_text())
    data["config_name"] = "Läufe_Ödem_run"
    (a.run_dir / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    b_root = tmp_path / "b"
    shutil.copytree(a.root, b_root, copy_function=shutil.copy2)
    b_run = b_root / a.run_dir.relative_to(a.root)
    assert run_migrate(a.run_dir, volumes_dir=a.volumes_dir).exit_code == 0
    assert run_migrate(b_run, volumes_dir=b_root / "volumes").exit_code == 0
    ds = pydicom.dcmread(a.run_dir / "dicom/segmentations/trial_000.dcm", stop_before_pixels=True)
    assert ds.ContentDescription == "Läufe_Ödem_run trial 0" and "ISO_IR 192" in ds.SpecificCharacterSet
    assert contents(a.run_dir / "dicom") == contents(b_run / "dicom")


@pytest.mark.parametrize("kind", ["binary", "non_ascii", "labelmap_rle"])
def test_write_seg_is_deterministic_on_every_path(phantom_series, tmp_path, kind):
    from datetime import datetime, timezone

    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    _, labels, segments, grid, ref = phantom_series
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    kwargs = dict(content_datetime=when, series_instance_uid="1.2.3.4", sop_instance_uid="1.2.3.4.5")
    if kind == "binary":
        layers = np.zeros((2,) + grid.shape_kji, np.uint8)
        layers[0, 2:6, 5:20, 5:20] = 1
        layers[1, 3:8, 10:25, 10:25] = 1
        lm = LabelMap(layers, grid, [Segment(1, "A", layer=0), Segment(1, "B", layer=1)])
        kwargs["allow_binary"] = True
    elif kind == "non_ascii":
        lm = LabelMap(labels, grid, [replace(s, name=s.name + " é") for s in segments])
    else:
        lm = LabelMap(labels, grid, segments)
        kwargs["compression"] = "rle"
    write_seg(lm, ref, tmp_path / "1.dcm", **kwargs)
    import time

    time.sleep(1.1)  # a clock-based value would differ
    write_seg(lm, ref, tmp_path / "2.dcm", **kwargs)
    assert (tmp_path / "1.dcm").read_bytes() == (tmp_path / "2.dcm").read_bytes()


# ----------------------------------------------------------------------------- resampling
def test_resample_that_leaves_nothing_inside_is_an_error(phantom_series, tmp_path):
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    _, labels, segments, grid, ref = phantom_series
    far = grid.with_shape_and_origin(grid.shape_kji, np.asarray(grid.origin) + 1000.0)
    src = tmp_path / "far.seg.nrrd"
    write_seg_nrrd(LabelMap(labels, far, segments), src)
    out = tmp_path / "out.dcm"
    proc = cli("export", str(src), "--reference", str(ref.folder), "--out", str(out), "--resample", "nearest")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(int(np.count_nonzero(labels))) in proc.stderr and "outside" in proc.stderr
    assert not out.exists()
    # without --resample: no grid overlap -> no hint to resample
    proc = cli("export", str(src), "--reference", str(ref.folder), "--out", str(out))
    assert proc.returncode == 2 and "--resample" not in proc.stderr
    # overlapping but off the lattice: the hint is given
    half = grid.with_shape_and_origin(grid.shape_kji, np.asarray(grid.origin) + np.asarray(grid.spacing_ijk) / 2)
    write_seg_nrrd(LabelMap(labels, half, segments), src)
    proc = cli("export", str(src), "--reference", str(ref.folder), "--out", str(out))
    assert proc.returncode == 2 and "--resample nearest" in proc.stderr


def test_migrate_offers_resample_nearest(demo):
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

    src = demo.run_dir / "segmentations/trial_000.seg.nrrd"
    lm = read_segmentation(src)
    half = lm.grid.with_shape_and_origin(lm.grid.shape_kji, np.asarray(lm.grid.origin) + np.asarray(lm.grid.spacing_ijk) / 2)
    write_seg_nrrd(LabelMap(lm.array, half, lm.segments), src)
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    rec = items(summary.reports[0])["trial_000"]
    assert rec.status == "failed" and "--resample nearest" in rec.reason
    proc = cli("migrate", "--help")
    assert "--resample" in proc.stdout
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir, resample="nearest")
    assert summary.exit_code == 0, summary.to_text()


# ----------------------------------------------------------------------------- several folders
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_folder_without_volume_fails_alone(demo, dry_run):
    meta = json.loads((demo.gold_dir / "metadata.json").read_text())
    for key in ("sample_data", "volume"):
        meta.pop(key)
    (demo.gold_dir / "metadata.json").write_text(json.dumps(meta))
    summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir, dry_run=dry_run)
    assert summary.exit_code == 1
    gold = report_for(summary, demo.gold_dir)
    assert gold.status == "failed" and "no sample name" in gold.errors[0] and "--volume" in gold.errors[0]
    assert report_for(summary, demo.run_dir).status == ("planned" if dry_run else "migrated")
    assert not (demo.gold_dir / "dicom").exists()
    # --volume and --volumes-dir together: the named sample from the folder, --volume for the rest
    if not dry_run:
        summary = run_migrate(demo.root, volumes_dir=demo.volumes_dir, volume=demo.volume_path)
        assert summary.exit_code == 0, summary.to_text()
        g = load_gold_standard(demo.gold_dir, require_migrated=True)
        assert g.dicom.study_instance_uid == load_run(demo.run_dir).dicom.study_instance_uid


def test_sample_name_cannot_leave_volumes_dir(demo, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    shutil.copy2(demo.volume_path, secret / "vol.nrrd")
    (demo.run_dir / "config.yaml").write_text("sample_data: ../secret/vol\n")
    vols = tmp_path / "vols"
    vols.mkdir()
    with pytest.raises(UserError) as exc:
        run_migrate(demo.run_dir, volumes_dir=vols)
    assert "../secret/vol" in str(exc.value) and "plain name" in str(exc.value)
    assert not (demo.run_dir / "dicom").exists()


def test_absolute_trial_path_found_at_conventional_place(demo):
    data = json.loads((demo.run_dir / "results.json").read_text())
    data["trials"][0]["segmentation_path"] = "/home/someone/old_machine/run/segmentations/trial_000.seg.nrrd"
    (demo.run_dir / "results.json").write_text(json.dumps(data, indent=2))
    summary = run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir)
    assert summary.exit_code == 0, summary.to_text()
    rec = items(summary.reports[0])["trial_000"]
    assert rec.status == "migrated" and rec.source == "segmentations/trial_000.seg.nrrd"
    assert any("conventional" in n for n in rec.notes)


def test_report_md_shows_value_and_parameters(demo):
    assert run_migrate(demo.run_dir, volumes_dir=demo.volumes_dir).exit_code == 0
    md = (demo.run_dir / "migration_report.md").read_text()
    data = json.loads((demo.run_dir / "results.json").read_text())
    t = data["trials"][0]
    row = next(line for line in md.splitlines() if line.startswith("| trial_000 |"))
    assert str(t["value"]) in row and t["dicom_series_uid"] in row
    assert "lower=" in row and "connected_threshold" in row
