"""``abdicom export``: batch export (one process, --jobs), algorithm / series fields on the
command line, short terminology codes in a segment table, --out creating its folder.

Outputs are read back with pydicom (tags), highdicom (segment descriptions) and our reader
(voxels); inputs are .seg.nrrd files of the phantom written by slicerio.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from AdaptiveBrushDicomLib.cli.export import ExportOptions
from AdaptiveBrushDicomLib.cli.export_batch import export_batch, input_stem

ABDICOM = [sys.executable, "-m", "AdaptiveBrushDicomLib"]


def run(args, cwd):
    proc = subprocess.run(ABDICOM + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def trials(tmp_path, phantom_series):
    """Three .seg.nrrd trials (different voxels) + the reference folder."""
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    _image, labels, segments, grid, _ref = phantom_series
    paths = []
    for n in range(3):
        arr = labels.copy()
        arr[:, : 2 + 3 * n, :] = 0  # each trial loses a different slab
        p = tmp_path / "in" / f"trial_{n + 1:03d}.seg.nrrd"
        p.parent.mkdir(exist_ok=True)
        write_seg_nrrd(LabelMap(arr, grid, segments), p)
        paths.append((p, arr))
    return tmp_path, paths


def test_input_stem():
    assert input_stem("a/trial_007.seg.nrrd") == "trial_007"
    assert input_stem("case.nii.gz") == "case"
    assert input_stem("x.v2.nrrd") == "x.v2"


def test_batch_cli_names_numbers_voxels_progress(trials):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    tmp, paths = trials
    out = tmp / "segs"  # does not exist yet: created
    rc, stdout, stderr = run(["export", *[p for p, _ in paths], "--reference", tmp / "ref", "--out-dir", out,
                              "--jobs", "2", "--series-number", "200", "--json"], tmp)
    assert rc == 0, stderr
    payload = json.loads(stdout)
    assert [Path(w["path"]).name for w in payload["written"]] == ["trial_001.dcm", "trial_002.dcm", "trial_003.dcm"]
    assert payload["failed"] == []
    uids = set()
    for n, (src, arr) in enumerate(paths):
        f = out / f"{input_stem(src)}.dcm"
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert ds.SeriesDescription == input_stem(src)
        assert int(ds.SeriesNumber) == 200 + n
        uids.add(ds.SeriesInstanceUID)
        decoded = read_seg(f, reference=tmp / "ref")
        assert np.array_equal(decoded.labelmap.array, arr)
    assert len(uids) == 3
    # text mode: one progress line per input on stderr
    rc, stdout, stderr = run(["export", *[p for p, _ in paths], "--reference", tmp / "ref", "--out-dir",
                              tmp / "segs2"], tmp)
    assert rc == 0, stderr
    assert sum(1 for line in stderr.splitlines() if line.startswith("[")) == 3
    assert "wrote 3 of 3 SEGs" in stdout
    assert int(pydicom.dcmread(tmp / "segs2" / "trial_001.dcm").SeriesNumber) == 100


def test_batch_reads_reference_once(trials, monkeypatch):
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    tmp, paths = trials
    calls = []
    original = ReferenceSeries.from_folder.__func__

    def counting(cls, folder):
        calls.append(folder)
        return original(cls, folder)

    monkeypatch.setattr(ReferenceSeries, "from_folder", classmethod(counting))
    rep = export_batch([p for p, _ in paths], tmp / "ref", tmp / "o", ExportOptions(series_description="same"))
    assert len(calls) == 1 and rep.ok and len(rep.results) == 3
    assert {pydicom.dcmread(r.path).SeriesDescription for r in rep.results} == {"same"}


def test_batch_bad_input_others_written_exit_1(trials):
    tmp, paths = trials
    bad = tmp / "in" / "broken.seg.nrrd"
    bad.write_text("not a nrrd")
    rc, stdout, stderr = run(["export", paths[0][0], bad, paths[1][0], "--reference", tmp / "ref",
                              "--out-dir", tmp / "o", "--json"], tmp)
    assert rc == 1, stderr
    payload = json.loads(stdout)
    assert [Path(w["path"]).name for w in payload["written"]] == ["trial_001.dcm", "trial_002.dcm"]
    assert len(payload["failed"]) == 1 and "broken.seg.nrrd" in payload["failed"][0]["path"]
    assert "Traceback" not in stderr and not (tmp / "o" / "broken.dcm").exists()


@pytest.mark.parametrize("case", ["same_stem", "exists", "out_and_out_dir", "many_with_out", "bad_type"])
def test_batch_refused_before_writing(trials, case):
    tmp, paths = trials
    out = tmp / "o"
    args = ["export", paths[0][0], paths[1][0], "--reference", tmp / "ref", "--out-dir", out]
    if case == "same_stem":
        other = tmp / "other"
        other.mkdir()
        (other / "trial_001.seg.nrrd").write_bytes(paths[1][0].read_bytes())
        args[2] = other / "trial_001.seg.nrrd"
    elif case == "exists":
        out.mkdir()
        (out / "trial_002.dcm").write_bytes(b"keep")
    elif case == "out_and_out_dir":
        args += ["--out", tmp / "x.dcm"]
    elif case == "many_with_out":
        args[-2] = "--out"
    elif case == "bad_type":
        args += ["--algorithm-type", "GUESSED"]
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    rc, _stdout, stderr = run(args, tmp)
    assert rc == 2, stderr
    assert "Traceback" not in stderr
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before
    if case == "exists":
        assert (out / "trial_002.dcm").read_bytes() == b"keep"


def test_algorithm_and_series_fields(trials):
    import highdicom as hd

    tmp, paths = trials
    out = tmp / "new" / "deeper" / "s.dcm"  # --out creates its folder
    rc, stdout, stderr = run(["export", paths[0][0], "--reference", tmp / "ref", "--out", out,
                              "--algorithm-type", "automatic", "--algorithm-name", "watershed",
                              "--algorithm-version", "2.1", "--content-creator", "Doe^Jane",
                              "--series-number", "42", "--series-description", "trial_001_watershed"], tmp)
    assert rc == 0, stderr
    ds = pydicom.dcmread(out)
    assert int(ds.SeriesNumber) == 42 and ds.SeriesDescription == "trial_001_watershed"
    assert str(ds.ContentCreatorName) == "Doe^Jane"
    for item in ds.SegmentSequence:
        if int(item.SegmentNumber) == 0:
            continue
        assert item.SegmentAlgorithmType == "AUTOMATIC"
        alg = item.SegmentationAlgorithmIdentificationSequence[0]
        assert (alg.AlgorithmName, alg.AlgorithmVersion) == ("watershed", "2.1")
    seg = hd.seg.segread(out)
    described = [seg.get_segment_description(n) for n in seg.segment_numbers if n != 0]
    assert {d.algorithm_type.value for d in described} == {"AUTOMATIC"}
    assert {d.algorithm_identification[0].AlgorithmName for d in described} == {"watershed"}


def test_out_folder_not_left_behind_on_error(trials):
    tmp, paths = trials
    out = tmp / "fresh" / "s.dcm"
    rc, _o, stderr = run(["export", paths[0][0], "--reference", tmp / "nowhere", "--out", out], tmp)
    assert rc == 2 and not (tmp / "fresh").exists(), stderr


def test_segment_table_short_codes(trials):
    tmp, paths = trials
    table = tmp / "segments.csv"
    table.write_text(
        "label,name,terminology\n"
        "4,Lesion A,SCT^52988006^Lesion\n"
        "300,Swelling,SCT^49755003^Morphologically Altered Structure~SCT^79654002^Edema\n"
    )
    out = tmp / "s.dcm"
    rc, _o, stderr = run(["export", paths[0][0], "--reference", tmp / "ref", "--out", out, "--segments", table], tmp)
    assert rc == 0, stderr
    items = {str(i.SegmentLabel): i for i in pydicom.dcmread(out).SegmentSequence}
    lesion = items["Lesion A"]
    assert lesion.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    assert lesion.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"  # Tissue
    swelling = items["Swelling"]
    assert swelling.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert swelling.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Edema"
    table.write_text("label,name,terminology\n4,X,SCT^52988006\n")
    rc, _o, stderr = run(["export", paths[0][0], "--reference", tmp / "ref", "--out", tmp / "t.dcm",
                          "--segments", table], tmp)
    assert rc == 2 and "line 2, column 'terminology'" in stderr and not (tmp / "t.dcm").exists()


def test_overlapped_batch_equals_one_after_the_other(trials, monkeypatch):
    """jobs=1 runs two exports at once in threads (a trial's deflate overlaps the next
    one's reading): same files' UIDs and voxels, same order of progress and failures as
    strictly one after the other, and two exports really were in flight at once."""
    import threading

    from AdaptiveBrushDicomLib.cli import export_batch as eb
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    tmp, paths = trials
    bad = tmp / "in" / "broken.seg.nrrd"
    bad.write_text("not a nrrd")
    sources = [paths[0][0], paths[1][0], bad, paths[2][0], paths[0][0].parent / "again.seg.nrrd"]
    sources[-1].write_bytes(paths[0][0].read_bytes())
    expected = [paths[0][1], paths[1][1], None, paths[2][1], paths[0][1]]
    monkeypatch.setattr(eb, "_usable_cpus", lambda: 2)
    active, peak, lock = [0], [0], threading.Lock()
    real_task = eb._export_task

    def counting(task):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real_task(task)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(eb, "_export_task", counting)
    monkeypatch.setattr(eb.os, "getloadavg", lambda: (0.5, 0.5, 0.5))  # a CPU idle: auto overlaps
    monkeypatch.setattr(eb, "BATCH_OVERLAP", None)
    assert eb._overlap_width(2) == 2
    monkeypatch.setattr(eb.os, "getloadavg", lambda: (3.0, 3.0, 3.0))  # busy: auto does not
    assert eb._overlap_width(2) == 1 and eb._overlap_width(1) == 1
    from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast

    threads_before = seg_fast.DEFLATE_THREADS
    outcomes = {}
    for overlap in (1, 2):
        monkeypatch.setattr(eb, "BATCH_OVERLAP", overlap)
        peak[0] = 0
        seen = []
        rep = export_batch(sources, tmp / "ref", tmp / f"o{overlap}", ExportOptions(),
                           progress=lambda done, total, src, res: seen.append((done, Path(src).name)))
        assert peak[0] == overlap
        assert seg_fast.DEFLATE_THREADS == threads_before  # lowered while overlapping only
        assert seen == [(n + 1, Path(s).name) for n, s in enumerate(sources)]
        assert [Path(f).name for f, _ in rep.failed] == ["broken.seg.nrrd"]
        assert rep.series_numbers == [100, 101, 103, 104]
        outcomes[overlap] = [(r.path.name, r.series_instance_uid, r.sop_instance_uid) for r in rep.results]
        for res, arr in zip(rep.results, [e for e in expected if e is not None]):
            assert np.array_equal(read_seg(res.path, reference=tmp / "ref").labelmap.array, arr)
    assert outcomes[1] == outcomes[2]
    assert len({uid for _n, _s, uid in outcomes[2]}) == 4
