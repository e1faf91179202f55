"""Loading trial SEGs into Slicer segmentation nodes: our DICOM plugin vs Slicer 5.12's own.

Runs on the real Slicer core (``slicer-core`` wheel) with Slicer 5.12.0's Python files, as
the test suite does (``Testing/Python/slicer_real/harness.py``). N trials of W1 size
(256x256x100, 10 segments) are written as LABELMAP SEGs referencing one series and indexed
into the (stand-in) DICOM database; the volume is loaded first, as *Compare trials* does.

* ours: ``DICOMLabelMapSegPluginClass.examineForImport`` + ``load`` per trial (what the DICOM
  browser does with the selected loadable), one plugin instance per batch: real MRML
  segmentation nodes. CPU = ``time.process_time`` of this process (all threads).
* Slicer 5.12's ``DICOMSegmentationPlugin`` (dcmqi based): its ``load`` starts
  ``segimage2itkimage --mergeSegments`` for every SEG and then reads the label NRRDs it wrote.
  The application parts it then needs (``slicer.util.loadLabelVolume``, the terminologies
  module) are not in the headless core, so the target is checked against exactly the
  command its ``load`` runs, per trial: a **lower bound** of that plugin's load time (the
  ratio ours/theirs is an upper bound of the real one). CPU = ``RUSAGE_CHILDREN`` user+sys.
  ``--full-contender`` also times what else of that plugin runs headless, as it is written:
  its ``examineForImport`` (``DICOMPlugin.addReferences`` reads the SEG and every referenced
  image with pydicom), and the NRRD read + ``ImportLabelmapToSegmentationNode`` through its
  own ``_createSegmentationNode`` (closed surfaces included); still a lower bound (no
  terminology lookup).

Both sides run in the same process, alternating, ``--repeats`` rounds; the target (ours <=
0.3x) is checked on the median CPU ratio, the wall ratio is printed next to it (wall time is
noisy on a shared machine). The first round of ours includes first-use imports.

Usage: ``python benchmarks/bench_slicer_load.py [--trials 100] [--repeats 3] [--work DIR]
[--breakdown] [--full-contender] [--no-write]``; writes nothing outside ``--work``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import inspect
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "Testing" / "Python"))
sys.path.insert(0, str(REPO / "Testing" / "Python" / "slicer_real"))

import workloads as W  # noqa: E402

TARGET = 0.3


def writer_key() -> str:
    """Digest of the writer's sources (``core/`` and ``dicom/``): cached trial SEGs written by
    another version of the writer are written again (an older writer put SegmentSequence
    items out of tag order, which changes what every reader does)."""
    import AdaptiveBrushDicomLib

    package = Path(AdaptiveBrushDicomLib.__file__).parent
    digest = hashlib.sha1()
    for path in sorted(p for sub in ("core", "dicom") for p in (package / sub).rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def make_trials(work: Path, n: int) -> tuple[W.Workload, list[Path]]:
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    w1 = W.build(work, "W1", (100, 256, 256), 10)
    ref = ReferenceSeries.from_folder(w1.ref_dir)
    out = work / "slicer_trials"
    out.mkdir(exist_ok=True)
    stamp, key = out / ".writer-key", writer_key()
    fresh = stamp.is_file() and stamp.read_text().strip() == key
    paths = []
    for t in range(n):
        path = out / f"trial_{t:03d}.dcm"
        if not (fresh and path.exists()):
            labels = W.trial_labels(w1.shape, w1.n_segments, t)
            segs = W.segments_for(w1.n_segments, params={"trial": t})
            write_seg(LabelMap(labels, ref.grid, segs), ref, path, series_description=f"trial_{t:03d}_watershed",
                      series_number=1000 + t, force=True)
        paths.append(path)
    stamp.write_text(key + "\n")
    return w1, paths


def dcmqi_binary() -> str | None:
    from abdicom_testkit.peers import find_tool

    return find_tool("segimage2itkimage")


def children_cpu() -> float:
    """User + system CPU seconds of all waited-for child processes."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class StageTimer:
    """CPU seconds per wrapped function (``--breakdown``): the stages of our load."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = collections.defaultdict(float)

    def wrap(self, owner: Any, name: str, key: str | None = None) -> None:
        func = getattr(owner, name)
        cpu = self.cpu
        cpu[key or name] = 0.0  # printed in the order wrapped

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                cpu[key or name] += time.process_time() - start

        static = isinstance(inspect.getattr_static(owner, name), staticmethod)
        setattr(owner, name, staticmethod(timed) if static else timed)


def install_breakdown(rt: Any) -> StageTimer:
    import importlib

    import AdaptiveBrushDicomLib.dicom.seg.read as read_module

    try:  # where the plan lives (slicer/bridge.py before the issue-15 split)
        import_plan = importlib.import_module("AdaptiveBrushDicomLib.slicer.import_plan")
    except ImportError:
        import_plan = importlib.import_module("AdaptiveBrushDicomLib.slicer.bridge")
    timer = StageTimer()
    plugin_class = sys.modules["DICOMLabelMapSegPlugin"].DICOMLabelMapSegPluginClass
    logic_class = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic
    timer.wrap(plugin_class, "examineForImport", "examineForImport (header-only references)")
    timer.wrap(plugin_class, "load", "load (all of it)")
    timer.wrap(rt.AdaptiveBrushDicom, "ensureDependencies", "  ensureDependencies")
    timer.wrap(read_module, "read_seg", "  read_seg (decode onto the reference)")
    timer.wrap(logic_class, "labelMapToSegmentationNode", "  labelMapToSegmentationNode")
    timer.wrap(import_plan, "plan_labelmap_import", "    plan_labelmap_import")
    timer.wrap(rt.slicer.util, "addVolumeFromArray", "    addVolumeFromArray (temporary label node)")
    timer.wrap(rt.slicer.modules.segmentations.logic(), "ImportLabelmapToSegmentationNode",
               "    ImportLabelmapToSegmentationNode")
    timer.wrap(logic_class, "applySegmentRecord", "    applySegmentRecord (names, colours, tags)")
    timer.wrap(logic_class, "structureWarnings", "  structureWarnings")
    timer.wrap(plugin_class, "addSeriesInSubjectHierarchy", "  addSeriesInSubjectHierarchy")
    return timer


def remove_nodes(rt: Any, nodes: list[Any]) -> None:
    """Remove loaded segmentation nodes (and their display nodes), so every round starts
    from the same scene: the volume only."""
    for node in nodes:
        for i in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(i)
            if display is not None:
                rt.slicer.mrmlScene.RemoveNode(display)
        rt.slicer.mrmlScene.RemoveNode(node)


def run_ours(rt: Any, segs: list[Path]) -> tuple[float, float, list[Any]]:
    """(CPU s, wall s, nodes) of examine + load of every SEG with one plugin instance."""
    plugin = rt.slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    nodes = []
    c0, w0 = time.process_time(), time.perf_counter()
    for path in segs:
        (loadable,) = plugin.examineForImport([[str(path)]])
        node = plugin.load(loadable)
        assert node, f"our plugin did not load {path}: {getattr(loadable, 'loadError', '')}"
        nodes.append(node)
    return time.process_time() - c0, time.perf_counter() - w0, nodes


def run_dcmqi(tool: str, segs: list[Path], tmp: Path) -> tuple[float, float]:
    """(CPU s of the children, wall s) of segimage2itkimage --mergeSegments per SEG."""
    c0, w0 = children_cpu(), time.perf_counter()
    for path in segs:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run([tool, "--inputDICOM", str(path), "--outputDirectory", str(tmp), "--mergeSegments"],
                       check=True, capture_output=True)
    return children_cpu() - c0, time.perf_counter() - w0


def run_full_contender(rt: Any, tool: str, segs: list[Path], tmp: Path) -> dict[str, float]:
    """CPU/wall of what runs headless of Slicer 5.12's SEG plugin, as written: its
    examineForImport (pydicom reads of the SEG and every referenced image), then
    segimage2itkimage, the label NRRD read (Volumes logic: the reader behind
    ``loadLabelVolume``) and its own ``_createSegmentationNode``. Terminology is left out."""
    plugin = rt.slicer.modules.dicomPlugins["DICOMSegmentationPlugin"]()
    volumes = rt.logics["Volumes"]
    cpu_self = cpu_child = wall = 0.0
    nodes = []
    for path in segs:
        c0, k0, w0 = time.process_time(), children_cpu(), time.perf_counter()
        (loadable,) = [l for l in plugin.examineForImport([[str(path)]])]
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run([tool, "--inputDICOM", str(path), "--outputDirectory", str(tmp), "--mergeSegments"],
                       check=True, capture_output=True)
        meta = json.loads((tmp / "meta.json").read_text())
        labels = []
        for n, attributes in enumerate(meta["segmentAttributes"], start=1):
            label = volumes.AddArchetypeVolume(str(tmp / f"{n}.nrrd"), f"{loadable.name}_{n}", 1)
            label.labelAttributes = [{
                "Name": s.get("SegmentLabel", ""), "NameAutoGenerated": False, "Description": s.get("SegmentDescription", ""),
                "Terminology": "", "ColorR": 0.5, "ColorG": 0.5, "ColorB": 0.5,
                "DICOM.SegmentAlgorithmType": s.get("SegmentAlgorithmType"),
                "DICOM.SegmentAlgorithmName": s.get("SegmentAlgorithmName")}
                for s in attributes if s.get("labelID", 1) != 0]
            labels.append(label)
        before = set(rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode"))
        plugin._createSegmentationNode(loadable, labels)
        nodes += [n for n in rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode") if n not in before]
        cpu_self += time.process_time() - c0
        cpu_child += children_cpu() - k0
        wall += time.perf_counter() - w0
    remove_nodes(rt, nodes)
    return {"cpu_s": cpu_self + cpu_child, "cpu_in_process_s": cpu_self, "cpu_dcmqi_s": cpu_child, "wall_s": wall}


def start_runtime(work: Path, w1: W.Workload, segs: list[Path]) -> Any:
    import harness
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    rt = harness.start("v5.12.0", work / "slicer-runtime", with_cse=False)
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # per-segment INFO lines of Slicer's plugin
    db_dir = work / "slicer-dicom-db"
    shutil.rmtree(db_dir, ignore_errors=True)
    rt.DICOMUtils.openTemporaryDatabase(str(db_dir))
    rt.index(list(sorted(w1.ref_dir.glob("*.dcm"))) + segs)
    logic = rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()
    volume = logic.loadVolumeSeries(ReferenceSeries.from_folder(w1.ref_dir).series_instance_uid)
    assert volume is not None, "volume did not load"
    return rt


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(result: dict[str, Any], n: int) -> None:
    """Print the per-trial numbers and the target line."""
    ours, theirs = result["ours"], result.get("dcmqi")
    cpu, wall = _median(ours, "cpu_s"), _median(ours, "wall_s")
    print(f"  ours: {cpu / n * 1000:.1f} ms CPU, {wall / n * 1000:.1f} ms wall per trial (median of "
          f"{len(ours)} rounds; first round {ours[0]['cpu_s'] / n * 1000:.1f} ms CPU incl. first-use imports)")
    if not theirs:
        print(f"  ours: {cpu:.1f} s CPU for {n} trials; segimage2itkimage not installed, no comparison")
        return
    tcpu, twall = _median(theirs, "cpu_s"), _median(theirs, "wall_s")
    ratios = [o["cpu_s"] / t["cpu_s"] for o, t in zip(ours, theirs)]
    wall_ratios = [o["wall_s"] / t["wall_s"] for o, t in zip(ours, theirs)]
    ratio, wall_ratio = statistics.median(ratios), statistics.median(wall_ratios)
    result.update(ratio_cpu=ratio, ratio_wall=wall_ratio, ratios_cpu=ratios, ratios_wall=wall_ratios, target=TARGET,
                  met=ratio <= TARGET)
    print(f"  Slicer 5.12's plugin, its segimage2itkimage calls alone: {tcpu / n * 1000:.1f} ms CPU, "
          f"{twall / n * 1000:.1f} ms wall per trial")
    print(f"  {'MET ' if ratio <= TARGET else 'MISS'}  Slicer: load {n} W1 trial SEGs, our plugin vs Slicer 5.12's SEG "
          f"plugin: {ratio:.3g}x CPU (limit {TARGET}x; rounds {', '.join(f'{r:.3g}' for r in ratios)}), "
          f"{wall_ratio:.3g}x wall; ours {cpu:.1f} s CPU / {wall:.1f} s wall vs >= {tcpu:.1f} s CPU / "
          f"{twall:.1f} s wall (its segimage2itkimage calls alone)")
    full = result.get("full_contender")
    if full:
        print(f"  Slicer 5.12's plugin as far as it runs headless (examine with pydicom reads of the SEG and the 100 "
              f"referenced images, segimage2itkimage, NRRD read, _createSegmentationNode): "
              f"{full['cpu_s'] / n * 1000:.0f} ms CPU, {full['wall_s'] / n * 1000:.0f} ms wall per trial; "
              f"ours/that: {cpu / full['cpu_s']:.3g}x CPU, {wall / full['wall_s']:.3g}x wall")


def print_breakdown(timer: StageTimer, n_trials: int) -> None:
    print(f"  our load, CPU per trial by stage (all rounds, {n_trials} loads):")
    for key, seconds in timer.cpu.items():
        print(f"    {key:58s} {seconds / n_trials * 1000:7.2f} ms")


def measure(rt: Any, segs: list[Path], tool: str | None, work: Path, repeats: int,
            on_round: Callable[[int], None]) -> dict[str, Any]:
    result: dict[str, Any] = {"trials": len(segs), "ours": [], "dcmqi": []}
    for round_index in range(repeats):
        cpu, wall, nodes = run_ours(rt, segs)
        n_nodes = len(list(rt.slicer.util.getNodesByClass("vtkMRMLSegmentationNode")))
        assert n_nodes == len(segs), n_nodes
        result["ours"].append({"cpu_s": cpu, "wall_s": wall})
        remove_nodes(rt, nodes)
        if tool:
            tcpu, twall = run_dcmqi(tool, segs, work / "slicer_dcmqi_out")
            result["dcmqi"].append({"cpu_s": tcpu, "wall_s": twall})
        on_round(round_index)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3, help="rounds of ours + dcmqi (alternating); median reported")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "abdicom-bench"))
    ap.add_argument("--breakdown", action="store_true", help="CPU per stage of our load")
    ap.add_argument("--full-contender", action="store_true",
                    help="also time Slicer 5.12's plugin as far as it runs headless (slow: reads every referenced image per trial)")
    ap.add_argument("--no-write", action="store_true", help="do not write slicer_load.json into --work")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "testkit"))
    w1, segs = make_trials(work, args.trials)
    try:
        import slicer_core  # noqa: F401
    except ImportError as exc:
        print(f"  not measured: the real Slicer core is not installed ({exc}); pip install -e '.[slicer]'")
        return 0
    rt = start_runtime(work, w1, segs)
    tool = dcmqi_binary()
    full = run_full_contender(rt, tool, segs, work / "slicer_dcmqi_full") if args.full_contender and tool else None
    timer = install_breakdown(rt) if args.breakdown else None  # after the contender: it calls the same logic
    result = measure(rt, segs, tool, work, max(1, args.repeats),
                     lambda i: print(f"  round {i + 1}/{args.repeats} done", file=sys.stderr))
    if full:
        result["full_contender"] = full
    report(result, len(segs))
    if timer is not None:
        print_breakdown(timer, len(segs) * len(result["ours"]))
    print(json.dumps(result))
    if not args.no_write:
        (work / "slicer_load.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
