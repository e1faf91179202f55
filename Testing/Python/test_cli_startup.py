"""The CLI's start-up: what a whole `abdicom` process imports (issue 17). Times are in the
benchmark (benchmarks/run_all.py); here only what is imported, which decides them."""

from __future__ import annotations

import json
import subprocess
import sys


from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg


def _modules_after(args: list[str]) -> dict:
    code = (
        "import json, sys\n"
        "from AdaptiveBrushDicomLib.cli.main import main\n"
        f"rc = main({args!r})\n"
        "mods = {m: (m in sys.modules and sys.modules[m] is not None) for m in "
        "('requests', 'highdicom', 'SimpleITK', 'pydicom')}\n"
        "import requests  # still importable for the DICOMweb commands\n"
        "print(json.dumps({'rc': rc, 'mods': mods, 'requests_ok': bool(requests.get)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_and_decode_load_neither_requests_nor_highdicom_segmentation(tmp_path, phantom_series):
    _image, labels, segments, grid, ref = phantom_series
    seg = tmp_path / "s.dcm"
    write_seg(LabelMap(labels, grid, segments), ref, seg)
    out = _modules_after(["decode", str(seg), "--reference", str(ref.folder), "--out", str(tmp_path / "d.seg.nrrd")])
    assert out["rc"] == 0 and out["requests_ok"]
    assert out["mods"]["pydicom"] and not out["mods"]["requests"]
    assert not out["mods"]["highdicom"] and not out["mods"]["SimpleITK"]

    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    src = tmp_path / "in.seg.nrrd"
    write_seg_nrrd(LabelMap(labels, grid, segments), src)
    out = _modules_after(["export", str(src), "--reference", str(ref.folder), "--out", str(tmp_path / "e.dcm")])
    assert out["rc"] == 0 and out["requests_ok"]
    assert not out["mods"]["requests"]
    # highdicom is imported for the segment descriptions, but never builds a Segmentation
    # (whose first use loads the DICOM standard's module tables, ~110 MB and ~0.5 s)
    check = subprocess.run(
        [sys.executable, "-c",
         "import highdicom\n"
         "calls = []\n"
         "init = highdicom.seg.Segmentation.__init__\n"
         "def counting(self, *a, **k):\n"
         "    calls.append(1)\n"
         "    return init(self, *a, **k)\n"
         "highdicom.seg.Segmentation.__init__ = counting\n"
         "from AdaptiveBrushDicomLib.cli.main import main\n"
         f"rc = main(['export', {str(src)!r}, '--reference', {str(ref.folder)!r}, '--out', {str(tmp_path / 'f.dcm')!r}])\n"
         "print(rc, len(calls))\n"],
        capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1] == "0 0", check.stdout


def test_requests_hidden_only_during_the_pydicom_import():
    code = (
        "import sys\n"
        "from AdaptiveBrushDicomLib.cli.startup import import_pydicom_without_requests as f\n"
        "f()\n"
        "assert 'pydicom' in sys.modules and 'requests' not in sys.modules\n"
        "import requests\n"
        "f()  # no-op now\n"
        "print('ok', requests.__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok requests", proc.stderr
