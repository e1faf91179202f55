"""The `abdicom` command line: --json output, exit codes, no tracebacks, nothing written on error."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from AdaptiveBrushDicomLib.cli.main import main
from AdaptiveBrushDicomLib.io.volumes import read_segmentation

from conftest import corpus_path

ABDICOM = [sys.executable, "-m", "AdaptiveBrushDicomLib"]


def run(args, cwd):
    proc = subprocess.run(ABDICOM + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def ct_case(tmp_path):
    ct = corpus_path("dcmqi", "ct-3slice")
    rc, out, err = run(["synth", ct, "--out", tmp_path / "ct", "--modality", "CT", "--json"], tmp_path)
    assert rc == 0, err
    return tmp_path, json.loads(out)


def test_synth_export_decode_info_json(ct_case):
    tmp, synth = ct_case
    assert synth["files"] == 3 and synth["patient_id"] == "AdaptiveBrush_ct-3slice"
    label = corpus_path("dcmqi", "liver_spine_seg.nrrd")
    rc, out, err = run(["export", label, "--reference", tmp / "ct", "--out", tmp / "s.dcm", "--json",
                        "--series-description", "trial_001_watershed", "--compression", "RLELossless"], tmp)
    assert rc == 0, err
    exp = json.loads(out)
    assert exp["transfer_syntax_uid"] == "1.2.840.10008.1.2.5" and exp["segments"] == 2
    rc, out, err = run(["info", tmp / "s.dcm", "--json"], tmp)
    info = json.loads(out)
    assert info["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.66.7"
    assert info["referenced_series_uid"] == synth["series_instance_uid"]
    assert info["series_description"] == "trial_001_watershed"
    assert [s["number"] for s in info["segments"]] == [0, 1, 2]
    rc, out, err = run(["decode", tmp / "s.dcm", "--out", tmp / "back.seg.nrrd", "--reference", tmp / "ct", "--json"], tmp)
    assert rc == 0, err
    back = read_segmentation(tmp / "back.seg.nrrd")
    src = read_segmentation(label)
    assert np.array_equal(back.array, src.array)
    assert back.grid.almost_equal(src.grid)


@pytest.mark.parametrize("case", ["missing", "exists", "two_series", "no_dicom", "mismatch", "bad_compression",
                                  "non_integer", "negative", "other_lattice"])
def test_bad_input_one_line_exit_2_nothing_written(ct_case, case):
    import SimpleITK as sitk

    tmp, synth = ct_case
    label = corpus_path("dcmqi", "liver_spine_seg.nrrd")
    out = tmp / "out.dcm"
    ref = tmp / "ct"
    args = ["export", label, "--reference", ref, "--out", out]
    if case == "missing":
        args[1] = tmp / "nothere.seg.nrrd"
    elif case == "exists":
        out.write_bytes(b"keep me")
    elif case == "two_series":
        two = tmp / "two"
        os.makedirs(two)
        for p in (tmp / "ct").iterdir():
            (two / p.name).write_bytes(p.read_bytes())
        run(["synth", corpus_path("dcmqi", "ct-3slice"), "--out", two / "b", "--modality", "MR"], tmp)
        args[3] = two
    elif case == "no_dicom":
        (tmp / "empty").mkdir()
        (tmp / "empty" / "readme.txt").write_text("not dicom")
        args[3] = tmp / "empty"
    elif case == "mismatch":
        args = ["decode", corpus_path("dcmqi", "sparse-labelmap-noppv.dcm"), "--reference", ref, "--out", tmp / "o.seg.nrrd"]
        out = tmp / "o.seg.nrrd"
    elif case == "bad_compression":
        args += ["--compression", "jpeg-lossy"]
    elif case in ("non_integer", "negative", "other_lattice"):
        img = sitk.ReadImage(str(label))
        arr = sitk.GetArrayFromImage(img).astype(np.float32)
        if case == "non_integer":
            arr[0, 0, 0] = 0.5
        if case == "negative":
            arr = arr.astype(np.int16)
            arr[0, 0, 0] = -3
        new = sitk.GetImageFromArray(arr)
        new.CopyInformation(img)
        if case == "other_lattice":
            new.SetOrigin(tuple(np.add(img.GetOrigin(), (0.3, 0, 0))))
        sitk.WriteImage(new, str(tmp / "bad.nrrd"))
        args[1] = tmp / "bad.nrrd"
    before = out.read_bytes() if out.exists() else None
    rc, stdout, stderr = run(args, tmp)
    assert rc == 2, (stdout, stderr)
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("abdicom: error:")]
    assert len(lines) == 1, stderr
    assert (out.read_bytes() if out.exists() else None) == before
    assert not list(tmp.glob(".*.tmp-*"))


def test_main_in_process_returns_2_for_user_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.dcm")]) == 2
    assert "nope.dcm: no such file" in capsys.readouterr().err
