"""Static checks of the source, run with the suite (and so in CI):

* ruff (rule set in pyproject.toml ``[tool.ruff]``),
* mypy (pyproject.toml ``[tool.mypy]``: the package in mypy's default mode, ``core/`` strict),
* import-linter (pyproject.toml ``[tool.importlinter]``: the layer contract
  ``cli | slicer -> runs | store -> dicom -> io -> core -> errors``, no Slicer modules in
  the package, no DICOM libraries in ``core/``).

The tools come with the ``test`` extra (``make test`` installs it). A test skips only when
its tool is not installed and says which one.
"""

from __future__ import annotations

import importlib.util
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lint


def _run(tool_module: str, args: list[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(tool_module) is None:
        pytest.skip(f"{tool_module} is not installed (pip install -e '.[test]')")
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_ruff_passes():
    proc = _run("ruff", [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."])
    assert proc.returncode == 0, f"ruff found problems:\n{proc.stdout}{proc.stderr}"


def test_mypy_passes_core_strict():
    proc = _run("mypy", [sys.executable, "-m", "mypy", "--no-error-summary", "--show-error-codes"])
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}{proc.stderr}"


def test_import_layers_are_kept():
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    proc = _run("importlinter", [sys.executable, "-c", code, "--no-cache"])
    assert proc.returncode == 0, f"import-linter contracts broken:\n{proc.stdout}{proc.stderr}"
    out = proc.stdout
    assert "0 broken" in out and "KEPT" in out, out
    assert "layers: cli | slicer -> runs | store | analysis -> dicom -> io -> core -> errors KEPT" in out, out


def test_import_linter_catches_a_layer_violation(tmp_path):
    """The contract is not vacuous: a core module importing dicom/ or pydicom breaks it."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("importlinter is not installed (pip install -e '.[test]')")
    import shutil

    pkg = ROOT / "AdaptiveBrushDicom" / "AdaptiveBrushDicomLib"
    copy = tmp_path / "src" / "AdaptiveBrushDicomLib"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "core" / "segment.py", "a", encoding="utf-8") as fh:
        fh.write("\nfrom AdaptiveBrushDicomLib.dicom import uids  # noqa: E402,F401\nimport pydicom  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", PYTHONPATH=str(tmp_path / "src"))
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    proc = subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout
    assert "AdaptiveBrushDicomLib.core is not allowed to import AdaptiveBrushDicomLib.dicom" in proc.stdout, proc.stdout
    assert "core/ is numpy only" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout


def test_architecture_doc_lists_every_module():
    """docs/architecture.md has a table row for every module of the package."""
    pkg = ROOT / "AdaptiveBrushDicom" / "AdaptiveBrushDicomLib"
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py"))
    missing = [m for m in modules if f"| `{m}` |" not in doc]
    assert not missing, f"add these modules to the table in docs/architecture.md: {missing}"
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", doc, flags=re.M))
    gone = sorted(listed - set(modules))
    assert not gone, f"docs/architecture.md lists modules that no longer exist: {gone}"
