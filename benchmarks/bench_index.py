"""Benchmark of the embedded DICOM index (``AdaptiveBrushDicomLib.store.sqlite.index``). Not a test.

What it does
------------
1. Synthesises 10,000 small image instances (100 series x 100 slices of 8x8 CT) by
   serialising one pydicom dataset and patching fixed-width UIDs into its bytes (fast).
2. Imports them into a fresh index and reports instances/s (cold: read + SHA-256 + parse +
   one transaction), re-imports them (idempotent path: everything "unchanged"; quick
   path+size+mtime check, then with ``rehash=True``), and
   imports them again into a second fresh index with ``workers=2`` parsing processes.
3. Builds one real LABELMAP SEG with highdicom and clones it into 100 runs x 100 trials =
   10,000 SEG instances (``StudyDescription`` run_NNN, ``SeriesDescription``
   trial_NNN_watershed, ``SeriesNumber`` = trial). Runs 0-49 reference one volume series
   (5,000 SEGs on one image, the usual optimisation setup), runs 50-99 one volume each.
4. Imports the SEGs (runs 0-49 serially, runs 50-99 with ``workers=2``) and times ``segs_for_series`` (100 and 5,000 results),
   ``trials_for_run`` (100) and ``gold_for_volume``: median of repeated calls, in ms.

Prints the numbers and writes ``benchmarks/index_results.json``. Runs in well under
3 minutes on 2 cores.

Usage::

    .venv/bin/python benchmarks/bench_index.py [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "AdaptiveBrushDicom"))
sys.path.insert(0, str(HERE.parent / "testkit"))

from AdaptiveBrushDicomLib import __version__  # noqa: E402
from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex  # noqa: E402

ROOT = "1.2.826.0.1.3680043.8.498.777"  # fixed prefix; fixed-width counters keep byte lengths


def uid(kind: int, a: int, b: int = 0) -> str:
    """Fixed-width UID (same length for every a, b), so it can be patched into bytes."""
    return f"{ROOT}.{kind}.{10000 + a}.{10000 + b}"  # no leading zeros (invalid in UI)


def write_ct_instances(folder: Path, n_series: int, n_slices: int) -> list[str]:
    """``n_series`` x ``n_slices`` tiny CT files; returns the series UIDs."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(3, 0, 0)
    ds.PatientID, ds.PatientName = "BENCH", "Bench^Mark"
    ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "", "", "20260101", "120000"
    ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName, ds.Manufacturer = "1", "", "", "bench"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uid(1, 0), uid(2, 0), uid(4, 0)
    ds.StudyDescription, ds.SeriesDescription, ds.Modality = "volumes", "CT", "CT"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [1, 1], 1
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel = 16, 16, 15, 1
    ds.PixelRepresentation, ds.PhotometricInterpretation = 0, "MONOCHROME2"
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    template = buf.getvalue()
    sop0, ser0 = uid(3, 0, 0).encode(), uid(2, 0).encode()
    series = []
    for s in range(n_series):
        d = folder / f"series{s:03d}"
        d.mkdir(parents=True)
        ser = uid(2, s).encode()
        base = template.replace(ser0, ser)
        for k in range(n_slices):
            (d / f"{k:03d}.dcm").write_bytes(base.replace(sop0, uid(3, s, k).encode()))
        series.append(ser.decode())
    return series


def write_seg_instances(folder: Path, ref_folder: Path, n_runs: int, n_trials: int) -> tuple[str, str]:
    """100 runs x 100 trials cloned from one highdicom LABELMAP SEG; returns
    (volume series referenced by runs 0-49, a volume referenced by run 50)."""
    import highdicom as hd
    import pydicom
    from highdicom.sr.coding import CodedConcept

    sources = [pydicom.dcmread(p) for p in sorted(ref_folder.glob("*.dcm"))[:4]]
    for k, s in enumerate(sources):
        s.ImagePositionPatient = [0, 0, float(k)]
    lab = np.zeros((4, 8, 8), np.uint8)
    lab[1:3, 2:5, 2:5] = 1
    lab[2, 6, 6] = 2
    lab[3, 0, 0] = 3
    tissue = CodedConcept("85756007", "SCT", "Tissue")
    descs = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=name, segmented_property_category=tissue, segmented_property_type=tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="watershed", version="1", family=CodedConcept("123109", "DCM", "Manual Processing")))
        for i, name in enumerate(("Tumor", "Edema", "Necrosis"))]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=lab, segmentation_type="LABELMAP", segment_descriptions=descs,
        series_instance_uid=uid(5, 0, 0), series_number=1, sop_instance_uid=uid(6, 0, 0), instance_number=1,
        manufacturer="bench", manufacturer_model_name="bench", software_versions="1", device_serial_number="1",
        series_description="trial_000_watershed")
    seg.StudyInstanceUID = uid(7, 0)
    seg.StudyDescription = "run_000"
    import io

    buf = io.BytesIO()
    seg.save_as(buf)
    template = buf.getvalue()
    ref0 = str(sources[0].SeriesInstanceUID).encode()
    hot, cold = uid(2, 0), uid(2, 50)
    for r in range(n_runs):
        d = folder / f"run{r:03d}"
        d.mkdir(parents=True)
        target = hot if r < 50 else uid(2, r)
        base = (template.replace(ref0, target.encode()).replace(uid(7, 0).encode(), uid(7, r).encode())
                .replace(b"run_000", f"run_{r:03d}".encode()))
        for t in range(n_trials):
            data = (base.replace(uid(5, 0, 0).encode(), uid(5, r, t).encode())
                    .replace(uid(6, 0, 0).encode(), uid(6, r, t).encode())
                    .replace(b"trial_000_watershed", f"trial_{t:03d}_watershed".encode()))
            (d / f"trial_{t:03d}.dcm").write_bytes(data)
    return hot, cold


def median_ms(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", help="folder for the synthetic files (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic files and database")
    ap.add_argument("--out", default=str(HERE / "index_results.json"))
    args = ap.parse_args(argv)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_index_"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "version": __version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    t_all = time.perf_counter()
    try:
        t0 = time.perf_counter()
        write_ct_instances(work / "ct", 100, 100)
        results["synthesize_ct_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        hot, cold = write_seg_instances(work / "seg", work / "ct" / "series000", 100, 100)
        results["synthesize_seg_s"] = round(time.perf_counter() - t0, 2)

        db = SqliteDicomIndex(work / "index.sqlite")
        r = db.import_paths([work / "ct"])
        assert r.added == 10_000 and r.ok, r.to_text()
        results["import_ct_instances"] = r.added
        results["import_ct_s"] = round(r.seconds, 2)
        results["import_ct_instances_per_s"] = round(r.added / r.seconds)
        r = db.import_paths([work / "ct"])
        assert r.unchanged == 10_000
        results["reimport_ct_unchanged_instances_per_s"] = round(r.unchanged / r.seconds)
        r = db.import_paths([work / "ct"], rehash=True)
        assert r.unchanged == 10_000
        results["reimport_ct_rehash_instances_per_s"] = round(r.unchanged / r.seconds)
        with SqliteDicomIndex(work / "parallel.sqlite") as db2:
            r = db2.import_paths([work / "ct"], workers=2)
            assert r.added == 10_000 and r.ok, r.to_text()
            results["import_ct_workers2_s"] = round(r.seconds, 2)
            results["import_ct_workers2_instances_per_s"] = round(r.added / r.seconds)

        runs = sorted((work / "seg").iterdir())
        r = db.import_paths(runs[:50])
        assert r.added == 5_000 and r.ok, r.to_text()
        results["import_seg_serial_instances"] = r.added
        results["import_seg_serial_instances_per_s"] = round(r.added / r.seconds)
        r = db.import_paths(runs[50:], workers=2)
        assert r.added == 5_000 and r.ok, r.to_text()
        results["import_seg_workers2_instances"] = r.added
        results["import_seg_workers2_instances_per_s"] = round(r.added / r.seconds)
        results["seg_file_bytes"] = (work / "seg" / "run000" / "trial_000.dcm").stat().st_size

        ms, segs = median_ms(lambda: db.segs_for_series(cold), 20)
        assert len(segs) == 100 and segs[0].trial_number == 0
        results["segs_for_series_100_ms"] = round(ms, 2)
        ms, segs = median_ms(lambda: db.segs_for_series(hot), 5)
        assert len(segs) == 5000
        results["segs_for_series_5000_ms"] = round(ms, 1)
        ms, trials = median_ms(lambda: db.trials_for_run(uid(7, 7)), 20)
        assert [t.trial_number for t in trials] == list(range(100))
        results["trials_for_run_100_ms"] = round(ms, 2)
        ms, _ = median_ms(lambda: db.gold_for_volume(cold), 20)
        results["gold_for_volume_ms"] = round(ms, 2)
        ms, _ = median_ms(lambda: db.files_for_series(uid(2, 3)), 20)
        results["files_for_series_100_ms"] = round(ms, 2)
        results["db_bytes"] = db.path.stat().st_size + sum(
            p.stat().st_size for p in work.glob("index.sqlite-*") if p.exists())
        t0 = time.perf_counter()
        v = db.verify()
        assert v.clean
        results["verify_20000_s"] = round(time.perf_counter() - t0, 2)
        db.close()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - t_all, 1)
    for k, v in results.items():
        print(f"{k:40s} {v}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
