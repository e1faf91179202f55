"""Push / query / pull on a real PACS: Debian's Orthanc 1.10 + DICOMweb plugin.

Each server is started by :mod:`orthanc_server` on 127.0.0.1 with authentication, a temp
storage folder and free ports; the tests skip (with the reason) when Orthanc is not
installed. Data: a synthetic phantom series and LABELMAP SEGs written by the core
(``synthetic.create_synthetic_series``, ``seg_write.write_seg``).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dicomweb_client", reason="dicomweb-client not installed (pip install '.[remote]')")

from orthanc_server import OrthancServer, orthanc_or_skip  # noqa: E402

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass  # noqa: E402
from AdaptiveBrushDicomLib.store import dicomweb as remote  # noqa: E402
from AdaptiveBrushDicomLib.store.dicomweb import connection as stow_connection  # noqa: E402
from AdaptiveBrushDicomLib.store.dicomweb import stow  # noqa: E402
from AdaptiveBrushDicomLib.errors import UserError  # noqa: E402

FAST_FAIL = remote.RetryPolicy(attempts=2, backoff=0.05)


# ---------------------------------------------------------------------- data
class RunData:
    """A run folder: dicom/volume (12 slices), dicom/volume2 (same study, other series),
    dicom/segmentations: gold (Deflate), trial_001 (RLE), trial_002 (Explicit), and a SEG
    referencing volume2."""

    def __init__(self, root: Path) -> None:
        from AdaptiveBrushDicomLib.core.labelmap import LabelMap
        from abdicom_testkit.phantom import make_phantom, phantom_grid
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
        from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
        from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

        self.root = root
        self.grid = phantom_grid(shape=(12, 40, 48))
        self.image, self.labels, self.segments = make_phantom(self.grid)
        vol = create_synthetic_series(self.image, self.grid, root / "dicom" / "volume",
                                      patient_id="AdaptiveBrush_remote", study_description="remote_run",
                                      series_description="volume")
        vol2 = create_synthetic_series(self.image + 1, self.grid, root / "dicom" / "volume2",
                                       patient_id="AdaptiveBrush_remote", study_instance_uid=vol.study_instance_uid,
                                       study_description="remote_run",
                                       series_description="volume2", series_number=2)
        self.volume = vol
        self.volume2 = vol2
        self.reference = ReferenceSeries.from_folder(vol.folder)
        ref2 = ReferenceSeries.from_folder(vol2.folder)
        segdir = root / "dicom" / "segmentations"
        segdir.mkdir(parents=True)
        lm = LabelMap(self.labels, self.grid, self.segments)
        self.segs = {
            "gold": write_seg(lm, self.reference, segdir / "gold.dcm", compression="deflate",
                              series_description="gold_standard", series_number=100),
            "trial_001": write_seg(lm, self.reference, segdir / "trial_001.dcm", compression="rle",
                                   series_description="trial_001_watershed", series_number=101,
                                   content_description="optuna_a trial 1"),
            "trial_002": write_seg(lm, self.reference, segdir / "trial_002.dcm", compression="explicit",
                                   series_description="trial_002_levelset", series_number=102,
                                   content_description="optuna_a trial 2"),
            "other_volume": write_seg(lm, ref2, segdir / "other_volume.dcm", compression="deflate",
                                      series_description="trial_003_other", series_number=103,
                                      content_description="optuna_a trial 3"),
        }
        self.n_instances = len(vol.paths) + len(vol2.paths) + len(self.segs)


@pytest.fixture(scope="module")
def run_data(tmp_path_factory) -> RunData:
    return RunData(tmp_path_factory.mktemp("remote_run"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = orthanc_or_skip(tmp_path_factory.mktemp("orthanc"))
    yield srv
    srv.kill()  # storage is thrown away; a graceful stop of Orthanc 1.10 takes ~3.5 s


@pytest.fixture(scope="module")
def pushed(server: OrthancServer, run_data: RunData) -> remote.PushReport:
    """The run pushed once to the module's server."""
    return remote.push([run_data.root], server.dicomweb_url, server.auth, batch_size=5)


# ---------------------------------------------------------------------- no server needed
def test_split_multipart_roundtrip():
    body = (b"--b1\r\nContent-Type: application/dicom\r\n\r\nAAA\r\n--b1\r\n"
            b"Content-Type: application/dicom\r\nContent-Length: 4\r\n\r\nB\r\nB\r\n--b1--\r\n")
    assert remote.split_multipart(body, 'multipart/related; type="application/dicom"; boundary="b1"') == [
        b"AAA", b"B\r\nB"]
    assert remote.split_multipart(b"xyz", "application/dicom") == [b"xyz"]


def test_auth_from_files(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    a = remote.Auth.from_files("alice", pw)
    assert (a.user, a.password) == ("alice", "secret")
    assert "secret" not in repr(a) and "secret" not in a.describe()
    tok = tmp_path / "tok"
    tok.write_text("abc.def\n")
    assert remote.Auth.from_files(token_file=tok).token == "abc.def"
    assert remote.Auth.from_files() is None
    with pytest.raises(UserError, match="go together"):
        remote.Auth.from_files("alice")
    with pytest.raises(UserError, match="not both"):
        remote.Auth.from_files("alice", pw, tok)
    with pytest.raises(UserError, match="cannot read the password file"):
        remote.Auth.from_files("alice", tmp_path / "missing")
    (tmp_path / "empty").write_text("")
    with pytest.raises(UserError, match="empty"):
        remote.Auth.from_files("alice", tmp_path / "empty")


def test_bad_url_and_unreachable_server(run_data):
    with pytest.raises(UserError, match="http"):
        remote.push([run_data.root], "ftp://127.0.0.1/dicom-web")
    from orthanc_server import free_port

    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(remote.ServerUnreachableError, match="connection refused"):
        remote.push([run_data.root / "dicom" / "volume"], url, retry=FAST_FAIL)


def test_stow_response_parsing():
    class Resp:
        status_code = 202
        content = b"{}"

        def json(self):
            return {
                "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3"]}}]},
                "00081198": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.4"]},
                                                    "00081197": {"vr": "US", "Value": [272]}}]},
            }

    out = stow_connection._parse_stow_response(Resp())
    assert out.stored == {"1.2.3"}
    assert out.failed == {"1.2.4": "server refused it (FailureReason 272)"}


def test_batches_respect_count_and_bytes():
    def inst(n, size):
        return remote.LocalInstance(Path(f"{n}.dcm"), "s", "x", str(n), "MR", n, size)

    items = [inst(i, 10) for i in range(5)] + [inst(9, 1000)]
    sizes = [len(b) for b in stow._batches(items, 2, 100)]
    assert sizes == [2, 2, 1, 1]  # the big file goes alone


def test_retry_policy_delays():
    # urllib3's schedule: no wait before the first retry, then 2 * backoff, 4 * backoff, capped
    assert remote.RetryPolicy(attempts=5, backoff=0.5, max_delay=1.5).delays() == [0.0, 1.0, 1.5, 1.5]
    assert remote.RetryPolicy(attempts=1).delays() == []


# ---------------------------------------------------------------------- Orthanc
def test_server_listens_on_loopback_only(server):
    import subprocess

    if not server.loopback_only:
        pytest.skip("C compiler (cc) not installed: no loopback bind shim for Orthanc")
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) not installed")
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    ports = {server.http_port, server.dicom_port}
    listeners = [line.split()[3] for line in out.splitlines() if line.split() and
                 line.split()[3].rsplit(":", 1)[-1] in {str(p) for p in ports}]
    assert listeners and all(a.startswith("127.0.0.1:") for a in listeners), listeners


def test_push_sends_everything(server, run_data, pushed):
    assert pushed.ok, pushed.to_text()
    assert pushed.sent == run_data.n_instances
    assert pushed.skipped == 0
    assert pushed.requests >= 2
    assert len(pushed.series) == 6
    assert server.statistics()["CountInstances"] == run_data.n_instances


def test_segs_for_volume(server, run_data, pushed):
    segs = remote.segs_for(run_data.volume.series_instance_uid, server.dicomweb_url, server.auth)
    # the SEG of volume2 (same study) is not listed
    assert [s.series_description for s in segs] == ["gold_standard", "trial_001_watershed", "trial_002_levelset"]
    assert [s.kind for s in segs] == ["gold", "trial", "trial"]
    assert [s.trial_number for s in segs] == [None, 1, 2]
    # run name from ContentDescription "<run> trial <n>", else the StudyDescription
    assert [s.run_name for s in segs] == ["remote_run", "optuna_a", "optuna_a"]
    names = tuple(s.name for s in run_data.segments)
    for s in segs:
        assert s.sop_class_uid == SegSopClass.LABELMAP
        assert s.segment_labels == names
        assert s.referenced_series_uids == (run_data.volume.series_instance_uid,)
        assert s.files == ()
    other = remote.segs_for(run_data.volume2.series_instance_uid, server.dicomweb_url, server.auth)
    assert [s.series_description for s in other] == ["trial_003_other"]


@pytest.mark.parametrize("name", ["gold", "trial_001", "trial_002"])
def test_pull_seg_byte_exact_and_decodes(server, run_data, pushed, tmp_path, name):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    res = run_data.segs[name]
    rep = remote.pull(res.series_instance_uid, tmp_path / "pulled", server.dicomweb_url, server.auth)
    assert rep.written == 1 and not rep.transcoded
    (path,) = rep.files
    assert path.read_bytes() == res.path.read_bytes()  # transfer-syntax=*: stored bytes come back
    decoded = read_seg(path, reference=run_data.reference)
    assert np.array_equal(decoded.labelmap.array, run_data.labels)
    # pulling again leaves identical files alone
    again = remote.pull(res.series_instance_uid, tmp_path / "pulled", server.dicomweb_url, server.auth)
    assert again.written == 0 and again.unchanged == 1


def test_pull_volume_series(server, run_data, pushed, tmp_path):
    rep = remote.pull(run_data.volume.series_instance_uid, tmp_path / "vol", server.dicomweb_url, server.auth)
    assert len(rep.files) == len(run_data.volume.paths)
    local = sorted(p.read_bytes() for p in run_data.volume.paths)
    assert sorted(p.read_bytes() for p in rep.files) == local


def test_push_twice_no_duplicates(server, run_data, pushed):
    calls = []
    again = remote.push([run_data.root], server.dicomweb_url, server.auth, progress=calls.append)
    assert again.ok
    assert again.sent == 0 and again.skipped == run_data.n_instances and again.requests == 0
    assert calls and calls[-1].done == run_data.n_instances
    stats = server.statistics()
    assert stats["CountInstances"] == run_data.n_instances
    assert stats["CountSeries"] == 6


def test_wrong_password_is_a_clear_error(server, run_data, pushed, tmp_path, capsys):
    with pytest.raises(remote.AuthError, match="refused the credentials .*HTTP 401"):
        remote.push([run_data.root], server.dicomweb_url, (server.user, "wrong"))
    with pytest.raises(remote.AuthError, match="requires authentication"):
        remote.segs_for(run_data.volume.series_instance_uid, server.dicomweb_url, None)
    from AdaptiveBrushDicomLib.cli.main import main

    bad = tmp_path / "pw"
    bad.write_text("not-the-password\n")
    rc = main(["push", str(run_data.root), "--dicomweb", server.dicomweb_url, "--user", server.user,
               "--password-file", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert server.dicomweb_url in err and str(bad) in err and "401" in err
    assert "not-the-password" not in err


def test_unknown_series(server, pushed):
    from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

    with pytest.raises(UnknownUIDError, match="not on the server"):
        remote.segs_for("1.2.3.4.5.6.7.8.9", server.dicomweb_url, server.auth)


def test_cli_push_segs_pull_json(server, run_data, pushed, tmp_path, capsys):
    from AdaptiveBrushDicomLib.cli.main import main

    pw = server.write_password_file(tmp_path / "pw")
    common = ["--dicomweb", server.dicomweb_url, "--user", server.user, "--password-file", str(pw), "--json"]
    assert main(["push", str(run_data.root / "dicom" / "segmentations"), *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["skipped"] == 4 and out["sent"] == 0
    assert main(["remote", "segs-for", run_data.volume.series_instance_uid, *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["series_description"] for s in out["segs"]][0] == "gold_standard"
    gold = run_data.segs["gold"]
    assert main(["remote", "pull", gold.series_instance_uid, "--out", str(tmp_path / "g"), *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["files"][0]).read_bytes() == gold.path.read_bytes()


def test_dicomweb_database_protocol(server, run_data, pushed, tmp_path):
    from AdaptiveBrushDicomLib.store.database_protocol import DicomDatabase

    db = remote.DicomWebDatabase(server.dicomweb_url, server.auth, cache_dir=tmp_path / "cache")
    assert isinstance(db, DicomDatabase)
    (study,) = db.studies()
    assert study.study_description == "remote_run" and study.n_instances == run_data.n_instances
    series = db.series_for_study(study.study_instance_uid)
    assert sorted(s.modality for s in series) == ["MR", "MR", "SEG", "SEG", "SEG", "SEG"]
    trials = db.trials_for_run(study.study_instance_uid)
    assert [t.trial_number for t in trials] == [1, 2, 3]
    gold = db.gold_for_volume(run_data.volume.series_instance_uid)
    assert [g.series_description for g in gold] == ["gold_standard"]
    files = db.files_for_series(gold[0].series_instance_uid)
    assert files[0].read_bytes() == run_data.segs["gold"].path.read_bytes()
    sop = run_data.volume.sop_instance_uids[3]
    assert db.file_for_instance(sop).read_bytes() == run_data.volume.paths[3].read_bytes()
    assert db.show(gold[0].series_instance_uid)["seg"]["segment_labels"] == [s.name for s in run_data.segments]
    assert db.show(sop)["level"] == "instance"


# ---------------------------------------------------------------------- crash + resume
def test_kill_mid_push_then_resume(tmp_path, run_data):
    srv = orthanc_or_skip(tmp_path / "orthanc")
    try:
        killed_after = []

        def crash(p: remote.PushProgress) -> None:
            if p.sent >= 6 and not killed_after:
                killed_after.append(p.sent)
                srv.kill()  # SIGKILL: no clean shutdown

        first = remote.push([run_data.root], srv.dicomweb_url, srv.auth, batch_size=3, progress=crash,
                            retry=FAST_FAIL)
        assert killed_after == [6]
        assert not first.ok and "cannot reach" in first.aborted
        assert first.sent == 6
        assert len(first.failed) == run_data.n_instances - 6
        assert "run the same command again" in first.to_text()

        srv.start()  # same storage folder
        second = remote.push([run_data.root], srv.dicomweb_url, srv.auth, batch_size=3)
        assert second.ok, second.to_text()
        assert second.skipped == 6
        assert second.sent == run_data.n_instances - 6
        assert srv.statistics()["CountInstances"] == run_data.n_instances
    finally:
        srv.kill()


def test_server_restart_during_push_is_retried(tmp_path, run_data):
    """The server dies and comes back within the backoff: the same push finishes."""
    srv = orthanc_or_skip(tmp_path / "orthanc")
    try:
        events = []

        def bounce(p: remote.PushProgress) -> None:
            if p.sent >= 3 and not events:
                srv.kill()
                events.append("killed")
                t = threading.Timer(0.4, lambda: (srv.start(), events.append("restarted")))
                t.start()
                events.append(t)

        rep = remote.push([run_data.root / "dicom" / "volume"], srv.dicomweb_url, srv.auth, batch_size=3,
                          progress=bounce, retry=remote.RetryPolicy(attempts=8, backoff=0.2, max_delay=1.0))
        events[1].join()
        assert "restarted" in events
        assert rep.ok, rep.to_text()
        assert rep.retries >= 1
        assert rep.sent == len(run_data.volume.paths)
        assert srv.statistics()["CountInstances"] == len(run_data.volume.paths)
    finally:
        srv.kill()


def test_segs_for_when_metadata_comes_from_the_index(tmp_path, run_data):
    """Orthanc "SeriesMetadata": "MainDicomTags" leaves sequences out of WADO-RS metadata:
    segs_for then reads the SEG headers from the instances."""
    srv = orthanc_or_skip(tmp_path / "orthanc",
                          extra_config={"DicomWeb": {"SeriesMetadata": "MainDicomTags",
                                                     "StudiesMetadata": "MainDicomTags"}})
    try:
        remote.push([run_data.root], srv.dicomweb_url, srv.auth)
        segs = remote.segs_for(run_data.volume.series_instance_uid, srv.dicomweb_url, srv.auth)
        assert [s.series_description for s in segs] == ["gold_standard", "trial_001_watershed", "trial_002_levelset"]
        assert all(s.segment_labels == tuple(x.name for x in run_data.segments) for s in segs)
    finally:
        srv.kill()


# ---------------------------------------------------------------- retries (urllib3 Retry)
class _FlakyServer:
    """A local HTTP server answering ``fail`` requests with HTTP 503, then ``[]`` (QIDO-RS)."""

    def __init__(self, fail: int) -> None:
        import http.server

        outer = self
        self.fail, self.hits = fail, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.hits += 1
                if outer.hits <= outer.fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"[]"
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dicom-web"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_503_is_retried_by_the_session_then_succeeds():
    srv = _FlakyServer(fail=2)
    try:
        conn = remote.DicomWebConnection(srv.url, retry=remote.RetryPolicy(attempts=3, backoff=0.01))
        assert conn.search_series() == []
        assert srv.hits == 3 and conn.retries_used == 2
    finally:
        srv.close()


def test_http_503_that_persists_is_one_line_naming_the_attempts():
    srv = _FlakyServer(fail=99)
    try:
        conn = remote.DicomWebConnection(srv.url, retry=remote.RetryPolicy(attempts=3, backoff=0.01))
        with pytest.raises(remote.RemoteError) as info:
            conn.search_series()
        msg = str(info.value)
        assert srv.url in msg and "HTTP 503" in msg and "after 3 attempts" in msg and "\n" not in msg
        assert srv.hits == 3 and conn.retries_used == 2
    finally:
        srv.close()
