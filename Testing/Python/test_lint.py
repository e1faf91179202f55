"""Static checks of the source, run with the suite (and so in CI):

* ruff (rule set in pyproject.toml ``[tool.ruff]``),
* mypy (pyproject.toml ``[tool.mypy]``: the whole package with every ``--strict`` flag),
* import-linter (pyproject.toml ``[tool.importlinter]``: the layer contract
  ``cli | slicer -> runs | store -> dicom -> io -> core -> errors``, no Slicer modules in
  the package, no DICOM libraries in ``core/``),
* sizes: no module over 500 lines, no function over 80 (docstring excluded), in the
  package, the Slicer module files and the DICOM plugin (``SIZE_ALLOWED`` lists what is
  still being split),
* numpydoc ``Raises`` on every function that raises (ruff DOC501, a preview rule, on the
  package; ``RAISES_ALLOWED`` lists the files not yet clean).

The tools come with the ``test`` extra (``make test`` installs it). A test skips only when
its tool is not installed and says which one.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
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


def test_mypy_passes_strict():
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


# ------------------------------------------------------------------------ sizes
#: Roots of the size rule: the Slicer extension's Python (package, module, GUI, plugin).
SIZE_ROOTS = ("AdaptiveBrushDicom", "DICOMLabelMapSegPlugin")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80  # from ``def`` to its last line, the docstring excluded

#: Deliberate exceptions, each with its reason (empty: every module and function keeps the
#: rule). Keys: a module path (over ``MAX_MODULE_LINES``) or ``path::qualified.function``
#: (over ``MAX_FUNCTION_LINES``), relative to the repository. A stale entry fails the test.
SIZE_ALLOWED: dict[str, str] = {}


def _function_lengths(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length without docstring) of every function in ``tree``."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = child.end_lineno - child.lineno + 1
                    first = child.body[0] if child.body else None
                    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                            and isinstance(first.value.value, str):
                        length -= first.end_lineno - first.lineno + 1
                    found.append((name, child.lineno, length))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def size_violations(root: Path, roots: tuple[str, ...] = SIZE_ROOTS) -> dict[str, str]:
    """Every module over ``MAX_MODULE_LINES`` and function over ``MAX_FUNCTION_LINES``
    under ``root/<roots>``: key (as in :data:`SIZE_ALLOWED`) -> what is too long."""
    out: dict[str, str] = {}
    for top in roots:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            text = path.read_text(encoding="utf-8")
            n = len(text.splitlines())
            if n > MAX_MODULE_LINES:
                out[rel] = f"module has {n} lines (max {MAX_MODULE_LINES})"
            for name, line, length in _function_lengths(ast.parse(text, filename=rel)):
                if length > MAX_FUNCTION_LINES:
                    out[f"{rel}::{name}"] = (f"function at line {line} has {length} lines without its docstring "
                                             f"(max {MAX_FUNCTION_LINES})")
    return out


def _stale(allowed: dict[str, str], found: set[str], what: str) -> None:
    stale = sorted(set(allowed) - found)
    if stale:
        pytest.fail(f"{what}: these entries are no longer needed, delete them: {stale}")


def test_modules_and_functions_stay_small():
    """No module over 500 lines and no function over 80 (docstring excluded), except the
    listed ones still being split."""
    found = size_violations(ROOT)
    new = {k: v for k, v in found.items() if k not in SIZE_ALLOWED}
    assert not new, "split these (one concept per module, one step per function):\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(new.items()))
    _stale(SIZE_ALLOWED, set(found), "SIZE_ALLOWED")


def test_size_rule_catches_a_long_module_and_function(tmp_path):
    """The size rule is not vacuous: a long function, a long method and a long module are
    found; a long docstring alone is not counted."""
    pkg = tmp_path / "AdaptiveBrushDicom"
    pkg.mkdir()

    def lines(n: int, indent: str) -> str:
        return "".join(f"{indent}x{i} = {i}\n" for i in range(n))

    def docstring(indent: str) -> str:  # 31 lines
        return f'{indent}"""Long docstring.\n' + "\n" * 29 + f'{indent}"""\n'

    # def + docstring + 79 statements = 80 lines without the docstring: allowed
    (pkg / "short.py").write_text("def fits():\n" + docstring("    ") + lines(79, "    "), encoding="utf-8")
    (pkg / "long.py").write_text(
        "def too_long():\n" + lines(80, "    ")  # 81 lines
        + "\n\nclass C:\n    def method(self):\n" + docstring("        ") + lines(81, "        ")  # 82
        + "\n" * 400, encoding="utf-8")
    found = size_violations(tmp_path, ("AdaptiveBrushDicom",))
    assert set(found) == {"AdaptiveBrushDicom/long.py", "AdaptiveBrushDicom/long.py::too_long",
                          "AdaptiveBrushDicom/long.py::C.method"}, found
    assert "81 lines" in found["AdaptiveBrushDicom/long.py::too_long"]
    assert "82 lines" in found["AdaptiveBrushDicom/long.py::C.method"]
    assert "module has 597 lines" in found["AdaptiveBrushDicom/long.py"]


# ------------------------------------------------------------------ Raises sections
#: Where the numpydoc ``Raises`` rule (ruff DOC501) is checked.
RAISES_ROOT = "AdaptiveBrushDicom/AdaptiveBrushDicomLib"

#: Files with functions that raise an exception their docstring's ``Raises`` does not name
#: (ruff ``--preview --select DOC501``), deliberate exceptions: path -> reason (empty:
#: every file keeps the rule). A stale entry fails the test.
RAISES_ALLOWED: dict[str, str] = {}


def _doc501(paths: list[str]) -> subprocess.CompletedProcess[str]:
    return _run("ruff", [sys.executable, "-m", "ruff", "check", "--preview", "--select", "DOC501", "--no-cache",
                         "--output-format", "concise", *paths])


def _doc501_files(stdout: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        m = re.match(r"^(.+?\.py):\d+:\d+: ", line)
        if m:
            out.setdefault(Path(m.group(1)).as_posix(), []).append(line)
    return out


def test_raising_functions_document_raises():
    """Every function of the package that raises names the exception in ``Raises``
    (numpydoc; ruff DOC501), except in the listed files."""
    proc = _doc501([RAISES_ROOT])
    found = _doc501_files(proc.stdout)
    assert proc.returncode in (0, 1) and (proc.returncode == 0) == (not found), proc.stdout + proc.stderr
    new = {k: v for k, v in found.items() if k not in RAISES_ALLOWED}
    assert not new, "add a numpydoc Raises section (the exception and when) to:\n" + "\n".join(
        line for lines in new.values() for line in lines)
    _stale(RAISES_ALLOWED, set(found), "RAISES_ALLOWED")


def test_raises_rule_catches_an_undocumented_raise(tmp_path):
    """The Raises check is not vacuous: an undocumented raise is found, a documented one
    is not."""
    (tmp_path / "m.py").write_text(
        'def bad(x: int) -> int:\n    """Half of x."""\n    if x % 2:\n        raise ValueError("odd")\n'
        '    return x // 2\n\n\n'
        'def good(x: int) -> int:\n    """Half of x.\n\n    Raises\n    ------\n    ValueError\n'
        '        ``x`` is odd.\n    """\n    if x % 2:\n        raise ValueError("odd")\n    return x // 2\n',
        encoding="utf-8")
    proc = _doc501([str(tmp_path / "m.py")])
    found = _doc501_files(proc.stdout)
    assert list(found) == [(tmp_path / "m.py").as_posix()], proc.stdout
    (finding,) = found[(tmp_path / "m.py").as_posix()]
    assert finding.startswith(f"{(tmp_path / 'm.py').as_posix()}:2:") and "ValueError" in finding, finding


def test_transfer_syntax_uids_are_spelled_out_once():
    """Every transfer syntax UID literal lives in dicom/compression.py (Compression,
    ReadOnlySyntax); other modules use the enums."""
    pkg = ROOT / "AdaptiveBrushDicom" / "AdaptiveBrushDicomLib"
    pattern = re.compile(r"""["']1\.2\.840\.10008\.1\.2(?:\.\d+)*["']""")
    found = {str(p.relative_to(ROOT)): pattern.findall(p.read_text(encoding="utf-8"))
             for p in sorted(pkg.rglob("*.py")) if p.name != "compression.py"}
    found = {k: v for k, v in found.items() if v}
    assert not found, f"use dicom.compression's enums instead of these literals: {found}"
    assert pattern.findall((pkg / "dicom" / "compression.py").read_text(encoding="utf-8"))
