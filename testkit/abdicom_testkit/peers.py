"""Independent DICOM tools we measure ourselves against (dcmqi, DCMTK).

These wrappers run the peers' command-line programs and read their outputs back into
core types, for the interop tests, ``make interop`` and the benchmarks. Nothing in the
write/read path depends on them.

* dcmqi (PyPI ``dcmqi``): ``itkimage2segimage`` / ``segimage2itkimage``, an independent
  SEG writer/reader built on DCMTK.
* DCMTK (Debian ``dcmtk``): ``dcmdump`` parses any DICOM file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid


def find_tool(name: str) -> str | None:
    """Path of a command: next to the running Python (venv bin) first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


@dataclass
class ToolRun:
    """Outcome of one external command."""

    ok: bool
    returncode: int
    seconds: float
    output: str

    @property
    def last_line(self) -> str:
        lines = [line for line in self.output.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_tool(args: list[str], timeout: float = 300) -> ToolRun:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        return ToolRun(False, 127, 0.0, str(exc))
    except subprocess.TimeoutExpired:
        return ToolRun(False, -1, timeout, "timeout")
    return ToolRun(proc.returncode == 0, proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr)


@dataclass
class DcmqiDecoded:
    """What ``segimage2itkimage --mergeSegments`` produced."""

    run: ToolRun
    array: np.ndarray | None = None  # (k, j, i) pixel values = dcmqi labelIDs (segment numbers)
    grid: Grid | None = None
    meta: dict = field(default_factory=dict)

    @property
    def segments(self) -> list[dict]:
        """Segment attribute dicts (labelID, SegmentLabel, codes, recommendedDisplayRGBValue)."""
        out = []
        for group in self.meta.get("segmentAttributes", []):
            out.extend(group)
        return out


def dcmqi_decode(seg_path: str | Path, out_dir: str | Path) -> DcmqiDecoded:
    """Convert a SEG with dcmqi into one merged NRRD and read it (SimpleITK)."""
    import SimpleITK as sitk

    tool = find_tool("segimage2itkimage")
    if tool is None:
        return DcmqiDecoded(ToolRun(False, 127, 0.0, "segimage2itkimage not installed"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = run_tool([tool, "--inputDICOM", str(seg_path), "--outputDirectory", str(out_dir),
                    "--mergeSegments", "-t", "nrrd"])
    result = DcmqiDecoded(run)
    images = sorted(p for p in out_dir.glob("*.nrrd"))
    meta = out_dir / "meta.json"
    if meta.exists():
        result.meta = json.loads(meta.read_text())
    if run.ok and images:
        img = sitk.ReadImage(str(images[0]))
        result.array = sitk.GetArrayFromImage(img)
        result.grid = Grid.from_sitk(img)
    elif run.ok:
        result.run = ToolRun(False, run.returncode, run.seconds, run.output + "\n(no image written)")
    return result


def dcmqi_encode(
    label_images: list[str | Path],
    metadata_json: str | Path,
    dicom_dir: str | Path,
    out_path: str | Path,
    *,
    labelmap: bool = True,
    compress: str = "deflate",
) -> ToolRun:
    """Write a SEG with dcmqi's ``itkimage2segimage``."""
    tool = find_tool("itkimage2segimage")
    if tool is None:
        return ToolRun(False, 127, 0.0, "itkimage2segimage not installed")
    args = [tool, "--inputImageList", ",".join(str(p) for p in label_images),
            "--inputDICOMDirectory", str(dicom_dir), "--outputDICOM", str(out_path),
            "--inputMetadata", str(metadata_json),
            "--segmentationType", "labelmap" if labelmap else "binary"]
    if labelmap:
        args += ["--compress", compress]
    return run_tool(args)


def dcmdump(path: str | Path) -> ToolRun:
    """Parse a file with DCMTK's dcmdump (``+E`` prints parse errors)."""
    tool = find_tool("dcmdump")
    if tool is None:
        return ToolRun(False, 127, 0.0, "dcmdump not installed")
    run = run_tool([tool, "+E", "-q", "-Un", str(path)])
    if run.ok and ("E:" in run.output.split("\n", 1)[0] or "error" in run.output.lower()[:200]):
        return ToolRun(False, run.returncode, run.seconds, run.output)
    return run
