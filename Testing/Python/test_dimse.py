"""DIMSE push / segs-for / pull against a real PACS: Debian's Orthanc DICOM port on loopback.

Orthanc is started by :mod:`orthanc_server` (private storage, free ports, loopback only);
the tests skip when Orthanc or pynetdicom is not installed. What arrived is checked through
Orthanc's own REST API (instance counts, the transfer syntax Orthanc stored), pulled files
are decoded by pydicom and by our reader.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest

pytest.importorskip("pynetdicom", reason="pynetdicom not installed (pip install '.[remote]')")
pytest.importorskip("requests", reason="requests not installed (pip install '.[remote]')")

from orthanc_server import free_port, orthanc_or_skip  # noqa: E402
from test_remote import RunData  # noqa: E402

from AdaptiveBrushDicomLib.store import dimse  # noqa: E402
from AdaptiveBrushDicomLib.errors import UserError  # noqa: E402

ABDICOM = [sys.executable, "-m", "AdaptiveBrushDicomLib"]
#: C-FIND / C-GET from our (unregistered) AE title are refused by Orthanc's defaults.
ALLOW = {"DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True}


def run(args, cwd):
    proc = subprocess.run(ABDICOM + [str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def run_data(tmp_path_factory) -> RunData:
    return RunData(tmp_path_factory.mktemp("dimse_run"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = orthanc_or_skip(tmp_path_factory.mktemp("orthanc_dimse"), extra_config=ALLOW)
    yield srv
    srv.stop()


def peer_of(srv, aet: str = "ABDICOM") -> str:
    return f"{aet}@127.0.0.1:{srv.dicom_port}"


def stored_syntax(srv, sop_uid: str) -> str:
    import requests

    found = requests.post(srv.url + "/tools/find", auth=srv.auth, timeout=30,
                          json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}).json()
    assert len(found) == 1, found
    r = requests.get(f"{srv.url}/instances/{found[0]}/metadata/TransferSyntax", auth=srv.auth, timeout=30)
    r.raise_for_status()
    return r.text.strip()


@pytest.fixture(scope="module")
def pushed(server, run_data, tmp_path_factory):
    rc, out, err = run(["push", run_data.root / "dicom", "--dimse", peer_of(server), "--json"],
                       tmp_path_factory.mktemp("cwd"))
    assert rc == 0, err
    return json.loads(out)


def test_peer_parse():
    p = dimse.DimsePeer.parse("ORTHANC@127.0.0.1:4242", "ME")
    assert (p.ae_title, p.host, p.port, p.calling_aet) == ("ORTHANC", "127.0.0.1", 4242, "ME")
    assert str(p) == "ORTHANC@127.0.0.1:4242"
    for bad in ("127.0.0.1:4242", "ORTHANC@host", "A@h:0", "WAY_TOO_LONG_AE_TITLE@h:1"):
        with pytest.raises(UserError):
            dimse.DimsePeer.parse(bad)


def test_push_stores_every_instance_in_its_own_syntax(server, run_data, pushed):
    assert pushed["ok"] and pushed["sent"] == run_data.n_instances and pushed["failed"] == []
    assert server.statistics()["CountInstances"] == run_data.n_instances
    for name in ("gold", "trial_001", "trial_002"):
        res = run_data.segs[name]
        assert stored_syntax(server, res.sop_instance_uid) == res.transfer_syntax_uid  # deflate, RLE, explicit


def test_push_again_skips_everything(server, run_data, pushed, tmp_path):
    rc, out, err = run(["push", run_data.root / "dicom", "--dimse", peer_of(server), "--json"], tmp_path)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["sent"] == 0 and rep["skipped"] == run_data.n_instances
    assert server.statistics()["CountInstances"] == run_data.n_instances


def test_segs_for_lists_the_volume_segs(server, run_data, pushed, tmp_path):
    rc, out, err = run(["remote", "segs-for", run_data.volume.series_instance_uid, "--dimse", peer_of(server),
                        "--json"], tmp_path)
    assert rc == 0, err
    segs = json.loads(out)["segs"]
    assert [(s["kind"], s["trial_number"]) for s in segs] == [("gold", None), ("trial", 1), ("trial", 2)]
    assert {s["series_instance_uid"] for s in segs} == {run_data.segs[n].series_instance_uid
                                                        for n in ("gold", "trial_001", "trial_002")}
    assert segs[0]["segment_labels"] == [s.name for s in run_data.segments]
    rc, out, err = run(["remote", "segs-for", run_data.volume.series_instance_uid, "--dimse", peer_of(server)],
                       tmp_path)
    assert rc == 0 and "gold_standard" in out and "trial_002_levelset" in out


@pytest.mark.parametrize("name", ["gold", "trial_001"])
def test_pull_seg_same_dataset_and_voxels(server, run_data, pushed, tmp_path, name):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    res = run_data.segs[name]
    rc, out, err = run(["remote", "pull", res.series_instance_uid, "--out", tmp_path / "p", "--dimse",
                        peer_of(server), "--json"], tmp_path)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["written"] == 1
    got = pydicom.dcmread(rep["files"][0])
    sent = pydicom.dcmread(res.path)
    assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert got.PixelData == sent.PixelData and got.SOPInstanceUID == sent.SOPInstanceUID
    decoded = read_seg(rep["files"][0], reference=run_data.volume.folder)
    assert np.array_equal(decoded.labelmap.array, run_data.labels)
    # again: unchanged, nothing rewritten
    rc, out, err = run(["remote", "pull", res.series_instance_uid, "--out", tmp_path / "p", "--dimse",
                        peer_of(server), "--json"], tmp_path)
    assert rc == 0 and json.loads(out)["unchanged"] == 1


def test_pull_volume_series(server, run_data, pushed, tmp_path):
    rep = dimse.pull(run_data.volume.series_instance_uid, tmp_path / "v", dimse.DimsePeer.parse(peer_of(server)))
    assert len(rep.files) == len(run_data.volume.paths)
    want = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p).pixel_array for p in run_data.volume.paths}
    for f in rep.files:
        ds = pydicom.dcmread(f)
        assert np.array_equal(ds.pixel_array, want[ds.SOPInstanceUID])


def test_unknown_series_one_line(server, pushed, tmp_path):
    rc, _o, err = run(["remote", "pull", "1.2.3.4.5", "--out", tmp_path / "x", "--dimse", peer_of(server)], tmp_path)
    assert rc == 2 and "1.2.3.4.5 is not on the peer" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_fallback_when_peer_refuses_the_file_syntax(tmp_path, run_data):
    """Orthanc without Deflate: the Deflated gold standard goes as Explicit VR LE, same pixels."""
    srv = orthanc_or_skip(tmp_path / "orthanc", extra_config={**ALLOW, "DeflatedTransferSyntaxAccepted": False})
    try:
        gold = run_data.segs["gold"]
        rep = dimse.push(gold.path, dimse.DimsePeer.parse(peer_of(srv)))
        assert rep.ok and rep.sent == 1, rep.to_text()
        assert stored_syntax(srv, gold.sop_instance_uid) == "1.2.840.10008.1.2.1"
        pulled = dimse.pull(gold.series_instance_uid, tmp_path / "p", dimse.DimsePeer.parse(peer_of(srv)))
        a, b = pydicom.dcmread(gold.path), pydicom.dcmread(pulled.files[0])
        assert np.array_equal(a.pixel_array, b.pixel_array)
    finally:
        srv.stop()


def test_sop_class_refused_says_what_to_configure(tmp_path, run_data):
    srv = orthanc_or_skip(tmp_path / "orthanc", extra_config={**ALLOW, "UnknownSopClassAccepted": False})
    try:
        rc, out, err = run(["push", run_data.root / "dicom", "--dimse", peer_of(srv), "--json"], tmp_path)
        assert rc == 1, err
        rep = json.loads(out)
        n_segs = len(run_data.segs)
        assert rep["sent"] == run_data.n_instances - n_segs  # the image series went
        assert len(rep["failed"]) == n_segs  # every SEG listed, none silently lost
        assert all("UnknownSopClassAccepted" in f["reason"] and "66.7" in f["reason"] for f in rep["failed"])
        assert srv.statistics()["CountInstances"] == run_data.n_instances - n_segs
        rc, out, _err = run(["push", run_data.root / "dicom", "--dimse", peer_of(srv)], tmp_path)
        assert rc == 1 and "run the same command again" in out and "UnknownSopClassAccepted" in out
    finally:
        srv.stop()


def test_association_refused_one_line_naming_peer_and_reason(tmp_path, run_data):
    srv = orthanc_or_skip(tmp_path / "orthanc", extra_config={**ALLOW, "DicomCheckCalledAet": True})
    try:
        rc, out, err = run(["push", run_data.root / "dicom", "--dimse", peer_of(srv, "WRONG")], tmp_path)
        assert rc == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err
        assert f"WRONG@127.0.0.1:{srv.dicom_port}" in lines[0] and "Called AE title not recognised" in lines[0]
        assert srv.statistics()["CountInstances"] == 0
    finally:
        srv.stop()


def test_no_peer_listening(tmp_path, run_data):
    port = free_port()
    rc, _o, err = run(["push", run_data.volume.folder, "--dimse", f"NOBODY@127.0.0.1:{port}"], tmp_path)
    assert rc == 2 and f"NOBODY@127.0.0.1:{port}: cannot connect" in err and len(err.strip().splitlines()) == 1


def test_dicomweb_options_refused_with_dimse(tmp_path, run_data):
    rc, _o, err = run(["push", run_data.volume.folder, "--dimse", "A@127.0.0.1:1", "--token-file", "t"], tmp_path)
    assert rc == 2 and "--calling-aet" in err


def test_peer_refusing_queries(tmp_path, run_data):
    """Orthanc's defaults: C-STORE from anyone, C-FIND / C-GET only from known modalities."""
    srv = orthanc_or_skip(tmp_path / "orthanc")
    try:
        rc, out, err = run(["push", run_data.volume.folder, "--dimse", peer_of(srv), "--json"], tmp_path)
        assert rc == 0, err
        rep = json.loads(out)
        assert rep["sent"] == len(run_data.volume.paths) and rep["notes"] and "C-FIND" in rep["notes"][0]
        assert srv.statistics()["CountInstances"] == len(run_data.volume.paths)
        rc, out, err = run(["remote", "segs-for", run_data.volume.series_instance_uid, "--dimse", peer_of(srv)],
                           tmp_path)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "DicomAlwaysAllowFind" in err, err
    finally:
        srv.stop()


def test_peer_killed_mid_push_everything_reported_then_resumed(tmp_path, run_data):
    srv = orthanc_or_skip(tmp_path / "orthanc", extra_config=ALLOW)
    try:
        peer = dimse.DimsePeer.parse(peer_of(srv))

        def kill_after_three(p):
            if p.sent == 3 and srv.running:
                srv.kill()

        rep = dimse.push(run_data.root / "dicom", peer, progress=kill_after_three)
        assert not rep.ok and rep.sent == 3
        assert rep.sent + rep.skipped + len(rep.failed) == run_data.n_instances  # nothing unreported
        assert "run the same command again" in rep.to_text()
        srv.start()
        again = dimse.push(run_data.root / "dicom", peer)
        assert again.ok, again.to_text()
        assert again.skipped >= 3 and again.sent + again.skipped == run_data.n_instances
        assert srv.statistics()["CountInstances"] == run_data.n_instances
    finally:
        srv.stop()
