"""``io/slicerio_import.py``: slicerio imported without :mod:`importlib.metadata` (40-90 ms
of an ``abdicom decode``), with the same ``slicerio.__version__`` the real lookup gives."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest

from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.io import slicerio_import


def _fresh(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_slicerio_imported_without_importlib_metadata_same_version():
    out = _fresh(
        "import json, sys\n"
        "from AdaptiveBrushDicomLib.io.slicerio_import import import_slicerio\n"
        "s = import_slicerio()\n"
        "state = {'metadata': 'importlib.metadata' in sys.modules, 'email': 'email' in sys.modules,\n"
        "         'version': s.__version__, 'reads': callable(s.read_segmentation)}\n"
        "import importlib.metadata\n"
        "state['real'] = importlib.metadata.version('slicerio')\n"
        "state['real_module'] = type(importlib.metadata.distribution).__name__\n"
        "print(json.dumps(state))\n"
    )
    assert not out["metadata"] and not out["email"]
    assert out["version"] == out["real"] == importlib.metadata.version("slicerio")
    assert out["reads"] and out["real_module"] == "function"


def test_dist_info_version_equals_the_real_lookup_for_every_installed_distribution():
    names = {d.metadata["Name"] for d in importlib.metadata.distributions() if d.metadata["Name"]}
    assert len(names) > 20
    answered = 0
    for name in sorted(names):
        mine = slicerio_import.dist_info_version(name)
        if mine is not None:  # None: the real lookup is asked instead
            assert mine == importlib.metadata.version(name), name
            answered += 1
    assert answered > len(names) // 2


def _dist(root, dirname, version="1.2.3", metadata=True):
    d = root / dirname
    d.mkdir(parents=True)
    if metadata:
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demo-pkg\nVersion: {version}\n\nbody\n")
    return d


def test_dist_info_version_leaves_unclear_cases_to_the_real_lookup(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    _dist(b, "demo_pkg-1.2.3.dist-info")
    monkeypatch.setattr(sys, "path", [str(a), str(b)])
    a.mkdir()
    assert slicerio_import.dist_info_version("demo-pkg") == "1.2.3"
    assert slicerio_import.dist_info_version("Demo.Pkg") == "1.2.3"  # names compared as pip does
    _dist(a, "demo_pkg-0.9.egg-info")  # an egg first on the path: the real lookup decides
    assert slicerio_import.dist_info_version("demo-pkg") is None
    (a / "demo_pkg-0.9.egg-info").rename(a / "demo_pkg-0.9.dist-info")
    _dist(a, "demo_pkg-1.0.dist-info")  # two on one entry
    assert slicerio_import.dist_info_version("demo-pkg") is None
    monkeypatch.setattr(sys, "path", [str(tmp_path / "c.zip"), str(b)])
    (tmp_path / "c.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    assert slicerio_import.dist_info_version("demo-pkg") is None
    monkeypatch.setattr(sys, "path", [str(tmp_path / "d")])
    _dist(tmp_path / "d", "demo_pkg-1.2.3.dist-info", metadata=False)
    assert slicerio_import.dist_info_version("demo-pkg") is None
    assert slicerio_import.dist_info_version("no-such-distribution") is None


def test_stand_in_falls_back_to_the_real_module(monkeypatch):
    stand_in = slicerio_import._stand_in()
    assert stand_in.version("pydicom") == importlib.metadata.version("pydicom")
    with pytest.raises(stand_in.PackageNotFoundError):
        stand_in.version("no-such-distribution-abdicom")
    assert issubclass(stand_in.PackageNotFoundError, ModuleNotFoundError)
    assert stand_in.distributions is importlib.metadata.distributions
    with pytest.raises(AttributeError):
        stand_in.__path__  # noqa: B018 - what the import system asks a module


def test_decode_imports_no_importlib_metadata(tmp_path, phantom_series):
    _image, labels, segments, grid, ref = phantom_series
    seg = tmp_path / "s.dcm"
    write_seg(LabelMap(labels, grid, segments), ref, seg)
    out = _fresh(
        "import json, sys\n"
        "from AdaptiveBrushDicomLib.cli.main import main\n"
        f"rc = main(['decode', {str(seg)!r}, '--reference', {str(ref.folder)!r}, '--out', "
        f"{str(tmp_path / 'd.seg.nrrd')!r}])\n"
        "print(json.dumps({'rc': rc, 'metadata': 'importlib.metadata' in sys.modules,\n"
        "                  'slicerio': 'slicerio' in sys.modules}))\n"
    )
    assert out == {"rc": 0, "metadata": False, "slicerio": True}
    from AdaptiveBrushDicomLib.io.volumes import read_seg_nrrd

    back = read_seg_nrrd(tmp_path / "d.seg.nrrd")
    assert (back.array == labels).all()
