#!/usr/bin/env python3
"""One contender in its own process; prints one JSON line with its in-process timings.

Modes (all read the same inputs the CLIs read):

* ``ours-export SEG_NRRD REF OUT COMPRESSION N [trial]``: ReferenceSeries +
  read_segmentation once, then ``write_seg`` N+1 times (the first call, "cold", builds the
  per-series template; the next N are "warm"). Without ``trial`` the UIDs are derived from
  the content, as ``abdicom export`` does (a SHA-256 of the voxels); with ``trial`` they
  are given, as ``abdicom migrate`` does for each trial.
* ``ours-decode SEG REF N``: ``read_seg(path, reference)`` N+1 times.
* ``hd-export SEG_NRRD REF OUT N``: plain highdicom: ``Segmentation(LABELMAP)`` with its
  default settings + ``save_as`` (Explicit VR Little Endian), N+1 times.
* ``hd-decode SEG N``: ``highdicom.seg.segread(path).get_volume(combine_segments=True)``.

The whole process (imports included) is timed by the parent, which also reads the peak
RSS of this process with wait4().
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))


def _timed(fn, n):
    t0 = time.perf_counter()
    fn(0)
    cold = time.perf_counter() - t0
    warm, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i + 1)
        warm.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # all threads of this process (the deflate parts)
    return {"cold_s": cold, "warm_s": warm, "warm_median_s": statistics.median(warm) if warm else cold,
            "warm_cpu_median_s": statistics.median(cpu) if cpu else None}


def main(argv):
    mode = argv[0]
    out = {"mode": mode}
    if mode == "ours-export":
        seg_nrrd, ref_dir, dst, comp, n = argv[1], argv[2], Path(argv[3]), argv[4], int(argv[5])
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
        from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
        from AdaptiveBrushDicomLib.io.volumes import read_segmentation

        t0 = time.perf_counter()
        ref = ReferenceSeries.from_folder(ref_dir)
        lm = read_segmentation(seg_nrrd)
        out["load_s"] = time.perf_counter() - t0
        res = {}

        uids = {}
        if len(argv) > 6 and argv[6] == "trial":
            from AdaptiveBrushDicomLib.dicom.uids import derive_uid

            uids = {"series_instance_uid": derive_uid("bench-series"), "sop_instance_uid": derive_uid("bench-sop")}

        def run(i):
            res["r"] = write_seg(lm, ref, dst, compression=comp, force=True, series_description="bench", **uids)

        out.update(_timed(run, n))
        out["bytes"] = res["r"].size_bytes
        out["frames"] = res["r"].n_frames
    elif mode == "ours-decode":
        seg, ref_dir, n = argv[1], argv[2], int(argv[3])
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

        ref = ReferenceSeries.from_folder(ref_dir)
        out.update(_timed(lambda i: read_seg(seg, reference=ref), n))
    elif mode == "hd-export":
        seg_nrrd, ref_dir, dst, n = argv[1], argv[2], argv[3], int(argv[4])
        import highdicom as hd
        import numpy as np
        import pydicom
        import slicerio
        from pydicom.sr.codedict import codes

        t0 = time.perf_counter()
        files = sorted(Path(ref_dir).glob("*.dcm"))
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        sources.sort(key=lambda d: float(d.ImagePositionPatient[2]))
        seg = slicerio.read_segmentation(seg_nrrd)
        labels = np.ascontiguousarray(seg["voxels"].transpose(2, 1, 0))  # (k, j, i)
        n_seg = len(seg["segments"])
        labels = labels.astype(np.uint8 if n_seg < 256 else np.uint16)
        descs = [hd.seg.SegmentDescription(
            segment_number=v, segment_label=f"Segment {v}",
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for v in range(1, n_seg + 1)]
        out["load_s"] = time.perf_counter() - t0

        def run(i):
            s = hd.seg.Segmentation(
                source_images=sources, pixel_array=labels,
                segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
                segment_descriptions=descs, series_instance_uid=hd.UID(), series_number=1,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer="bench",
                manufacturer_model_name="bench", software_versions="0", device_serial_number="0")
            s.save_as(dst)

        out.update(_timed(run, n))
        out["bytes"] = Path(dst).stat().st_size
    elif mode == "hd-decode":
        seg, n = argv[1], int(argv[2])
        import highdicom as hd

        def run(i):
            vol = hd.seg.segread(seg).get_volume(combine_segments=True)
            out["shape"] = list(vol.array.shape)

        out.update(_timed(run, n))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
