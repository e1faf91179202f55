"""Loading trial SEGs into Slicer segmentation nodes: our DICOM plugin vs Slicer 5.12's own.

Runs on the real Slicer core (``slicer-core`` wheel) with Slicer 5.12.0's Python files, as
the test suite does (``Testing/Python/slicer_real/harness.py``). N trials of W1 size
(256x256x100, 10 segments) are written as LABELMAP SEGs referencing one series and indexed
into the (stand-in) DICOM database; the volume is loaded first, as *Compare trials* does.

* ours: ``DICOMLabelMapSegPluginClass.examineForImport`` + ``load`` per trial (what the DICOM
  browser does with the selected loadable): real MRML segmentation nodes.
* Slicer 5.12's ``DICOMSegmentationPlugin`` (dcmqi based): its ``load`` starts
  ``segimage2itkimage --mergeSegments`` for every SEG and then reads the label NRRDs it wrote.
  The application parts it then needs (``slicer.util.loadLabelVolume``, the terminologies
  module) are not in the headless core, so the benchmark times exactly the command its
  ``load`` runs, per trial: a lower bound of that plugin's load time. The ratio ours/theirs
  is therefore an upper bound of the real ratio.

Usage: ``python benchmarks/bench_slicer_load.py [--trials 100] [--work DIR]``; prints the
target line (ours <= 0.3x) and writes nothing outside ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "Testing" / "Python"))
sys.path.insert(0, str(REPO / "Testing" / "Python" / "slicer_real"))

import workloads as W  # noqa: E402


def make_trials(work: Path, n: int) -> tuple[W.Workload, list[Path]]:
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    w1 = W.build(work, "W1", (100, 256, 256), 10)
    ref = ReferenceSeries.from_folder(w1.ref_dir)
    out = work / "slicer_trials"
    out.mkdir(exist_ok=True)
    paths = []
    for t in range(n):
        path = out / f"trial_{t:03d}.dcm"
        if not path.exists():
            labels = W.trial_labels(w1.shape, w1.n_segments, t)
            segs = W.segments_for(w1.n_segments, params={"trial": t})
            write_seg(LabelMap(labels, ref.grid, segs), ref, path, series_description=f"trial_{t:03d}_watershed",
                      series_number=1000 + t)
        paths.append(path)
    return w1, paths


def dcmqi_binary() -> str | None:
    from abdicom_testkit.peers import find_tool

    return find_tool("segimage2itkimage")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "abdicom-bench"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "testkit"))
    w1, segs = make_trials(work, args.trials)

    try:
        import harness
        import realdata
        import slicer_core  # noqa: F401
    except ImportError as exc:
        print(f"  not measured: the real Slicer core is not installed ({exc}); pip install -e '.[slicer]'")
        return 0

    rt = harness.start("v5.12.0", work / "slicer-runtime", with_cse=False)
    db_dir = work / "slicer-dicom-db"
    shutil.rmtree(db_dir, ignore_errors=True)
    rt.DICOMUtils.openTemporaryDatabase(str(db_dir))
    rt.index(list(sorted(w1.ref_dir.glob("*.dcm"))) + segs)
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    volume = logic.loadVolumeSeries(ReferenceSeries.from_folder(w1.ref_dir).series_instance_uid)
    assert volume is not None, "volume did not load"
    plugin = rt.slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    t0 = time.perf_counter()
    for path in segs:
        (loadable,) = plugin.examineForImport([[str(path)]])
        node = plugin.load(loadable)
        assert node, f"our plugin did not load {path}"
    ours = time.perf_counter() - t0
    n_nodes = len(list(rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode")))
    assert n_nodes == len(segs), n_nodes
    result = {"trials": len(segs), "ours_s": ours, "segmentation_nodes": n_nodes, "series": realdata.series_uid(segs[0])}

    tool = dcmqi_binary()
    if tool:
        tmp = work / "slicer_dcmqi_out"
        t0 = time.perf_counter()
        for path in segs:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            subprocess.run([tool, "--inputDICOM", str(path), "--outputDirectory", str(tmp), "--mergeSegments"],
                           check=True, capture_output=True)
        result["slicer_seg_plugin_lower_bound_s"] = time.perf_counter() - t0
        ratio = ours / result["slicer_seg_plugin_lower_bound_s"]
        result["ratio"] = ratio
        met = ratio <= 0.3
        print(f"  {'MET ' if met else 'MISS'}  Slicer: load {len(segs)} W1 trial SEGs, our plugin vs Slicer 5.12's SEG "
              f"plugin: {ratio:.3g}x (limit 0.3x) ours {ours:.1f} s vs >= {result['slicer_seg_plugin_lower_bound_s']:.1f} s "
              f"(its segimage2itkimage calls alone)")
    else:
        print(f"  ours: {ours:.1f} s for {len(segs)} trials; segimage2itkimage not installed, no comparison")
    print(json.dumps(result))
    (work / "slicer_load.json").write_text(json.dumps(result, indent=1))
    os.environ.pop("ABD_SLICER_VERSION", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
