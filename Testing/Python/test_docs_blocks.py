"""Every ```bash and ```python block of README.md and docs/*.md runs as written.

The blocks of one file run in order, in one temporary folder that holds generated data
(what the documentation's examples name):

* ``MRHead.nrrd`` -- the phantom MR image (40 x 96 x 96); ``tumor.seg.nrrd``,
  ``trial_001.seg.nrrd``, ``trial_002.seg.nrrd`` -- segmentations of it (slicerio);
* ``volumes/``, ``optimization_results/``, ``GoldStandards/`` -- a legacy optimization run
  with its gold standard (``abdicom_testkit.demo_data.build_demo_legacy``).

``abdicom`` is on PATH, ``abdicom_testkit`` on PYTHONPATH, and ``ABDICOM_DB`` points into
the folder (the examples never touch the user's own index). Bash blocks run with
``set -euo pipefail``; each Python block runs in a fresh interpreter. Usage syntax with
placeholders belongs in plain text (a ```text block), not in a bash block; code that needs
3D Slicer or a PACS is marked the same way (see the test's ``NOT_RUN`` list of languages).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = ("bash", "python")
#: Fenced block languages that are documentation, not commands (never run).
NOT_RUN = ("", "text", "json", "csv", "yaml")
_FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")


def blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, first line number, code) of every fenced block in ``path``."""
    out: list[tuple[str, int, str]] = []
    lang, start, body = None, 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = _FENCE.match(line)
        if lang is None and m:
            lang, start, body = m.group(1).lower(), n, []
        elif lang is not None and line.strip() == "```":
            out.append((lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    return out


def make_workspace(root: Path) -> None:
    import SimpleITK as sitk

    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd
    from abdicom_testkit.demo_data import build_demo_legacy
    from abdicom_testkit.phantom import make_phantom, phantom_grid

    grid = phantom_grid(shape=(40, 96, 96))
    image, labels, segments = make_phantom(grid)
    sitk.WriteImage(grid.apply_to_sitk(sitk.GetImageFromArray(image)), str(root / "MRHead.nrrd"), True)
    write_seg_nrrd(LabelMap(labels, grid, segments), root / "tumor.seg.nrrd")
    for n in (1, 2):
        trial = labels.copy()
        trial[:, : 10 * n, :] = 0
        write_seg_nrrd(LabelMap(trial, grid, segments), root / f"trial_{n:03d}.seg.nrrd")
    build_demo_legacy(root, n_trials=4, shape=(12, 40, 48))


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_every_block_has_a_known_language():
    for path in DOCS:
        for lang, line, _code in blocks(path):
            assert lang in RUN + NOT_RUN, f"{doc_id(path)}:{line}: code block language {lang!r}"


def test_bash_blocks_have_no_placeholders():
    """Placeholders ([--option], SERIES_UID, ...) go in plain text."""
    for path in DOCS:
        for lang, line, code in blocks(path):
            if lang != "bash":
                continue
            commands = "\n".join(re.sub(r"(^|\s)#.*$", "", ln) for ln in code.splitlines())  # no comments
            assert not re.search(r"\[--|\bSERIES_UID\b|\bUID\b|\.\.\.|<[a-z_]+>", commands), \
                f"{doc_id(path)}:{line}: placeholder in a bash block"


@pytest.mark.parametrize("path", [p for p in DOCS if any(b[0] in RUN for b in blocks(p))], ids=doc_id)
def test_blocks_run_as_written(path, tmp_path):
    make_workspace(tmp_path)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "PYTHONPATH": os.pathsep.join([str(REPO / "testkit"), os.environ.get("PYTHONPATH", "")]),
           "ABDICOM_DB": str(tmp_path / "index.sqlite"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "MPLBACKEND": "Agg"}
    for lang, line, code in blocks(path):
        if lang == "bash":
            cmd = ["bash", "-c", "set -euo pipefail\n" + code]
        elif lang == "python":
            cmd = [sys.executable, "-c", code]
        else:
            continue
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (f"{doc_id(path)}:{line}: {lang} block failed (exit {proc.returncode})\n"
                                      f"{code}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}")
