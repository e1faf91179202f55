#!/usr/bin/env python3
"""`make interop`: measure which readers open our SEGs, per transfer syntax, and rewrite
the generated part of docs/interoperability.md.

Readers tried on each file (all must give back the exact segment-number array):
pydicom (pixel_array), highdicom (segread + get_pixels_by_source_instance), dcmqi
(segimage2itkimage), DCMTK (dcmdump parse; dcmconv/dcmdrle/dcmdjpls decode, then pydicom
reads DCMTK's output), and, when `interop/js` is installed (npm), dcmjs and
Cornerstone3D in node (see docs/interop-remote.md for the browser and Orthanc checks).

Also prints the size/time table for the reference workload (256x256x100, 10 segments).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))

from AdaptiveBrushDicomLib.core.align import align_to_grid  # noqa: E402
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression  # noqa: E402
from AdaptiveBrushDicomLib.core.labelmap import LabelMap  # noqa: E402
from abdicom_testkit.peers import dcmdump, dcmqi_decode, find_tool, run_tool  # noqa: E402
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries  # noqa: E402
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg  # noqa: E402
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg  # noqa: E402
from AdaptiveBrushDicomLib.core.segment import Segment  # noqa: E402
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series  # noqa: E402

BEGIN, END = "<!-- BEGIN GENERATED MATRIX -->", "<!-- END GENERATED MATRIX -->"


def blob_labelmap(shape, n_segments, seed=0, empty_slices=()):
    """Deterministic non-overlapping ellipsoid blobs, labels 1..n."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    k, j, i = np.ogrid[:nk, :nj, :ni]
    labels = np.zeros(shape, dtype=np.uint16)
    for v in range(1, n_segments + 1):
        c = rng.uniform(0.2, 0.8, 3) * (nk, nj, ni)
        r = rng.uniform(0.05, 0.15, 3) * (nk, nj, ni) + 1
        inside = ((k - c[0]) / r[0]) ** 2 + ((j - c[1]) / r[1]) ** 2 + ((i - c[2]) / r[2]) ** 2 <= 1
        labels[inside & (labels == 0)] = v
    for s in empty_slices:
        labels[s] = 0
    return labels


def expected_numbers(lm: LabelMap) -> np.ndarray:
    lut = np.zeros(int(lm.array.max()) + 1, dtype=np.int32)
    for n, s in enumerate(lm.segments, start=1):
        lut[s.label] = n
    return lut[lm.array]


def frames_to_volume(frames, ds, ref: ReferenceSeries) -> np.ndarray:
    """Place decoded frames by their plane positions (for peer-decoded pixel data)."""
    vol = np.zeros(ref.grid.shape_kji, dtype=np.int32)
    for f, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        pos = [float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
        k = int(round(ref.grid.lps_to_index(pos)[2]))
        vol[k] = frames[f]
    return vol


def check_pydicom(path, ref, expected):
    import pydicom

    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.reshape((-1, ds.Rows, ds.Columns))
    return np.array_equal(frames_to_volume(arr, ds, ref), expected), ""


def check_highdicom(path, ref, expected):
    import highdicom as hd

    seg = hd.seg.segread(path)
    uids = [(ref.series_instance_uid, ds.SOPInstanceUID) for ds in ref.datasets]
    present = {str(s.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    keep = [k for k, (_, sop) in enumerate(uids) if sop in present]
    px = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[uids[k][1] for k in keep], combine_segments=True, skip_overlap_checks=True
    )
    vol = np.zeros(ref.grid.shape_kji, dtype=np.int32)
    vol[keep] = px
    return np.array_equal(vol, expected), ""


def check_dcmqi(path, ref, expected, tmp):
    out = dcmqi_decode(path, tmp)
    if not out.run.ok or out.array is None:
        reason = [ln for ln in out.run.output.splitlines() if "lossy" in ln.lower() or "error" in ln.lower()]
        return False, (reason[0] if reason else out.run.last_line)[:120].strip()
    return np.array_equal(align_to_grid(out.array, out.grid, ref.grid), expected), ""


def check_dcmtk(path, ref, expected, comp: Compression, tmp):
    import pydicom

    run = dcmdump(path)
    if not run.ok:
        return False, "dcmdump: " + run.last_line[:100]
    decoder = {
        Compression.EXPLICIT: ["dcmconv", "+te"],
        Compression.DEFLATE: ["dcmconv", "+te"],
        Compression.RLE: ["dcmdrle"],
        Compression.JPEGLS: ["dcmdjpls"],
        Compression.JPEG2000: None,
    }[comp]
    if decoder is None:
        return False, "parses; DCMTK (Debian) has no JPEG 2000 decoder"
    tool = find_tool(decoder[0])
    if tool is None:
        return False, f"{decoder[0]} not installed"
    out = Path(tmp) / "dcmtk.dcm"
    run = run_tool([tool, *decoder[1:], str(path), str(out)])
    if not run.ok:
        return False, f"{decoder[0]}: {run.last_line[:100]}"
    ds = pydicom.dcmread(out)
    arr = ds.pixel_array.reshape((-1, ds.Rows, ds.Columns))
    return np.array_equal(frames_to_volume(arr, ds, ref), expected), f"decoded by {decoder[0]}"


def check_js(path, ref, expected, tmp):
    runner = REPO / "interop" / "js" / "check_seg.mjs"
    if not runner.exists() or not (REPO / "interop" / "js" / "node_modules").exists():
        return None, "not installed (npm ci in interop/js)"
    np.save(Path(tmp) / "expected.npy", expected.astype(np.int32))
    run = run_tool(["node", str(runner), str(path), str(ref.folder), str(Path(tmp) / "expected.npy")], timeout=120)
    try:
        return json.loads(run.output.strip().splitlines()[-1]), ""
    except Exception:
        return False, run.last_line[:120]


def measure(out_dir: Path, shape, n_segments, repeats: int = 3):
    rng_img = np.random.default_rng(1).integers(0, 1000, size=shape).astype(np.int16)
    from AdaptiveBrushDicomLib.core.geometry import Grid

    grid = Grid(shape, (0.9375, 0.9375, 1.4), (-120, -120, -70))
    labels = blob_labelmap(shape, n_segments, empty_slices=[0, 1, shape[0] - 1])
    segs = [Segment(label=v, name=f"Structure {v}", color=(20 * v % 256, 80, 200)) for v in range(1, n_segments + 1)]
    create_synthetic_series(rng_img, grid, out_dir / "ref", patient_id="AdaptiveBrush_interop")
    ref = ReferenceSeries.from_folder(out_dir / "ref")
    return LabelMap(labels, grid, segs), ref


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc", default=str(REPO / "docs" / "interoperability.md"))
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    rows, size_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lm, ref = measure(tmp / "small", (20, 64, 64), 5)
        expected = expected_numbers(lm)
        for comp in Compression:
            path = tmp / f"small_{comp.cli_name}.dcm"
            res = write_seg(lm, ref, path, compression=comp)
            ours = np.array_equal(read_seg(path, reference=ref).labelmap.array, lm.array)
            cells = {"ours": (ours, "")}
            for name, fn in (("pydicom", check_pydicom), ("highdicom", check_highdicom)):
                try:
                    cells[name] = fn(path, ref, expected)
                except Exception as exc:  # a reader failing is a result, not a crash
                    cells[name] = (False, f"{type(exc).__name__}: {str(exc)[:80]}")
            cells["dcmqi"] = check_dcmqi(path, ref, expected, tmp / f"dq_{comp.cli_name}")
            (tmp / f"dt_{comp.cli_name}").mkdir()
            cells["DCMTK"] = check_dcmtk(path, ref, expected, comp, tmp / f"dt_{comp.cli_name}")
            (tmp / f"js_{comp.cli_name}").mkdir()
            js = check_js(path, ref, expected, tmp / f"js_{comp.cli_name}")
            if isinstance(js[0], dict):
                for k, v in js[0].items():
                    cells[k] = (bool(v.get("ok")), v.get("note", ""))
            rows.append((comp, res.size_bytes, cells))
            print(comp.cli_name, res.size_bytes, {k: v[0] for k, v in cells.items()})

        big_lm, big_ref = measure(tmp / "big", (100, 256, 256), 10)
        for comp in Compression:
            times_w, times_r = [], []
            for r in range(3):
                path = tmp / f"big_{comp.cli_name}_{r}.dcm"
                t0 = time.perf_counter()
                res = write_seg(big_lm, big_ref, path, compression=comp)
                times_w.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                dec = read_seg(path, reference=big_ref)
                times_r.append(time.perf_counter() - t0)
                assert np.array_equal(dec.labelmap.array, big_lm.array)
            size_rows.append((comp, res.size_bytes, float(np.median(times_w)), float(np.median(times_r))))
            print(comp.cli_name, res.size_bytes, np.median(times_w), np.median(times_r))

    readers = list(rows[0][2].keys())
    lines = [BEGIN, "",
             f"Measured by `make interop` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, "
             f"Python {platform.python_version()}). File: 64x64x20 labelmap, 5 segments, 3 empty slices "
             "(omitted frames). **ok** = the reader decoded the exact segment-number array.", "",
             "| transfer syntax | bytes | " + " | ".join(readers) + " |",
             "|---|---|" + "---|" * len(readers)]
    for comp, size, cells in rows:
        def fmt(c):
            ok, note = c
            if ok is None:
                return "n/a" + (f" ({note})" if note else "")
            return ("**ok**" if ok else "**fails**") + (f" ({note})" if note else "")
        default = " (default)" if comp is DEFAULT_COMPRESSION else ""
        lines.append(f"| {comp.cli_name}{default} | {size:,} | " + " | ".join(fmt(cells[r]) for r in readers) + " |")
    lines += ["", "Reference workload: 256x256x100 labelmap, 10 blob segments, 3 empty slices "
              "(median of 3, in-process, 2-core machine):", "",
              "| transfer syntax | bytes | write ms | read ms |", "|---|---|---|---|"]
    for comp, size, tw, tr in size_rows:
        lines.append(f"| {comp.cli_name} | {size:,} | {tw * 1000:.0f} | {tr * 1000:.0f} |")
    lines += ["", END]
    block = "\n".join(lines)
    print(block)
    if not args.no_write:
        doc = Path(args.doc)
        text = doc.read_text() if doc.exists() else f"# Interoperability\n\n{BEGIN}\n{END}\n"
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text += "\n" + block + "\n"
        doc.write_text(text)
        print(f"updated {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
