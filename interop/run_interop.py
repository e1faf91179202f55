#!/usr/bin/env python3
"""Viewer / PACS interop of our LABELMAP SEGs: dcmjs, Cornerstone3D (node and headless
Chromium) and Orthanc + DICOMweb. Writes the result tables into ``docs/interop-remote.md``.

What runs (each part is skipped with a reason when its tools are missing):

1. data: a synthetic phantom series (``synthetic.create_synthetic_series``) and one LABELMAP
   SEG per transfer syntax (``seg_write.write_seg``), plus the expected segment-number
   array (``expected.npy``, k/j/i on the reference grid);
2. node (``interop/js/check_seg.mjs``): dcmjs parses each SEG (SOP class, frames,
   segments; voxels for native pixel data); ``@cornerstonejs/adapters``
   ``createFromDICOMSegBuffer`` decodes it against the reference series and the labelmap
   images are compared voxel by voxel;
3. Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, started on 127.0.0.1 with
   authentication): STOW-RS push (``remote.push``), QIDO/WADO metadata query
   (``remote.segs_for``), WADO-RS retrieve as stored (``remote.pull``, byte comparison),
   WADO-RS frame 1 with the server's default transcoding;
4. browser: ``interop/js/browser`` bundled with esbuild, served on 127.0.0.1 together
   with a proxy to Orthanc's DICOMweb (the proxy adds the credentials; same origin, no
   CORS), opened in Debian's chromium through playwright-core: Cornerstone3D StackViewport
   + labelmap representation, decoded voxels compared in the page, screenshot of the
   default syntax saved as ``docs/images/seg-in-browser.png``.

Usage: ``.venv/bin/python interop/run_interop.py [--skip-browser] [--keep DIR] [--no-write]``
(``npm ci`` in ``interop/js`` first).
"""

from __future__ import annotations

import argparse
import http.server
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JS = REPO / "interop" / "js"
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))
sys.path.insert(0, str(REPO / "Testing" / "Python"))

from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression  # noqa: E402

DOC = REPO / "docs" / "interop-remote.md"
SCREENSHOT = REPO / "docs" / "images" / "seg-in-browser.png"
OHIF_SCREENSHOT = REPO / "docs" / "images" / "seg-in-ohif.png"
#: OHIF viewer release whose prebuilt ``dist/`` (npm package @ohif/app) is served.
OHIF_VERSION = "3.13.2"
BEGIN, END = "<!-- BEGIN GENERATED REMOTE MATRIX -->", "<!-- END GENERATED REMOTE MATRIX -->"


# ---------------------------------------------------------------------- helpers
class Cell:
    """One table cell: ok (True/False/None = not run) + short note."""

    def __init__(self, ok: bool | None, note: str = "") -> None:
        self.ok, self.note = ok, note.replace("|", "/").replace("\n", " ")

    def __str__(self) -> str:
        word = "n/a" if self.ok is None else ("**ok**" if self.ok else "**fails**")
        return f"{word} ({self.note})" if self.note else word


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def last_json(text: str) -> Any:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


def _rel(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def node_ready() -> str | None:
    """None if node + interop/js/node_modules are usable, else the reason."""
    if shutil.which("node") is None:
        return "node not installed"
    if not (JS / "node_modules" / "@cornerstonejs" / "adapters").exists():
        return "interop/js not installed (cd interop/js && npm ci)"
    return None


# ---------------------------------------------------------------------- data
def make_data(root: Path) -> dict[str, Any]:
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from abdicom_testkit.phantom import make_phantom, phantom_grid
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    grid = phantom_grid()  # 40 x 96 x 96, 5 structures incl. label 300
    image, labels, segments = make_phantom(grid)
    vol = create_synthetic_series(image, grid, root / "volume", patient_id="AdaptiveBrush_interop",
                                  study_description="interop", series_description="phantom", force=True)
    ref = ReferenceSeries.from_folder(vol.folder)
    lut = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    for number, s in enumerate(segments, start=1):
        lut[s.label] = number
    expected = lut[labels]
    np.save(root / "expected.npy", expected)
    segs = {}
    (root / "segs").mkdir(exist_ok=True)
    for comp in Compression:
        res = write_seg(LabelMap(labels, grid, segments), ref, root / "segs" / f"{comp.cli_name}.dcm",
                        compression=comp, series_description=f"interop_{comp.cli_name}",
                        series_number=100 + list(Compression).index(comp), force=True)
        segs[comp] = res
    return {"volume": vol, "reference": ref, "segs": segs, "expected": expected, "grid": grid,
            "segments": segments, "root": root}


# ---------------------------------------------------------------------- node checks
def node_checks(data: dict[str, Any]) -> dict[Compression, dict[str, Cell]]:
    out: dict[Compression, dict[str, Cell]] = {}
    reason = node_ready()
    for comp, res in data["segs"].items():
        if reason:
            out[comp] = {"dcmjs": Cell(None, reason), "Cornerstone3D (node)": Cell(None, reason),
                         "Cornerstone3D + app codec (node)": Cell(None, reason)}
            continue
        t0 = time.perf_counter()
        p = run(["node", str(JS / "check_seg.mjs"), str(res.path), str(data["volume"].folder),
                 str(data["root"] / "expected.npy"), "--app-codec"], cwd=JS, timeout=180)
        try:
            r = last_json(p.stdout)
            codec = r.get("Cornerstone3D + app codec", {"ok": None, "note": "not run"})
            out[comp] = {"dcmjs": Cell(r["dcmjs"]["ok"], r["dcmjs"]["note"]),
                         "Cornerstone3D (node)": Cell(r["Cornerstone3D"]["ok"], r["Cornerstone3D"]["note"]),
                         "Cornerstone3D + app codec (node)": Cell(codec["ok"], codec["note"])}
        except Exception as exc:
            note = (p.stderr.strip().splitlines() or [str(exc)])[-1][:120]
            out[comp] = {"dcmjs": Cell(False, note), "Cornerstone3D (node)": Cell(False, note)}
        print(f"  node {comp.cli_name}: {time.perf_counter() - t0:.1f} s "
              f"{ {k: v.ok for k, v in out[comp].items()} }", flush=True)
    return out


# ---------------------------------------------------------------------- Orthanc
def orthanc_checks(data: dict[str, Any], workdir: Path) -> tuple[dict[Compression, dict[str, Cell]], Any, dict]:
    """Returns (cells, running server or None, timings)."""
    from orthanc_server import OrthancServer, find_dicomweb_plugin, find_orthanc

    out: dict[Compression, dict[str, Cell]] = {}
    timings: dict[str, float] = {}
    if find_orthanc() is None or find_dicomweb_plugin() is None:
        for comp in data["segs"]:
            out[comp] = {"Orthanc STOW-RS": Cell(None, "Orthanc not installed")}
        return out, None, timings
    # fresh storage: resume would skip re-written SEGs (same UIDs, new timestamps)
    shutil.rmtree(workdir / "orthanc", ignore_errors=True)
    shutil.rmtree(workdir / "pulled", ignore_errors=True)
    srv = OrthancServer(workdir / "orthanc")
    t0 = time.perf_counter()
    srv.start()
    timings["orthanc_start_s"] = time.perf_counter() - t0
    try:
        return _orthanc_cells(data, workdir, srv, timings), srv, timings
    except BaseException:
        srv.stop()
        raise


def _orthanc_cells(data: dict[str, Any], workdir: Path, srv: Any, timings: dict) -> dict[Compression, dict[str, Cell]]:
    from AdaptiveBrushDicomLib.store import dicomweb as remote

    out: dict[Compression, dict[str, Cell]] = {}
    url, auth = srv.dicomweb_url, srv.auth
    t0 = time.perf_counter()
    rep = remote.push([data["volume"].folder, data["root"] / "segs"], url, auth)
    timings["push_s"] = time.perf_counter() - t0
    timings["push_instances"] = rep.instances
    timings["push_bytes"] = rep.bytes_sent
    failed = {f.path: f.reason for f in rep.failed}
    t0 = time.perf_counter()
    found = {s.series_instance_uid: s for s in remote.segs_for(data["volume"].series_instance_uid, url, auth)}
    timings["segs_for_s"] = time.perf_counter() - t0
    import requests

    for comp, res in data["segs"].items():
        cells: dict[str, Cell] = {}
        reason = failed.get(str(res.path))
        cells["Orthanc STOW-RS"] = Cell(reason is None, reason or "")
        s = found.get(res.series_instance_uid)
        cells["QIDO + metadata (segs-for)"] = Cell(
            s is not None and len(s.segment_labels) == len(data["segments"]),
            f"{len(s.segment_labels)} segments" if s else "not found")
        try:
            t0 = time.perf_counter()
            pr = remote.pull(res.series_instance_uid, workdir / "pulled" / comp.cli_name, url, auth)
            same = pr.files[0].read_bytes() == res.path.read_bytes()
            cells["WADO-RS retrieve (as stored)"] = Cell(same, "byte-identical" if same else "bytes differ")
        except Exception as exc:  # a failing server call is a result
            cells["WADO-RS retrieve (as stored)"] = Cell(False, f"{type(exc).__name__}: {str(exc)[:80]}")
        # frame 1 with the server's default transfer syntax (Orthanc transcodes)
        frame_url = (f"{url}/studies/{data['volume'].study_instance_uid}/series/{res.series_instance_uid}"
                     f"/instances/{res.sop_instance_uid}/frames/1")
        r = requests.get(frame_url, auth=auth, headers={"Accept": 'multipart/related; type="application/octet-stream"'},
                         timeout=60)
        if r.status_code == 200:
            part = remote.split_multipart(r.content, r.headers.get("Content-Type", ""))[0]
            want = data["grid"].shape_kji[1] * data["grid"].shape_kji[2]
            cells["WADO-RS frames (transcoded)"] = Cell(len(part) == want, f"{len(part)} bytes")
        else:
            cells["WADO-RS frames (transcoded)"] = Cell(False, f"HTTP {r.status_code}")
        out[comp] = cells
    return out


# ---------------------------------------------------------------------- C-STORE
_STORESCU_CFG = """[[TransferSyntaxes]]
{syntaxes}
[[PresentationContexts]]
[LabelmapSeg]
{contexts}
[[Profiles]]
[Labelmap]
PresentationContexts = LabelmapSeg
"""


def storescu_profile(path: Path) -> Path:
    """DCMTK storescu association profile proposing 66.7 with each of our syntaxes.

    DCMTK 3.6.7 does not know Label Map Segmentation Storage: without a profile storescu
    refuses the file ("unknown storage SOP class"). One presentation context per transfer
    syntax, so each file is sent as stored.
    """
    from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass

    syntaxes = "\n".join(f"[TS{n}]\nTransferSyntax1 = {c.uid}" for n, c in enumerate(Compression))
    contexts = "\n".join(f"PresentationContext{n + 1} = {SegSopClass.LABELMAP}\\TS{n}"
                          for n, c in enumerate(Compression))
    path.write_text(_STORESCU_CFG.format(syntaxes=syntaxes, contexts=contexts))
    return path


def cstore_checks(data: dict[str, Any], workdir: Path) -> tuple[dict[Compression, dict[str, Cell]], dict]:
    """C-STORE every SEG with DCMTK storescu to Orthanc with UnknownSopClassAccepted true,
    and the default SEG to one with false (expected: refused)."""
    from orthanc_server import OrthancServer, find_orthanc

    col = "Orthanc C-STORE (storescu)"
    storescu = shutil.which("storescu")
    if storescu is None or find_orthanc() is None:
        why = "storescu (dcmtk) not installed" if storescu is None else "Orthanc not installed"
        return {c: {col: Cell(None, why)} for c in data["segs"]}, {}
    cfg = storescu_profile(workdir / "storescu.cfg")
    out: dict[Compression, dict[str, Cell]] = {}
    extra: dict[str, Any] = {}
    for accept in (True, False):
        shutil.rmtree(workdir / f"orthanc-cstore-{accept}", ignore_errors=True)
        srv = OrthancServer(workdir / f"orthanc-cstore-{accept}", extra_config={"UnknownSopClassAccepted": accept})
        srv.start()
        try:
            config = srv.config()
            for comp, res in data["segs"].items():
                if not accept and comp is not DEFAULT_COMPRESSION:
                    continue
                p = run([storescu, "-aec", config["DicomAet"], "-xf", str(cfg), "Labelmap", "127.0.0.1",
                         str(srv.dicom_port), str(res.path)], timeout=60)
                last = (p.stderr.strip().splitlines() or [""])[-1][:100]
                if accept:
                    out[comp] = {col: Cell(p.returncode == 0, "" if p.returncode == 0 else last)}
                else:
                    extra["cstore_with_UnknownSopClassAccepted_false"] = (
                        "refused: " + last if p.returncode != 0 else "accepted")
            if accept:
                extra["cstore_stored"] = srv.statistics()["CountInstances"]
        finally:
            srv.stop()
    return out, extra


# ---------------------------------------------------------------------- browser
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``directory``; ``/dicom-web/...`` proxied to Orthanc with auth."""

    upstream = ""
    auth_header = ""
    data_dir = Path(".")

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path.startswith("/dicom-web/"):
            return self._proxy()
        if self.path.startswith("/data/"):
            p = self.data_dir / self.path[len("/data/"):].split("?")[0]
            if p.is_file():
                body = p.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_error(404)
            return
        return super().do_GET()

    def _proxy(self) -> None:
        req = urllib.request.Request(self.upstream + self.path[len("/dicom-web"):],
                                     headers={"Accept": self.headers.get("Accept", "*/*"),
                                              "Authorization": self.auth_header})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read()
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/octet-stream"))
        except urllib.error.HTTPError as exc:
            body = exc.read()
            self.send_response(exc.code)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def browser_checks(data: dict[str, Any], srv: Any, workdir: Path, screenshot: Path) -> tuple[dict, dict]:
    import base64

    out: dict[Compression, dict[str, Cell]] = {}
    timings: dict[str, float] = {}
    col = "Cornerstone3D in Chromium (DICOMweb)"
    reason = node_ready()
    if reason is None and not Path("/usr/bin/chromium").exists():
        reason = "Debian chromium not installed"
    if reason is None and srv is None:
        reason = "needs Orthanc"
    if reason is None and not (JS / "node_modules" / "playwright-core").exists():
        reason = "playwright-core not installed"
    if reason:
        return {comp: {col: Cell(None, reason)} for comp in data["segs"]}, timings
    t0 = time.perf_counter()
    dist = workdir / "browser-dist"
    b = run(["node", "build.mjs", str(dist)], cwd=JS, timeout=300)
    timings["bundle_s"] = time.perf_counter() - t0
    if b.returncode != 0:
        note = "esbuild: " + (b.stderr.strip().splitlines() or ["failed"])[-1][:100]
        return {comp: {col: Cell(False, note)} for comp in data["segs"]}, timings

    handler = type("H", (_Handler,), {
        "upstream": srv.dicomweb_url,
        "auth_header": "Basic " + base64.b64encode(f"{srv.user}:{srv.password}".encode()).decode(),
        "data_dir": data["root"],
    })
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: handler(
        *a, directory=str(dist), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        pages = []
        for comp, res in data["segs"].items():
            q = (f"dicomweb=/dicom-web&study={data['volume'].study_instance_uid}"
                 f"&series={data['volume'].series_instance_uid}&seg={res.series_instance_uid}"
                 f"&expected=/data/expected.npy")
            page = {"name": comp.cli_name, "url": f"{base}/index.html?{q}"}
            if comp is DEFAULT_COMPRESSION:
                page["screenshot"] = str(workdir / "seg-in-browser.png")
                # same slice without the segmentation: no coloured pixels expected
                pages.append({"name": "image_only", "url": f"{base}/index.html?{q}&noseg=1",
                              "screenshot": str(workdir / "image-only.png")})
            pages.append(page)
        cfg = workdir / "browser.json"
        cfg.write_text(json.dumps({"pages": pages, "chromium": "/usr/bin/chromium", "timeout_ms": 90000}))
        t0 = time.perf_counter()
        p = run(["node", "run_browser.mjs", str(cfg)], cwd=JS, timeout=900)
        timings["browser_s"] = time.perf_counter() - t0
        try:
            results = last_json(p.stdout)
        except Exception:
            note = (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
            return {comp: {col: Cell(False, note)} for comp in data["segs"]}, timings
        timings["chromium_launch_s"] = results.get("_launch_ms", 0) / 1000
        image_only = results.get("image_only", {})
        timings["image_only_coloured_px"] = image_only.get("coloured_pixels", "n/a")
        for comp in data["segs"]:
            r = results.get(comp.cli_name, {})
            cmp = r.get("compare") or {}
            if r.get("stage") == "done" and cmp.get("equal"):
                note = (f"voxels exact, {len(r.get('segments', []))} segments, "
                        f"{r.get('coloured_pixels', 0)} coloured px on slice {r.get('slice', 0) + 1}, "
                        f"{r.get('timings', {}).get('total_ms', '?')} ms")
                ok = True
            elif r.get("stage") == "done":
                ok, note = False, f"{cmp.get('mismatches', '?')} voxels differ"
            else:
                ok, note = False, f"{r.get('error', 'did not finish')} (at {r.get('stage')})"[:140]
            out[comp] = {col: Cell(ok, note)}
            if r.get("screenshot") and ok:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(r["screenshot"], screenshot)
                timings["screenshot"] = _rel(screenshot)
            print(f"  browser {comp.cli_name}: {ok} {note}", flush=True)
    finally:
        httpd.shutdown()
    return out, timings


# ---------------------------------------------------------------------- OHIF
def ohif_dist() -> Path:
    """The prebuilt OHIF viewer (``dist/`` of the npm package @ohif/app), fetched once with
    ``npm pack`` into ``interop/js/node_modules/.cache`` (ignored by git)."""
    import tarfile

    cache = JS / "node_modules" / ".cache" / f"ohif-app-{OHIF_VERSION}"
    dist = cache / "package" / "dist"
    if (dist / "index.html").exists():
        return dist
    cache.mkdir(parents=True, exist_ok=True)
    p = run(["npm", "pack", f"@ohif/app@{OHIF_VERSION}", "--pack-destination", str(cache)], cwd=cache, timeout=600)
    tgz = cache / f"ohif-app-{OHIF_VERSION}.tgz"
    if p.returncode != 0 or not tgz.exists():
        raise RuntimeError("npm pack @ohif/app failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:100])
    with tarfile.open(tgz) as tar:
        tar.extractall(cache, filter="data")
    tgz.unlink()
    return dist


def without_background_item(src: Path, dst: Path, series_description: str) -> Path:
    """Copy of a LABELMAP SEG without the SegmentSequence item of segment 0, with new
    Series/SOP Instance UIDs (an experiment for the OHIF colour check)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(src)
    ds.SegmentSequence = pydicom.Sequence([it for it in ds.SegmentSequence if int(it.SegmentNumber) != 0])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), "no-background"])
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), "no-background"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = series_description
    ds.save_as(dst, enforce_file_format=True)
    return dst


def _colour_close(a: Any, b: Any, tol: int = 8) -> bool:
    return a is not None and b is not None and len(a) == 3 and all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def coloured_pixels(png: Path, box: tuple[int, int, int, int]) -> int:
    """Pixels in ``box`` (x0, y0, x1, y1) whose RGB channels differ by more than 40."""
    from PIL import Image

    im = np.asarray(Image.open(png).convert("RGB").crop(box)).astype(int)
    spread = im.max(axis=2) - im.min(axis=2)
    return int((spread > 40).sum())


def ohif_checks(data: dict[str, Any], srv: Any, workdir: Path, screenshot: Path) -> tuple[dict, dict]:
    """Open each SEG in the OHIF viewer (prebuilt release) loading from Orthanc over DICOMweb."""
    import base64

    col = f"OHIF {OHIF_VERSION} (DICOMweb)"
    timings: dict[str, Any] = {}
    reason = node_ready()
    if reason is None and not Path("/usr/bin/chromium").exists():
        reason = "Debian chromium not installed"
    if reason is None and srv is None:
        reason = "needs Orthanc"
    if reason is None:
        try:
            t0 = time.perf_counter()
            dist = ohif_dist()
            timings["ohif_fetch_s"] = time.perf_counter() - t0
        except Exception as exc:
            reason = str(exc)[:120]
    if reason:
        return {comp: {col: Cell(None, reason)} for comp in data["segs"]}, timings

    config_js = (REPO / "interop" / "ohif" / "app-config.js").read_bytes()

    class Handler(_Handler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path.startswith("/dicom-web/"):
                return self._proxy()
            if path == "/app-config.js":
                self.send_response(200)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Content-Length", str(len(config_js)))
                self.end_headers()
                self.wfile.write(config_js)
                return
            if not (dist / path.lstrip("/")).is_file():
                self.path = "/index.html"  # single-page app routes (/viewer?...)
            return http.server.SimpleHTTPRequestHandler.do_GET(self)

    Handler.upstream = srv.dicomweb_url
    Handler.auth_header = "Basic " + base64.b64encode(f"{srv.user}:{srv.password}".encode()).decode()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=str(dist), **k))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    expected = data["expected"]
    # the image showing the most segments (then the most labelled voxels)
    score = [(len(np.unique(expected[k][expected[k] > 0])), int((expected[k] > 0).sum())) for k in
             range(expected.shape[0])]
    k_best = max(range(len(score)), key=lambda k: score[k])
    target_instance = k_best + 1  # synthetic series: InstanceNumber = k + 1
    want = [(n, s.name, s.color) for n, s in enumerate(data["segments"], start=1)]
    out: dict[Compression, dict[str, Cell]] = {}
    try:
        segs = []
        for comp, res in data["segs"].items():
            item = {"name": comp.cli_name, "description": f"interop_{comp.cli_name}",
                    "screenshot": str(workdir / f"ohif-{comp.cli_name}.png")}
            segs.append(item)
        # experiment: the default SEG without its segment-0 "Background" item (new UIDs)
        try:
            variant = without_background_item(data["segs"][DEFAULT_COMPRESSION].path, workdir / "no-background.dcm",
                                              "interop_no_background")
            from AdaptiveBrushDicomLib.store import dicomweb as remote

            if remote.push([variant], srv.dicomweb_url, srv.auth).ok:
                segs.append({"name": "no_background", "description": "interop_no_background",
                             "screenshot": str(workdir / "ohif-no-background.png")})
        except Exception as exc:  # the experiment is optional
            timings["ohif_no_background_item"] = f"not run ({type(exc).__name__}: {exc})"[:120]
        cfg = workdir / "ohif.json"
        cfg.write_text(json.dumps({"base": f"http://127.0.0.1:{httpd.server_address[1]}",
                                   "study": data["volume"].study_instance_uid, "target_instance": target_instance,
                                   "segs": segs, "chromium": "/usr/bin/chromium", "timeout_ms": 90000}))
        t0 = time.perf_counter()
        p = run(["node", "run_ohif.mjs", str(cfg)], cwd=JS, timeout=1200)
        timings["ohif_s"] = time.perf_counter() - t0
        try:
            results = last_json(p.stdout)
        except Exception:
            note = (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
            return {comp: {col: Cell(False, note)} for comp in data["segs"]}, timings
        keys: list[Any] = list(data["segs"]) + (["no_background"] if "no_background" in results else [])
        for comp in keys:
            r = results.get(comp.cli_name if isinstance(comp, Compression) else comp, {})
            if r.get("stage") != "done":
                out[comp] = {col: Cell(False, f"{r.get('error', 'did not finish')}; steps: "
                                                f"{', '.join(r.get('steps', []))}")}
                continue
            rows = {row["number"]: row for row in r.get("rows", []) if isinstance(row.get("number"), int)}
            names_ok = all(rows.get(n, {}).get("label") == name for n, name, _ in want)
            colours_ok = all(_colour_close(rows.get(n, {}).get("rgb"), rgb) for n, _, rgb in want)
            shifted = all(_colour_close(rows.get(n, {}).get("rgb"), want[n - 2][2]) for n, _, _ in want[1:])
            px = coloured_pixels(Path(r["screenshot"]), (290, 55, 990, 790)) if r.get("screenshot") else 0
            slice_txt = f"image {r['slice']['index']}/{r['slice']['total']}" if r.get("slice") else "slice ?"
            parts = [f"opens ({'prompt' if any('prompt' in s for s in r['steps']) else 'no prompt'})",
                     f"{len(rows)} rows incl. Background 0" if 0 in rows else f"{len(rows)} rows",
                     "names ok" if names_ok else "names differ",
                     "colours ok" if colours_ok else
                     ("colours shifted by one segment: n shows the colour of n-1 (Background's black for 1)"
                      if shifted else "colours differ"),
                     f"{px} coloured px on {slice_txt}"]
            ok = names_ok and colours_ok and px > 0
            if not isinstance(comp, Compression):  # the experiment goes into the notes, not the table
                timings["ohif_no_background_item"] = ("ok: " if ok else "fails: ") + ", ".join(parts)
                print(f"  ohif {comp}: {ok} {', '.join(parts)}", flush=True)
                continue
            out[comp] = {col: Cell(ok, ", ".join(parts))}
            print(f"  ohif {comp.cli_name}: {ok} {', '.join(parts)}", flush=True)
            if comp is DEFAULT_COMPRESSION and r.get("screenshot") and px > 0:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(r["screenshot"], screenshot)
                timings["ohif_screenshot"] = _rel(screenshot)
    finally:
        httpd.shutdown()
    return out, timings


# ---------------------------------------------------------------------- report
def versions() -> dict[str, str]:
    v: dict[str, str] = {}
    lock = JS / "package-lock.json"
    if lock.exists():
        pk = json.loads(lock.read_text()).get("packages", {})
        for name in ("dcmjs", "@cornerstonejs/core", "@cornerstonejs/adapters", "@cornerstonejs/tools",
                     "esbuild", "playwright-core"):
            if f"node_modules/{name}" in pk:
                v[name] = pk[f"node_modules/{name}"]["version"]
    for cmd, key in ((["node", "--version"], "node"), (["/usr/bin/chromium", "--version"], "chromium"),
                     (["/usr/sbin/Orthanc", "--version"], "Orthanc")):
        try:
            v[key] = run(cmd, timeout=30).stdout.strip().splitlines()[0].replace("/usr/sbin/Orthanc", "").strip()
        except Exception:
            pass
    try:
        v["orthanc-dicomweb"] = run(["dpkg-query", "-W", "-f", "${Version}", "orthanc-dicomweb"]).stdout.strip()
    except Exception:
        pass
    return v


def render(rows: dict[Compression, dict[str, Cell]], sizes: dict[Compression, int], timings: dict,
           vers: dict[str, str], shape: tuple[int, int, int]) -> str:
    readers: list[str] = []
    for cells in rows.values():
        for k in cells:
            if k not in readers:
                readers.append(k)
    lines = [BEGIN, "",
             f"Measured by `interop/run_interop.py` on {time.strftime('%Y-%m-%d')} ({platform.machine()}). "
             f"Data: synthetic phantom {shape[2]}x{shape[1]}x{shape[0]} (i x j x k), 5 segments (one with "
             "label value 300), empty slices omitted. **ok** = the reader gave back the exact "
             "segment-number array (node / browser) or the exact bytes (WADO-RS retrieve).", "",
             "| transfer syntax | bytes | " + " | ".join(readers) + " |",
             "|---|---|" + "---|" * len(readers)]
    for comp, cells in rows.items():
        default = " (default)" if comp is DEFAULT_COMPRESSION else ""
        lines.append(f"| {comp.cli_name}{default} | {sizes[comp]:,} | "
                     + " | ".join(str(cells.get(r, Cell(None, "not run"))) for r in readers) + " |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".", "",
              "Timings (this run, 2-core machine): "
              + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in timings.items())
              + ".", "", END]
    return "\n".join(lines)


def write_doc(block: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Interop: viewers and PACS\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-browser", action="store_true", help="no chromium check")
    ap.add_argument("--skip-node", action="store_true", help="no dcmjs / Cornerstone3D node checks")
    ap.add_argument("--skip-ohif", action="store_true", help="no OHIF viewer check")
    ap.add_argument("--skip-orthanc", action="store_true", help="no Orthanc (and so no browser) check")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    ap.add_argument("--no-write", action="store_true", help=f"print the table, do not update {DOC.name}")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="abdicom-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, Any] = {}
    srv = None
    try:
        t0 = time.perf_counter()
        data = make_data(work / "data")
        timings["data_s"] = time.perf_counter() - t0
        print(f"data in {timings['data_s']:.1f} s: {work / 'data'}", flush=True)
        rows: dict[Compression, dict[str, Cell]] = {c: {} for c in data["segs"]}
        t0 = time.perf_counter()
        if not args.skip_node:
            for comp, cells in node_checks(data).items():
                rows[comp].update(cells)
            timings["node_checks_s"] = time.perf_counter() - t0
        if not args.skip_orthanc:
            cells_o, srv, t_o = orthanc_checks(data, work)
            timings.update(t_o)
            for comp, cells in cells_o.items():
                rows[comp].update(cells)
            cells_c, t_c = cstore_checks(data, work)
            timings.update(t_c)
            for comp, cells in cells_c.items():
                rows[comp].update(cells)
            if not args.skip_browser:
                cells_b, t_b = browser_checks(data, srv, work, SCREENSHOT)
                timings.update(t_b)
                for comp, cells in cells_b.items():
                    rows[comp].update(cells)
                if not args.skip_ohif:
                    cells_v, t_v = ohif_checks(data, srv, work, OHIF_SCREENSHOT)
                    timings.update(t_v)
                    for comp, cells in cells_v.items():
                        rows[comp].update(cells)
        sizes = {c: r.size_bytes for c, r in data["segs"].items()}
        block = render(rows, sizes, timings, versions(), data["grid"].shape_kji)
        print(block)
        if not args.no_write:
            write_doc(block)
            print(f"updated {DOC}")
        bad = [(c.cli_name, k) for c, cells in rows.items() for k, v in cells.items() if v.ok is False]
        print(f"{len(bad)} failing cells: {bad}" if bad else "all cells ok or n/a")
        return 0
    finally:
        if srv is not None:
            srv.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
