#!/usr/bin/env python3
"""`make bench`: measure our SEG export/decode against dcmqi and plain highdicom.

Every contender runs in its own process, on the same generated inputs, in this one run:
wall time of the whole process and its peak RSS (wait4 rusage), plus, for the Python
contenders, the in-process time of the conversion itself (median of warm repeats, and the
first "cold" call). Writes ``benchmarks/results.json`` and the generated part of
``docs/benchmarks.md``, and prints each target with its ratio and whether it is met.

    python benchmarks/run_all.py [--work DIR] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))

import workloads as W  # noqa: E402

PY = sys.executable
BEGIN, END = "<!-- BEGIN GENERATED RESULTS -->", "<!-- END GENERATED RESULTS -->"
TRIALS = 100


def tool(name: str) -> str | None:
    from abdicom_testkit.peers import find_tool  # venv bin first, then PATH

    return find_tool(name)


# ------------------------------------------------------------------ measuring
#: GNU time measures the peak RSS of the command itself. ``ru_maxrss`` of a child read with
#: wait4 keeps the high-water mark of the forked parent (this benchmark process, hundreds of
#: MB after building the workloads) across exec, so every command would report at least that.
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (bytes) of that process, exit code, stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        rss = usage.ru_maxrss * 1024
        if GNU_TIME:
            text = rss_file.read().strip().splitlines()
            try:
                rss = int(text[-1]) * 1024
            except (IndexError, ValueError):
                pass
    # CPU (user + sys) of the command and everything it waited for (GNU time's child
    # included): what the 2 shared cores' load distorts least
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "rss_bytes": rss, "rc": p.returncode, "stdout": stdout,
            "stderr": stderr[-2000:]}


def repeat(cmd_for, n: int, prep=None, env: dict | None = None) -> dict:
    """Run ``cmd_for(i)`` n times (``prep(i)`` before each, untimed); medians."""
    walls, cpus, rss, last = [], [], [], None
    for i in range(n):
        if prep:
            prep(i)
        last = run(cmd_for(i), env=env)
        if last["rc"] != 0:
            return {"ok": False, "error": (last["stderr"] or last["stdout"]).strip().splitlines()[-1:] or ["?"],
                    "repeats": i + 1}
        walls.append(last["wall_s"])
        cpus.append(last["cpu_s"])
        rss.append(last["rss_bytes"])
    return {"ok": True, "repeats": n, "wall_s": statistics.median(walls), "wall_s_all": walls,
            "cpu_s": statistics.median(cpus), "cpu_s_all": cpus,
            "rss_bytes": int(statistics.median(rss)), "rss_bytes_max": max(rss), "stdout": last["stdout"]}


def worker(args: list[str], env: dict | None = None) -> dict:
    r = run([PY, str(HERE / "worker.py"), *args], env=env)
    if r["rc"] != 0:
        return {"ok": False, "error": r["stderr"].strip().splitlines()[-1:]}
    d = json.loads(r["stdout"].strip().splitlines()[-1])
    d.update(ok=True, process_wall_s=r["wall_s"], rss_bytes=r["rss_bytes"])
    return d


def size(path: Path) -> int | None:
    return path.stat().st_size if path.exists() else None


# ------------------------------------------------------------------ contenders
def dcmqi_encode_cmd(wl: W.Workload, label: Path, out: Path, kind: str) -> list[str]:
    cmd = [tool("itkimage2segimage"), "--inputImageList", str(label), "--inputDICOMDirectory", str(wl.ref_dir),
           "--outputDICOM", str(out), "--inputMetadata", str(wl.dcmqi_json)]
    if kind == "binary":
        return cmd + ["--segmentationType", "binary"]
    return cmd + ["--segmentationType", "labelmap", "--compress", kind]


def measure_workload(wl: W.Workload, out: Path, reps: int, warm: int, syntaxes: list[str], log,
                     slow_reps: int | None = None) -> list[dict]:
    """All contenders on one workload; returns table rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    abd = tool("abdicom")
    slow_reps = reps if slow_reps is None else slow_reps  # plain highdicom and dcmqi binary

    def row(contender, kind, res, path=None, inproc=None, note=""):
        r = {"workload": wl.name, "contender": contender, "kind": kind, "ok": res.get("ok", False),
             "bytes": size(path) if path else res.get("bytes"), "wall_s": res.get("wall_s"),
             "wall_s_all": res.get("wall_s_all"), "cpu_s": res.get("cpu_s"), "rss_bytes": res.get("rss_bytes"),
             "repeats": res.get("repeats"), "note": note}
        if not r["ok"]:
            r["note"] = (note + " FAILED: " + " ".join(res.get("error", []))).strip()
        if inproc:
            r["inproc_warm_s"] = inproc.get("warm_median_s")
            r["inproc_cold_s"] = inproc.get("cold_s")
            r["inproc_repeats"] = len(inproc.get("warm_s", []))
            if not inproc.get("ok"):
                r["note"] += " in-process worker failed: " + " ".join(inproc.get("error", []))
        rows.append(r)
        log(f"  {wl.name:8s} {contender:34s} {r['bytes'] or 0:>12,} B  wall {r['wall_s'] or 0:7.3f} s  "
            f"rss {(r['rss_bytes'] or 0) / 2**20:7.1f} MB" +
            (f"  in-process {r.get('inproc_warm_s') or 0:.4f} s (cold {r.get('inproc_cold_s') or 0:.3f})"
             if inproc else "") + (f"  [{r['note']}]" if r["note"] else ""))
        return r

    # ours: export per transfer syntax (CLI = whole process; worker = in-process)
    for ts in syntaxes:
        dst = out / f"ours_{ts}.dcm"
        res = repeat(lambda i: [abd, "export", str(wl.seg_nrrd), "--reference", str(wl.ref_dir), "--out", str(dst),
                                "--compression", ts, "--force", "--json"], reps)
        inproc = worker(["ours-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / f"w_{ts}.dcm"), ts, str(warm)])
        row(f"ours export {ts}" + (" (default)" if ts == "deflate" else ""), "export", res, dst, inproc,
            "UIDs from the voxels (SHA-256), as abdicom export")
        if ts == "deflate":
            trial = worker(["ours-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / "w_trial.dcm"), ts,
                            str(warm), "trial"])
            row("ours export deflate, a migration trial", "export", {"ok": trial.get("ok"), "bytes": trial.get("bytes"),
                "error": trial.get("error", [])}, None, trial, "UIDs given, as abdicom migrate; in-process only")
    default = out / "ours_deflate.dcm"
    # ours: decode (CLI writes a .seg.nrrd, like segimage2itkimage writes NRRD)
    res = repeat(lambda i: [abd, "decode", str(default), "--reference", str(wl.ref_dir), "--out",
                            str(out / "ours_decoded.seg.nrrd"), "--force", "--json"], reps)
    inproc = worker(["ours-decode", str(default), str(wl.ref_dir), str(warm)])
    row("ours decode (default file)", "decode", res, None, inproc, "CLI writes .seg.nrrd")
    # the same two commands with the standard zlib only (a plain pip install, Slicer):
    # ABDICOM_ZLIB=stdlib makes the writer and reader ignore an installed zlib-ng
    stdlib = dict(os.environ, ABDICOM_ZLIB="stdlib")
    dst = out / "ours_deflate_stdlib.dcm"
    res = repeat(lambda i: [abd, "export", str(wl.seg_nrrd), "--reference", str(wl.ref_dir), "--out", str(dst),
                            "--force", "--json"], reps, env=stdlib)
    row("ours export deflate, standard zlib", "export", res, dst, None, "ABDICOM_ZLIB=stdlib (no zlib-ng)")
    res = repeat(lambda i: [abd, "decode", str(dst), "--reference", str(wl.ref_dir), "--out",
                            str(out / "ours_decoded_stdlib.seg.nrrd"), "--force", "--json"], reps, env=stdlib)
    row("ours decode, standard zlib", "decode", res, None, None, "ABDICOM_ZLIB=stdlib (no zlib-ng)")
    # dcmqi
    if tool("itkimage2segimage"):
        for kind in ("none", "deflate", "binary"):
            dst = out / f"dcmqi_{kind}.dcm"
            res = repeat(lambda i: dcmqi_encode_cmd(wl, wl.label_nrrd, dst, kind), reps if kind != "binary" else
                         slow_reps)
            name = f"dcmqi labelmap --compress {kind}" if kind != "binary" else "dcmqi binary"
            row(name, "export", res, dst)
        dq = out / "dcmqi_decoded"

        def prep(i):
            shutil.rmtree(dq, ignore_errors=True)
            dq.mkdir()

        res = repeat(lambda i: [tool("segimage2itkimage"), "--inputDICOM", str(default), "--outputDirectory", str(dq),
                                "--mergeSegments", "-t", "nrrd"], reps, prep)
        row("dcmqi segimage2itkimage (default file)", "decode", res)
    # plain highdicom
    hd_out = out / "hd_default.dcm"
    res = repeat(lambda i: [PY, str(HERE / "worker.py"), "hd-export", str(wl.seg_nrrd), str(wl.ref_dir),
                            str(hd_out), "0"], slow_reps)
    inproc = worker(["hd-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / "hd_w.dcm"),
                     str(warm if slow_reps >= reps else 1)])
    row("highdicom LABELMAP defaults (explicit)", "export", res, hd_out, inproc, "Segmentation + save_as")
    res = repeat(lambda i: [PY, str(HERE / "worker.py"), "hd-decode", str(default), "0"], slow_reps)
    inproc = worker(["hd-decode", str(default), str(warm if slow_reps >= reps else 1)])
    row("highdicom segread+get_volume (default file)", "decode", res, None, inproc)
    rows.append({"workload": wl.name, "contender": ".seg.nrrd (slicerio, gzip)", "kind": "size", "ok": True,
                 "bytes": size(wl.seg_nrrd), "note": "input file; size only"})
    log(f"  {wl.name:8s} .seg.nrrd (slicerio, gzip)            {size(wl.seg_nrrd):>12,} B")
    return rows


# ------------------------------------------------------------------ W3: 100 trials
def build_w3(work: Path, w1: W.Workload, log, trials: int = 100) -> Path:
    """A legacy optimization run: results.json, config.yaml, ``trials`` trial .seg.nrrd (+
    label NRRDs for dcmqi). Trials are W1-size with differing segmentations and parameters."""
    TRIALS = trials  # noqa: N806
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    root = work / ("W3" if trials == 100 else f"W3_{trials}")
    legacy = root / "legacy"
    if (root / ".complete").exists():
        return root
    log(f"  generating W3 ({TRIALS} trials) ...")
    shutil.rmtree(root, ignore_errors=True)
    (legacy / "segmentations").mkdir(parents=True)
    (root / "labels").mkdir()
    grid = ReferenceSeries.from_folder(w1.ref_dir).grid
    trials = []
    for n in range(TRIALS):
        params = {"threshold": round(0.1 + 0.008 * n, 4), "radius_mm": 1 + n % 7, "iterations": 10 + n}
        labels = W.trial_labels(w1.shape, w1.n_segments, n)
        segs = W.segments_for(w1.n_segments, params=params)
        write_seg_nrrd(LabelMap(labels, grid, segs), legacy / "segmentations" / f"trial_{n:03d}.seg.nrrd")
        W.write_label_nrrd(labels, grid, root / "labels" / f"trial_{n:03d}.nrrd")
        trials.append({"trial_number": n, "params": params, "value": round(0.5 + 0.004 * n, 4), "pruned": False})
    results = {"config_name": "bench", "n_trials": TRIALS, "study_name": "bench", "direction": "maximize",
               "trials": trials, "best_trial": TRIALS - 1}
    (legacy / "results.json").write_text(json.dumps(results, indent=1))
    (legacy / "config.yaml").write_text("name: bench\nsample_data: benchW1\nalgorithm: watershed\n")
    (root / ".complete").write_text("ok\n")
    return root


def measure_w3(work: Path, w1: W.Workload, reps: int, log, trials: int = 100, batch: bool = False) -> dict:
    TRIALS = trials  # noqa: N806
    root = build_w3(work, w1, log, trials)
    out = {"trials": TRIALS, "repeats": reps}
    abd = tool("abdicom")
    runs = root / "runs"

    def prep(i):
        shutil.rmtree(runs, ignore_errors=True)
        runs.mkdir()
        shutil.copytree(root / "legacy", runs / "bench")

    res = repeat(lambda i: [abd, "migrate", str(runs / "bench"), "--volume", str(w1.ref_dir), "--quiet", "--json"],
                 reps, prep)
    migrated = None
    if res.get("ok"):
        try:
            summary = json.loads(res["stdout"].strip().splitlines()[-1])
            migrated = len(list((runs / "bench" / "dicom" / "segmentations").glob("trial_*.dcm")))
            out["migrate_summary_exit"] = summary.get("exit_code")
        except Exception as exc:  # noqa: BLE001
            res["note"] = f"could not read summary: {exc}"
    out["ours"] = {k: v for k, v in res.items() if k != "stdout"}
    out["ours"]["command"] = (f"abdicom migrate RUN --volume W1/ref (default --jobs auto; volume series + {TRIALS} "
                              "SEGs, each verified)")
    out["ours"]["seg_files"] = migrated
    if migrated is not None:
        out["ours"]["seg_bytes_total"] = sum(p.stat().st_size for p in
                                             (runs / "bench" / "dicom" / "segmentations").glob("trial_*.dcm"))
    log(f"  W3 ({TRIALS} trials) ours migrate: {res.get('wall_s') or 0:.2f} s  cpu {res.get('cpu_s') or 0:.2f} s  rss {(res.get('rss_bytes') or 0) / 2**20:.0f} MB  "
        f"SEGs {migrated}  {'' if res.get('ok') else res.get('error')}")
    # the same serially (--jobs 1, what the default was before --jobs auto): reported next to it
    if batch:
        out["batch"] = measure_batch_export(root, w1, reps, log, TRIALS)
    if (os.cpu_count() or 1) > 1:
        res2 = repeat(lambda i: [abd, "migrate", str(runs / "bench"), "--volume", str(w1.ref_dir), "--quiet",
                                 "--json", "--jobs", "1"], reps, prep)
        out["ours_serial"] = {k: v for k, v in res2.items() if k != "stdout"}
        out["ours_serial"]["command"] = "abdicom migrate RUN --volume W1/ref --jobs 1"
        log(f"  W3 ({TRIALS} trials) ours migrate --jobs 1: {res2.get('wall_s') or 0:.2f} s  "
            f"cpu {res2.get('cpu_s') or 0:.2f} s  rss {(res2.get('rss_bytes') or 0) / 2**20:.0f} MB")
    if tool("itkimage2segimage"):
        totals, cpus, rss = [], [], []
        dq = root / "dcmqi_out"
        for r in range(reps):
            shutil.rmtree(dq, ignore_errors=True)
            dq.mkdir()
            t = cpu = 0.0
            peak = 0
            for n in range(TRIALS):
                rr = run(dcmqi_encode_cmd(w1, root / "labels" / f"trial_{n:03d}.nrrd", dq / f"trial_{n:03d}.dcm",
                                          "deflate"))
                if rr["rc"] != 0:
                    out["dcmqi_error"] = rr["stderr"][-300:]
                    break
                t += rr["wall_s"]
                cpu += rr["cpu_s"]
                peak = max(peak, rr["rss_bytes"])
            totals.append(t)
            cpus.append(cpu)
            rss.append(peak)
        out["dcmqi"] = {"ok": "dcmqi_error" not in out, "wall_s": statistics.median(totals), "wall_s_all": totals,
                        "cpu_s": statistics.median(cpus), "cpu_s_all": cpus,
                        "rss_bytes": int(statistics.median(rss)), "repeats": reps,
                        "seg_bytes_total": sum(p.stat().st_size for p in dq.glob("*.dcm")),
                        "command": "itkimage2segimage --segmentationType labelmap --compress deflate, once per trial"}
        log(f"  W3 dcmqi x{TRIALS}: {out['dcmqi']['wall_s']:.2f} s  cpu {out['dcmqi']['cpu_s']:.2f} s")
    return out


def measure_batch_export(root: Path, w1: W.Workload, reps: int, log, trials: int) -> dict:
    """``abdicom export SEG... --out-dir`` (one process for every trial) of the run's trial
    .seg.nrrd files; compared with dcmqi once per trial (the W3 dcmqi loop) by the caller."""
    abd = tool("abdicom")
    helptext = run([abd, "export", "--help"])["stdout"]
    if "--out-dir" not in helptext:
        log("  batch export: `abdicom export --out-dir` not available in this build")
        return {"ok": False, "error": ["abdicom export has no --out-dir"]}
    segs = sorted(str(p) for p in (root / "legacy" / "segmentations").glob("trial_*.seg.nrrd"))[:trials]
    dst = root / "batch_out"

    def prep(i):
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir()

    res = repeat(lambda i: [abd, "export", *segs, "--reference", str(w1.ref_dir), "--out-dir", str(dst)],
                 reps, prep)
    res.pop("stdout", None)
    res["command"] = f"abdicom export {len(segs)} x trial.seg.nrrd --reference W1/ref --out-dir OUT"
    log(f"  batch export of {len(segs)} trials: {res.get('wall_s') or 0:.2f} s (CPU {res.get('cpu_s') or 0:.2f} s)  "
        f"{'' if res.get('ok') else res}")
    # the same without zlib-ng (a plain pip install, Slicer)
    std = repeat(lambda i: [abd, "export", *segs, "--reference", str(w1.ref_dir), "--out-dir", str(dst)],
                 reps, prep, env=dict(os.environ, ABDICOM_ZLIB="stdlib"))
    std.pop("stdout", None)
    res["stdlib"] = std
    log(f"  batch export, standard zlib: {std.get('wall_s') or 0:.2f} s (CPU {std.get('cpu_s') or 0:.2f} s)")
    return res


# ------------------------------------------------------------------ scaling
def measure_scaling(work: Path, w1: W.Workload, reps: int, warm: int, log) -> list[dict]:
    rows = []
    cases = [("voxels", f, (int(100 * f), 256, 256), 10) for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    cases += [("segments", n, (100, 256, 256), n) for n in (1, 10, 50, 117, 255)]
    for axis, value, shape, nseg in cases:
        name = f"S_{axis}_{value}"
        if axis == "voxels" and value == 1.0 or axis == "segments" and value == 10:
            wl = w1
        else:
            wl = W.build(work, name, shape, nseg, reference_from=w1 if shape == w1.shape else None)
        out = work / "out" / name
        out.mkdir(parents=True, exist_ok=True)
        exp = worker(["ours-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / "s.dcm"), "deflate", str(warm)])
        dec = worker(["ours-decode", str(out / "s.dcm"), str(wl.ref_dir), str(warm)]) if exp.get("ok") else {}
        std, explicit = {}, {}
        if axis == "segments" and value in (10, 255):  # the flat-in-segments target without zlib-ng
            std = worker(["ours-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / "s_std.dcm"), "deflate",
                          str(warm)], env=dict(os.environ, ABDICOM_ZLIB="stdlib"))
            # and without deflate (whose cost depends on the data, not on the segment count):
            # the writer's own per-segment cost
            explicit = worker(["ours-export", str(wl.seg_nrrd), str(wl.ref_dir), str(out / "s_exp.dcm"),
                               "explicit", str(warm)])
        dq = {}
        if tool("itkimage2segimage"):
            dq = repeat(lambda i: dcmqi_encode_cmd(wl, wl.label_nrrd, out / "dq.dcm", "deflate"), reps)
        r = {"axis": axis, "value": value, "shape": list(shape), "voxels": int(np.prod(shape)), "segments": nseg,
             "export_warm_s": exp.get("warm_median_s"), "export_cold_s": exp.get("cold_s"),
             "export_warm_cpu_s": exp.get("warm_cpu_median_s"), "export_warm_stdlib_s": std.get("warm_median_s"),
             "export_warm_cpu_stdlib_s": std.get("warm_cpu_median_s"),
             "export_warm_explicit_s": explicit.get("warm_median_s"),
             "decode_warm_s": dec.get("warm_median_s"), "bytes": exp.get("bytes"),
             "export_rss_bytes": exp.get("rss_bytes"),
             "dcmqi_wall_s": dq.get("wall_s"), "dcmqi_bytes": size(out / "dq.dcm")}
        rows.append(r)
        log(f"  scaling {axis:8s} {value:>5}: export {r['export_warm_s'] or 0:.4f} s  decode "
            f"{r['decode_warm_s'] or 0:.4f} s  {r['bytes'] or 0:,} B  dcmqi {r['dcmqi_wall_s'] or 0:.2f} s")
    return rows


# ------------------------------------------------------------------ startup
def measure_info(seg: Path, reps: int) -> dict:
    # the header summary (--no-voxels: no pixel decoding) is the start-up target; the default
    # `info` also decodes the frames to count voxels per segment (issue 16), timed beside it
    res = repeat(lambda i: [tool("abdicom"), "info", "--no-voxels", str(seg)], reps)
    res.pop("stdout", None)
    full = repeat(lambda i: [tool("abdicom"), "info", str(seg)], reps)
    res["with_voxels_wall_s"] = full.get("wall_s")
    imp = run([PY, "-X", "importtime", "-m", "AdaptiveBrushDicomLib", "info", "--no-voxels", str(seg)])
    top = []
    for line in imp["stderr"].splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = [p.strip() for p in line[len("import time:"):].split("|")]
            try:
                top.append((int(parts[1]), parts[2].strip()))
            except ValueError:
                pass
    top = sorted(top, reverse=True)[:8]
    res["slowest_imports_us"] = top
    return res


# ------------------------------------------------------------------ targets
def targets(rows, w3, scaling, info, wls) -> list[dict]:
    def find(wl, contender):
        for r in rows:
            if r["workload"] == wl and r["contender"] == contender:
                return r
        return {}

    t = []

    def add(name, value, limit, unit, met, detail):
        if not met and value == value and limit:  # not NaN: say by how much it misses
            miss = f"misses by {value - limit:.3g}{'x' if unit == 'x' else ' ' + unit} ({(value / limit - 1) * 100:.0f} %)"
            detail = f"{detail}; {miss}" if detail else miss
        t.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": bool(met), "detail": detail})

    def cpu_vs(ours, theirs, who="dcmqi"):
        """'; CPU ours x s vs dcmqi y s (r x)' when both have CPU times."""
        a, b = (ours or {}).get("cpu_s"), (theirs or {}).get("cpu_s")
        return f"; CPU {a:.2f} s vs {who} {b:.2f} s ({a / b:.2f}x)" if a and b else ""

    for name, run_ in (("W3: 100-trial migrate vs dcmqi x100", w3 or {}),
                       ("20-trial run: migrate vs dcmqi x20", (w3 or {}).get("w20") or {})):
        ours, dq = run_.get("ours", {}), run_.get("dcmqi", {})
        if ours.get("ok") and dq.get("ok"):
            limit = 0.15 if run_.get("trials") == 100 else 0.5
            ratio = ours["wall_s"] / dq["wall_s"]
            extra = cpu_vs(ours, dq)
            serial = run_.get("ours_serial", {})
            if serial.get("ok"):
                extra += f"; --jobs 1: {serial['wall_s'] / dq['wall_s']:.3g}x"
            add(name, ratio, limit, "x", ratio <= limit,
                f"default --jobs auto, {ours['wall_s']:.1f} s vs {dq['wall_s']:.1f} s{extra}")
    w20 = (w3 or {}).get("w20") or {}
    batch = w20.get("batch") or {}
    if batch.get("ok") and w20.get("dcmqi", {}).get("ok"):
        ratio = batch["wall_s"] / w20["dcmqi"]["wall_s"]
        add("batch export of 20 W1 trials vs dcmqi x20", ratio, 0.3, "x", ratio <= 0.3,
            f"{batch['wall_s']:.2f} s vs {w20['dcmqi']['wall_s']:.2f} s" + cpu_vs(batch, w20["dcmqi"]))
        std = batch.get("stdlib") or {}
        if std.get("ok"):
            ratio = std["wall_s"] / w20["dcmqi"]["wall_s"]
            add("batch export of 20 W1 trials vs dcmqi x20, standard zlib", ratio, 0.3, "x", ratio <= 0.3,
                f"{std['wall_s']:.2f} s vs {w20['dcmqi']['wall_s']:.2f} s" + cpu_vs(std, w20["dcmqi"]))
    elif w20:
        add("batch export of 20 W1 trials vs dcmqi x20", float("nan"), 0.3, "x", False,
            "not measured: " + " ".join(batch.get("error", ["no result"])))
    for label, ours_name, dq_name, limit in (
            ("W1 whole-process `abdicom export`", "ours export deflate (default)",
             "dcmqi labelmap --compress deflate", 1.0),
            ("W1 whole-process `abdicom decode`", "ours decode (default file)",
             "dcmqi segimage2itkimage (default file)", 0.5),
            ("W1 whole-process `abdicom export`, standard zlib", "ours export deflate, standard zlib",
             "dcmqi labelmap --compress deflate", 1.0),
            ("W1 whole-process `abdicom decode`, standard zlib", "ours decode, standard zlib",
             "dcmqi segimage2itkimage (default file)", 0.5)):
        ours, dq = find("W1", ours_name), find("W1", dq_name)
        if ours.get("wall_s"):
            vs = f"; dcmqi {dq['wall_s']:.2f} s, ours/dcmqi {ours['wall_s'] / dq['wall_s']:.2f}x" if dq.get("wall_s") \
                else ""
            vs += cpu_vs(ours, dq)
            add(label, ours["wall_s"], limit, "s", ours["wall_s"] <= limit,
                f"median of {ours.get('repeats')}{vs}")
    exp = find("W1", "ours export deflate, a migration trial")
    cli_like = find("W1", "ours export deflate (default)")
    if exp.get("inproc_warm_s"):
        add("W1 in-process export of one trial (warm)", exp["inproc_warm_s"] * 1000, 50, "ms",
            exp["inproc_warm_s"] <= 0.05,
            f"cold (first trial, builds the template) {exp['inproc_cold_s'] * 1000:.0f} ms; with UIDs derived "
            f"from the voxels as abdicom export does: {(cli_like.get('inproc_warm_s') or 0) * 1000:.1f} ms")
    dec = find("W1", "ours decode (default file)")
    if dec.get("inproc_warm_s"):
        add("W1 in-process decode", dec["inproc_warm_s"] * 1000, 30, "ms", dec["inproc_warm_s"] <= 0.03, "")
    for wl in ("W1", "W2"):
        for contender, suffix in (("ours export deflate (default)", ""),
                                  ("ours export deflate, standard zlib", ", standard zlib")):
            ours, dq = find(wl, contender), find(wl, "dcmqi labelmap --compress deflate")
            if ours.get("bytes") and dq.get("bytes"):
                ratio = ours["bytes"] / dq["bytes"]
                add(f"{wl} default file size vs dcmqi labelmap+deflate{suffix}", ratio, 1.0, "x", ratio <= 1.0,
                    f"{ours['bytes']:,} B vs {dq['bytes']:,} B")
    for contender, suffix in (("ours export deflate (default)", ""), ("ours export deflate, standard zlib",
                                                                      ", standard zlib")):
        w2 = find("W2", contender)
        if w2.get("rss_bytes") and "W2" in wls:
            lab = wls["W2"].voxels  # uint8 labelmap
            ratio = w2["rss_bytes"] / lab
            add(f"W2 peak RSS of `abdicom export` vs labelmap bytes{suffix}", ratio, 2.5, "x", ratio <= 2.5,
                f"{w2['rss_bytes'] / 2**20:.0f} MB vs labelmap {lab / 2**20:.0f} MB")
    vox = [s for s in scaling if s["axis"] == "voxels" and s["export_warm_s"]]
    if len(vox) >= 2:
        a, b = vox[0], vox[-1]
        per = (b["export_warm_s"] / b["voxels"]) / (a["export_warm_s"] / a["voxels"])
        add("export cost per voxel, 400% vs 25% (linear = 1)", per, 1.5, "x", per <= 1.5,
            f"{a['export_warm_s'] * 1000:.1f} ms @ {a['voxels']:,} vs {b['export_warm_s'] * 1000:.1f} ms @ "
            f"{b['voxels']:,} voxels")
    seg = {s["value"]: s for s in scaling if s["axis"] == "segments" and s["export_warm_s"]}
    if 10 in seg and 255 in seg:
        a, b = seg[10], seg[255]
        ratio = b["export_warm_s"] / a["export_warm_s"]
        cpu = (f"; CPU {a['export_warm_cpu_s'] * 1000:.1f} ms vs {b['export_warm_cpu_s'] * 1000:.1f} ms "
               f"({b['export_warm_cpu_s'] / a['export_warm_cpu_s']:.2f}x)") if a.get("export_warm_cpu_s") and \
            b.get("export_warm_cpu_s") else ""
        if a.get("export_warm_explicit_s") and b.get("export_warm_explicit_s"):
            cpu += (f"; Explicit VR LE (no deflate, whose CPU grows with the data's entropy, not with the "
                    f"segment count): {b['export_warm_explicit_s'] / a['export_warm_explicit_s']:.2f}x")
        add("export time 255 vs 10 segments (flat = 1)", ratio, 2.0, "x", ratio <= 2.0,
            f"{a['export_warm_s'] * 1000:.1f} ms vs {b['export_warm_s'] * 1000:.1f} ms{cpu}")
        if a.get("export_warm_stdlib_s") and b.get("export_warm_stdlib_s"):
            ratio = b["export_warm_stdlib_s"] / a["export_warm_stdlib_s"]
            add("export time 255 vs 10 segments, standard zlib", ratio, 2.0, "x", ratio <= 2.0,
                f"{a['export_warm_stdlib_s'] * 1000:.1f} ms vs {b['export_warm_stdlib_s'] * 1000:.1f} ms")
    if info.get("ok"):
        add("`abdicom info --no-voxels` whole process", info["wall_s"], 0.3, "s", info["wall_s"] <= 0.3,
            f"with voxel counts (default `info`): {info.get('with_voxels_wall_s') or 0:.2f} s")
    return t


# ------------------------------------------------------------------ report
def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    v = {"python": platform.python_version()}
    for pkg in ("numpy", "pydicom", "highdicom", "dcmqi", "SimpleITK", "slicerio", "zlib-ng"):
        try:
            v[pkg] = version(pkg)
        except PackageNotFoundError:
            v[pkg] = None
    try:
        from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast

        v["deflate_backend"] = seg_fast.DEFLATE_BACKEND
        v["deflate_level"] = seg_fast.DEFLATE_LEVEL
        v["deflate_threads"] = seg_fast.DEFLATE_THREADS
    except Exception:  # noqa: BLE001
        pass
    return v


def fmt_bytes(b):
    return "" if b is None else f"{b:,}"


def fmt_s(s, ms=False):
    if s is None:
        return ""
    return f"{s * 1000:.1f} ms" if ms else f"{s:.3f} s"


def render(res: dict) -> str:
    m = res["meta"]
    L = [BEGIN, "",
         f"Run of {m['date']} on {m['cpu_count']} CPUs ({m['platform']}); load average at start "
         f"{m['loadavg_start']}, at end {m['loadavg_end']}; total {m['total_s']:.0f} s. Versions: "
         + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "."
         + (f" Package bytecode: {m['bytecode']}." if m.get("bytecode") else ""), ""]
    L += ["### Targets", "", "| target | measured | limit | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        unit = t["unit"]
        val = f"{t['value']:.3g} {unit}" if unit != "x" else f"{t['value']:.3g}x"
        lim = f"{t['limit']} {unit}" if unit != "x" else f"{t['limit']}x"
        detail = f" ({t['detail']})" if t["detail"] else ""
        L.append(f"| {t['target']} | {val}{detail} | <= {lim} | {'**yes**' if t['met'] else '**no**'} |")
    L += ["", "### Contenders per workload", "",
          "wall = whole process (start-up, imports, reading inputs, writing outputs), median of the repeats; "
          "RSS = peak resident set of that process; in-process = the conversion call alone, median of warm "
          "repeats in one process (cold = the first call of the process).", "",
          "| workload | contender | bytes | wall | peak RSS | in-process (warm) | cold | repeats | note |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rss = "" if not r.get("rss_bytes") else f"{r['rss_bytes'] / 2**20:.0f} MB"
        L.append(f"| {r['workload']} | {r['contender']} | {fmt_bytes(r.get('bytes'))} | {fmt_s(r.get('wall_s'))} | "
                 f"{rss} | {fmt_s(r.get('inproc_warm_s'), True)} | {fmt_s(r.get('inproc_cold_s'), True)} | "
                 f"{r.get('repeats') or ''}{'/' + str(r['inproc_repeats']) if r.get('inproc_repeats') else ''} | "
                 f"{r.get('note', '')} |")
    w3 = res["w3"]
    L += ["", f"### W3: {w3.get('trials')} trials of W1 size (and the 20-trial run)", "",
          "| trials | contender | wall (total) | CPU (user+sys) | peak RSS | SEG bytes (all trials) | repeats |",
          "|---|---|---|---|---|---|---|"]
    for run_, k in [(r, k) for r in (w3, w3.get("w20") or {}) for k in ("ours", "ours_serial", "ours_jobs", "dcmqi")]:
        d = run_.get(k)
        if d:
            L.append(f"| {run_.get('trials')} | {d.get('command')} | {fmt_s(d.get('wall_s'))} | {fmt_s(d.get('cpu_s'))} | "
                     f"{(d.get('rss_bytes') or 0) / 2**20:.0f} MB | {fmt_bytes(d.get('seg_bytes_total'))} | "
                     f"{d.get('repeats')} |" + ("" if d.get("ok") else f" FAILED {d.get('error')}"))
    L += ["", "### Scaling (ours in-process, Deflated default; dcmqi labelmap+deflate whole process)", "",
          "| axis | value | shape (k,j,i) | segments | export warm | export cold | decode warm | bytes | "
          "dcmqi wall | dcmqi bytes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in res["scaling"]:
        L.append(f"| {s['axis']} | {s['value']} | {tuple(s['shape'])} | {s['segments']} | "
                 f"{fmt_s(s['export_warm_s'], True)} | {fmt_s(s['export_cold_s'], True)} | "
                 f"{fmt_s(s['decode_warm_s'], True)} | {fmt_bytes(s['bytes'])} | {fmt_s(s['dcmqi_wall_s'])} | "
                 f"{fmt_bytes(s['dcmqi_bytes'])} |")
    info = res["info"]
    L += ["", f"`abdicom info` (whole process, median of {info.get('repeats')}): {fmt_s(info.get('wall_s'))}, "
          f"peak RSS {(info.get('rss_bytes') or 0) / 2**20:.0f} MB. Slowest imports (µs, cumulative): "
          + ", ".join(f"{n} {us:,}" for us, n in info.get("slowest_imports_us", [])) + ".", "", END]
    return "\n".join(L)


def compile_bytecode() -> str:
    """Compile the package's bytecode into its ``__pycache__`` folders, as pip does when it
    installs a wheel (and Slicer's build does for an extension's modules). Without this,
    where PYTHONDONTWRITEBYTECODE is set (this project's shared machines set it), every
    whole-process figure would include compiling our ~100 modules from source on every
    start: ~0.1-0.14 s CPU of an `abdicom decode` measured here, which no user pays."""
    import compileall

    ok = compileall.compile_dir(str(REPO / "AdaptiveBrushDicom" / "AdaptiveBrushDicomLib"), quiet=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return ("compiled" if ok else "compile failed") + (f" (PYTHONDONTWRITEBYTECODE={flag})" if flag else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=os.environ.get("ABDICOM_BENCH_WORK",
                                                     str(Path(tempfile.gettempdir()) / "abdicom-bench")))
    ap.add_argument("--quick", action="store_true", help="W1 only, fewer repeats (a smoke run)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t_start = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}")
    log = lambda s: print(s, flush=True)  # noqa: E731
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_count": os.cpu_count(),
            "platform": f"{platform.machine()} {platform.system()}", "versions": versions(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()], "bytecode": compile_bytecode()}
    log(f"bytecode: {meta['bytecode']}")
    reps = 2 if args.quick else args.reps
    log("generating workloads (cached in the work folder) ...")
    w1 = W.build(work, "W1", (100, 256, 256), 10)
    wls = {"W1": w1}
    if not args.quick:
        wls["W2"] = W.build(work, "W2", (300, 512, 512), 117, ct=True, seed=2)
    rows = []
    log("W1 ...")
    rows += measure_workload(w1, work / "out" / "W1", reps, 5 if not args.quick else 2,
                             ["deflate", "explicit", "rle", "jpegls", "jpeg2000"], log)
    if "W2" in wls:
        log("W2 ...")
        rows += measure_workload(wls["W2"], work / "out" / "W2", 3, 3, ["deflate", "explicit", "rle"], log,
                                 slow_reps=1)
    info = measure_info(work / "out" / "W1" / "ours_deflate.dcm", reps)
    log(f"  abdicom info: {info.get('wall_s') or 0:.3f} s")
    log("scaling ...")
    scaling = measure_scaling(work, w1, 1 if args.quick else 3, 3, log) if not args.quick else []
    log("W3 ...")
    w3 = measure_w3(work, w1, 1 if args.quick else 2, log) if not args.quick else {}
    log("20-trial run (migrate, batch export) ...")
    w3["w20"] = measure_w3(work, w1, 1 if args.quick else 2, log, trials=20, batch=True)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["total_s"] = time.perf_counter() - t_start
    res = {"meta": meta, "workloads": {k: {"shape": list(v.shape), "segments": v.n_segments, "voxels": v.voxels}
                                       for k, v in wls.items()},
           "rows": rows, "w3": w3, "scaling": scaling, "info": info}
    res["targets"] = targets(rows, w3, scaling, info, wls)
    print("\nTargets:")
    for t in res["targets"]:
        print(f"  {'MET ' if t['met'] else 'MISS'}  {t['target']}: {t['value']:.3g} {t['unit']} "
              f"(limit {t['limit']} {t['unit']}) {t['detail']}")
    if not args.no_write:
        (HERE / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        doc = REPO / "docs" / "benchmarks.md"
        text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        block = render(res)
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text += "\n" + block + "\n"
        doc.write_text(text)
        print(f"wrote {HERE / 'results.json'} and {doc}")
    print(f"total {meta['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
