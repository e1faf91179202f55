#!/usr/bin/env python3
"""`make demo`: the main job end to end on bundled and generated data.

1. A phantom MR volume with labelled structures (one label > 255) and the 3-slice CT from
   ../shared/corpus/dcmqi are turned into DICOM series (synthetic for the phantom).
2. Their segmentations (.seg.nrrd written with slicerio for the phantom, dcmqi's
   liver/spine labelmap for the CT) are exported as LABELMAP SEGs in every transfer syntax.
3. Each SEG is decoded onto the reference grid and compared voxel by voxel; the
   segments' names, colours and codes are compared too.
4. If the migration module is present, a legacy optimization run + gold standard is
   generated and migrated (see docs/migration.md).

Prints a table of sizes and times. Exit code 1 if any check fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))

from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression  # noqa: E402
from AdaptiveBrushDicomLib.errors import UserError  # noqa: E402
from AdaptiveBrushDicomLib.core.labelmap import LabelMap  # noqa: E402
from abdicom_testkit.phantom import make_phantom, phantom_grid  # noqa: E402
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries  # noqa: E402
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg  # noqa: E402
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg  # noqa: E402
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for  # noqa: E402
from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd  # noqa: E402

CORPUS = (REPO / ".." / "shared" / "corpus").resolve()


def _same_segments(a: LabelMap, b: LabelMap) -> bool:
    from AdaptiveBrushDicomLib.core.segment import Terminology

    # no terminology is written as the documented default (Tissue / Tissue)
    key = lambda s: (s.label, s.name, s.color, s.terminology or Terminology())  # noqa: E731
    return sorted(map(key, a.segments), key=str) == sorted(map(key, b.segments), key=str)


def run_case(name: str, labelmap: LabelMap, reference: ReferenceSeries, out: Path, rows: list) -> bool:
    ok = True
    for comp in Compression:
        path = out / f"{name}_{comp.cli_name}.dcm"
        t0 = time.perf_counter()
        res = write_seg(labelmap, reference, path, compression=comp, series_description=f"demo {name}", force=True)
        t_write = time.perf_counter() - t0
        decoded = read_seg(path, reference=reference)
        exact = bool(np.array_equal(decoded.labelmap.array, labelmap.array))
        meta = _same_segments(decoded.labelmap, labelmap)
        ok &= exact and meta
        rows.append((name, comp.cli_name + (" (default)" if comp is DEFAULT_COMPRESSION else ""), res.size_bytes,
                     res.n_frames, t_write * 1000, decoded.seconds * 1000, exact, meta))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-output", help="folder for everything the demo writes")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    marker = out / ".abdicom-demo-output"
    if out.exists() and any(out.iterdir()):
        if not marker.exists():
            print(f"demo: error: {out} exists and was not made by the demo; give another --out", file=sys.stderr)
            return 2
        shutil.rmtree(out)  # a previous demo run's own output (it carries our marker file)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by scripts/demo.py; the demo deletes and rewrites this folder\n")
    rows: list = []
    ok = True

    # 1. phantom
    grid = phantom_grid(shape=(40, 96, 96))
    image, labels, segments = make_phantom(grid)
    # one declared but empty segment, to show it survives
    from AdaptiveBrushDicomLib.core.segment import Segment

    segments.append(Segment(label=7, name="Not found (empty)", color=(200, 200, 0)))
    lm = LabelMap(labels, grid, segments)
    series = create_synthetic_series(image, grid, out / "phantom" / "volume", patient_id=patient_id_for("phantom"),
                                     study_description="AdaptiveBrushDicom demo", series_description="phantom MR")
    write_seg_nrrd(lm, out / "phantom" / "phantom.seg.nrrd")
    lm_nrrd = read_segmentation(out / "phantom" / "phantom.seg.nrrd")
    reference = ReferenceSeries.from_folder(series.folder)
    ok &= run_case("phantom", lm_nrrd, reference, out / "phantom", rows)

    # 2. real CT + dcmqi labelmap
    ct = CORPUS / "dcmqi" / "ct-3slice"
    if ct.exists():
        ct_ref = ReferenceSeries.from_folder(ct)
        ct_lm = read_segmentation(CORPUS / "dcmqi" / "liver_spine_seg.nrrd")
        from AdaptiveBrushDicomLib.core.segment import Code, Terminology

        liver, spine = ct_lm.segments
        liver.name, liver.color = "Liver", (220, 129, 101)
        liver.terminology = Terminology(Code("85756007", "SCT", "Tissue"), Code("10200004", "SCT", "Liver"))
        spine.name, spine.color = "Thoracic spine", (226, 202, 134)
        spine.terminology = Terminology(Code("123037004", "SCT", "Anatomical Structure"),
                                        Code("122495006", "SCT", "Thoracic spine"))
        (out / "ct").mkdir()
        ok &= run_case("ct-3slice", ct_lm, ct_ref, out / "ct", rows)
    else:
        print(f"note: {ct} not found; skipping the CT case")

    print()
    print("1. Each segmentation written as a DICOM SEG in every transfer syntax, then decoded again:")
    print(f"{'case':<10} {'transfer syntax':<18} {'bytes':>9} {'frames':>6} {'write ms':>9} {'read ms':>8}  voxels  metadata")
    for name, comp, size, frames, tw, tr, exact, meta in rows:
        print(f"{name:<10} {comp:<18} {size:>9,} {frames:>6} {tw:>9.1f} {tr:>8.1f}  {'exact' if exact else 'DIFF':<6}  "
              f"{'same' if meta else 'DIFF'}")
    print(LEGEND_SEGS)

    # 3. legacy run migration (issue 5), when available
    try:
        from abdicom_testkit import demo_data  # noqa: F401
        from AdaptiveBrushDicomLib.runs import migrate  # noqa: F401
    except ImportError:
        demo_data = None
    migrated = demo_data is not None and hasattr(demo_data, "run_demo_migration")
    if migrated:
        print()
        print("2. A legacy optimization run (region growing on the phantom) migrated to DICOM:")
        ok &= bool(demo_data.run_demo_migration(out / "legacy"))
        print(LEGEND_RUN)
    print()
    print("demo OK: every SEG decoded voxel-exactly with its metadata" if ok else "demo FAILED")
    print(f"output in {out}")
    print(next_steps(out, migrated))
    return 0 if ok else 1


LEGEND_SEGS = """
   bytes     size of the SEG file (smaller is better; deflate is the default we write)
   frames    frames stored: one per slice that holds at least one segment voxel
   write ms  time to write the SEG in this process; read ms: time to decode it again
   voxels    'exact' = the decoded labelmap equals the input voxel for voxel
   metadata  'same'  = segment names, colours and terminology codes came back unchanged"""

LEGEND_RUN = """
   migrated / skipped / failed: trials converted now / left out because the optimizer pruned
             them (no segmentation) / that could not be converted (the report says why)
   value     the trial's objective value from results.json (here: Dice against the gold
             standard; higher is better); '-' marks a pruned trial without a segmentation
   bytes     size of the trial's SEG; voxels 'exact' = it decodes to the trial's .seg.nrrd
   the run's trials and its gold standard reference one DICOM image series, so a viewer
   can overlay and compare them"""


def next_steps(out: Path, migrated: bool) -> str:
    """What to open next, with the paths of this demo's output."""
    lines = ["", "What to open next:",
             f"  abdicom info {out / 'phantom' / 'phantom_deflate.dcm'}      # what a SEG holds"]
    if migrated:
        run = out / "legacy"
        lines += [
            f"  abdicom db --db {out / 'index.sqlite'} import {out / 'legacy'}",
            f"  abdicom db --db {out / 'index.sqlite'} segs-for phantom_tumor_region_growing   # trials + scores",
            f"  3D Slicer: DICOM module > Import > {run}, then load the study 'AdaptiveBrushPhantom':",
            "             the volume, the gold standard and every trial appear as series (our DICOM plugin",
            "             loads the LABELMAP SEGs with names and colours); module 'AdaptiveBrush DICOM' >",
            "             Compare trials opens them in CrossSegmentationExplorer",
        ]
    lines.append("  docs: README.md (commands), docs/migration.md (runs), docs/remote.md (PACS push/pull)")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        sys.exit(2)
