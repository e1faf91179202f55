"""The Slicer glue on Kitware's real Slicer core (``slicer-core`` wheel) with Slicer's own
Python files of 5.10.0, 5.12.0 and main: one fresh interpreter per version, in parallel,
each running the suite in ``Testing/Python/slicer_real`` (see its ``harness.py``).

Skipped (with the reason) only where the wheel cannot be installed (it exists for CPython
3.10-3.12 on Linux x86_64); with ``ABD_REQUIRE_SLICER=1`` (CI) a missing wheel fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUITE = HERE / "slicer_real"
VERSIONS = ("v5.10.0", "v5.12.0", "main")
sys.path.insert(0, str(SUITE))
import harness  # noqa: E402  (no Slicer import at module level)

if importlib.util.find_spec("slicer_core") is None:
    reason = (f"slicer-core is not installed (wheels exist for CPython 3.10-3.12 on Linux x86_64; "
              f"this is Python {sys.version_info.major}.{sys.version_info.minor} on {sys.platform}): "
              "pip install -e '.[slicer]'")
    if os.environ.get("ABD_REQUIRE_SLICER"):
        raise RuntimeError(reason)
    pytestmark = pytest.mark.skip(reason=reason)
elif not (harness.THIRD_PARTY / "slicer").is_dir():
    reason = f"Slicer's Python files not found in {harness.THIRD_PARTY} (../shared/third_party; or set ABD_THIRD_PARTY)"
    if os.environ.get("ABD_REQUIRE_SLICER"):
        raise RuntimeError(reason)
    pytestmark = pytest.mark.skip(reason=reason)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start one pytest process per Slicer version, all at once."""
    procs = {}
    for version in VERSIONS:
        log = tmp_path_factory.mktemp(version) / "log.txt"
        env = dict(os.environ, ABD_SLICER_VERSION=version, PYTHONDONTWRITEBYTECODE="1",
                   PYTHONPATH=os.pathsep.join([str(SUITE)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", "-p", "slicer_real_fixtures",
               "-o", "python_files=real_*.py", "-o", "addopts=", "-rfEs", f"--basetemp={log.parent / 'tmp'}"]
        fh = open(log, "w")
        procs[version] = (subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=HERE.parents[1]),
                          fh, log, time.monotonic())
    yield procs
    for proc, fh, _, _ in procs.values():
        if proc.poll() is None:
            proc.kill()
        fh.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_real_slicer_suite(runs, version):
    proc, fh, log, started = runs[version]
    rc = proc.wait(timeout=900)
    fh.flush()
    text = log.read_text(errors="replace")
    summary = [line for line in text.splitlines() if " passed" in line or " failed" in line or " error" in line]
    print(f"Slicer {version}: {summary[-1] if summary else '(no summary)'} in {time.monotonic() - started:.0f} s")
    assert rc == 0, f"real-Slicer suite for {version} failed (log {log}):\n" + text[-12000:]
    assert summary and " passed" in summary[-1] and "skipped" not in summary[-1], summary
