"""Seeded fuzzing of ``abdicom info`` and ``abdicom decode`` on mutants of valid SEGs.

Seeds: our writer in all five transfer syntaxes, highdicom LABELMAP and BINARY, dcmqi's
``itkimage2segimage`` LABELMAP and BINARY (when installed), the dcmqi corpus files.
Mutants (abdicom_testkit.hostile): truncations at many offsets, bit flips, a burst of
random bytes, element edits (Rows/Columns 65535, NumberOfFrames 2e9, zero/NaN/parallel/
skewed orientation, PixelSpacing 0, positions with 2 values / text / NaN / 1e300,
BitsAllocated 1, 5,000 nested sequences, a missing SegmentNumber, Latin-1 / invalid UTF-8
labels, ...), plus bombs run in a subprocess under an address-space limit.

Every case must exit 0 (a mutant that is still valid) or 2 with exactly one line on
stderr, no traceback, and nothing written; a truncated mutant that fails must say that the
file is incomplete and to copy it again from its source. Runs in-process for speed (the CLI's ``main``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from abdicom_testkit import hostile
from AdaptiveBrushDicomLib.cli.main import main

#: Seeds whose element edits are fuzzed too (the others get truncations and flips).
EDITED_SEEDS = ("ours-deflate", "ours-explicit", "highdicom-labelmap",
                "dcmqi-labelmap")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return hostile.write_seeds(tmp_path_factory.mktemp("seeds"))


def _run(argv: list[str]) -> tuple[int, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text or None) of ``main(argv)`` in-process."""
    out, err = io.StringIO(), io.StringIO()
    tb = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
        except BaseException:  # noqa: BLE001 - a traceback is what the test looks for
            rc, tb = -1, traceback.format_exc()
    return rc, out.getvalue(), err.getvalue(), tb


def _check_case(name: str, path: Path, reference: Path | None, work: Path) -> tuple[list[str], int]:
    """(problems, decode exit code) of one mutant under ``info --json`` and ``decode``."""
    problems = []
    rc, out, err, tb = _run(["info", str(path), "--json", "--no-voxels"])  # decode covers the voxels
    if tb or rc not in (0, 2):
        problems.append(f"{name}: info exit {rc}\n{tb or err}")
    elif rc == 2:
        if len(err.strip().splitlines()) != 1 or len(out.strip().splitlines()) != 1:
            problems.append(f"{name}: info error is not one line: {err!r}")
        elif set(json.loads(out)) != {"error", "file"}:
            problems.append(f"{name}: info --json error is {out!r}")
    target = work / "out.seg.nrrd"
    argv = ["decode", str(path), "--out", str(target)] + (["--reference", str(reference)] if reference else [])
    before = set(os.listdir(work))
    rc, out, err, tb = _run(argv)
    if tb or rc not in (0, 2):
        problems.append(f"{name}: decode exit {rc}\n{tb or err}")
    elif rc == 2:
        if len(err.strip().splitlines()) != 1 or "Traceback" in err:
            problems.append(f"{name}: decode error is not one line: {err!r}")
        if "/truncated@" in name and "copy it again from its source" not in err:
            problems.append(f"{name}: a file cut short, but the error does not say so: {err!r}")
        if set(os.listdir(work)) != before:
            problems.append(f"{name}: decode wrote {set(os.listdir(work)) - before} although it failed")
    if target.exists():
        target.unlink()
    return problems, rc


def test_fuzz_mutants_fail_cleanly(seeds, tmp_path, capsys):
    """>= 200 seeded mutants of every writer's SEGs: exit 0 or 2, one line, no traceback, nothing written,
    bounded memory (peak RSS growth of this process measured)."""
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    cases, problems, outcomes = 0, [], {0: 0, 2: 0}
    for index, seed in enumerate(seeds):
        rng = np.random.default_rng(1000 + index)
        data = seed.path.read_bytes()
        for name, mutant in hostile.mutants(data, rng, edits=seed.name in EDITED_SEEDS):
            path = tmp_path / "in" / f"{seed.name}.{name}.dcm"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(mutant)
            work = tmp_path / "work"
            work.mkdir(exist_ok=True)
            found, rc = _check_case(f"{seed.name}/{name}", path, seed.reference, work)
            problems += found
            outcomes[rc] = outcomes.get(rc, 0) + 1
            cases += 1
            path.unlink()
    seconds = time.perf_counter() - t0
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    with capsys.disabled():
        print(f"\nfuzz: {cases} mutants of {len(seeds)} seeds ({', '.join(s.name for s in seeds)}) "
              f"in {seconds:.1f} s (decode exit 0: {outcomes[0]}, exit 2: {outcomes[2]}); "
              f"peak RSS growth {growth_mb:.0f} MB")
    assert cases >= 200
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
    assert growth_mb < 1500, f"peak RSS grew by {growth_mb:.0f} MB"


# ------------------------------------------------------------------ bombs, memory-capped
_RUNNER = r"""
import contextlib, io, json, resource, sys, traceback
resource.setrlimit(resource.RLIMIT_AS, (AS_BYTES, AS_BYTES))
from AdaptiveBrushDicomLib.cli.main import main
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    tb = None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except BaseException:
            rc, tb = -1, traceback.format_exc()
    print(json.dumps({"argv": argv, "rc": rc, "err": err.getvalue(), "tb": tb}), flush=True)
"""

#: Address-space limit of the bomb runner: well below what any bomb here would take (8 GiB).
BOMB_ADDRESS_SPACE = 3 << 30


def run_capped(cases: list[list[str]], limit: int = BOMB_ADDRESS_SPACE, timeout: float = 300) -> list[dict]:
    """Run CLI argvs in one subprocess under RLIMIT_AS ``limit``; one result dict per case."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER.replace("AS_BYTES", str(limit)), json.dumps(cases)],
                          capture_output=True, text=True, timeout=timeout)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cases), proc.stderr[-3000:]
    return results


def test_fuzz_bombs_refused_within_memory(seeds, tmp_path):
    """Deflate bomb (info, decode), JPEG-LS bomb, gzip .seg.nrrd bomb (export), .nhdr on /dev/zero (synth),
    each refused in one line while the process may not map more than 3 GiB."""
    by_name = {s.name: s for s in seeds}
    explicit, jpegls = by_name["ours-explicit"], by_name["ours-jpegls"]
    bomb = hostile.deflate_bomb(explicit.path, tmp_path / "deflate_bomb.dcm")
    jls = hostile.jpegls_bomb(jpegls.path, tmp_path / "jpegls_bomb.dcm")
    nrrd_bomb = hostile.gzip_seg_nrrd_bomb(tmp_path / "bomb.seg.nrrd")
    nhdr = hostile.nhdr_dev_zero(tmp_path / "zero.nhdr")
    out = tmp_path / "out"
    out.mkdir()
    ref = str(explicit.reference)
    cases = [
        ["info", str(bomb), "--no-voxels"],  # header only: fine, exit 0
        ["info", str(bomb)],  # with voxel counts, so it decodes: refused
        ["decode", str(bomb), "--out", str(out / "a.seg.nrrd")],
        ["decode", str(bomb), "--out", str(out / "b.seg.nrrd"), "--reference", ref],
        ["decode", str(jls), "--out", str(out / "c.seg.nrrd"), "--reference", ref],
        ["export", str(nrrd_bomb), "--reference", ref, "--out", str(out / "d.dcm")],
        ["synth", str(nhdr), "--out", str(out / "series")],
    ]
    results = run_capped(cases)
    assert results[0]["rc"] == 0 and results[0]["tb"] is None, results[0]
    for r in results[1:]:
        assert r["tb"] is None, r["tb"]
        assert r["rc"] == 2, r
        assert len(r["err"].strip().splitlines()) == 1, r["err"]
    assert all("deflate bomb" in r["err"] for r in results[1:4])
    assert "60000 x 60000" in results[4]["err"]
    assert "gzip bomb" in results[5]["err"]
    assert "/dev/zero" in results[6]["err"] and "device" in results[6]["err"]
    assert sorted(os.listdir(out)) == []
