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
        "('requests', 'highdicom', 'SimpleITK', 'pydicom', 'pydicom.sr.codedict', "
        "'AdaptiveBrushDicomLib.dicom.seg.fast', 'numpy.ma')}\n"
        "import requests  # still importable for the DICOMweb commands\n"
        "print(json.dumps({'rc': rc, 'mods': mods, 'requests_ok': bool(requests.get)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_and_decode_load_neither_requests_nor_highdicom(tmp_path, phantom_series):
    """Neither command imports highdicom (0.25 s of start-up; its first Segmentation loads
    the standard's module tables, ~110 MB and ~0.5 s) nor pydicom's code dictionary
    (``pydicom.sr.codedict``, 0.1 s): the fast writer builds the segment items itself."""
    _image, labels, segments, grid, ref = phantom_series
    seg = tmp_path / "s.dcm"
    write_seg(LabelMap(labels, grid, segments), ref, seg)
    out = _modules_after(["decode", str(seg), "--reference", str(ref.folder), "--out", str(tmp_path / "d.seg.nrrd")])
    assert out["rc"] == 0 and out["requests_ok"]
    # our Deflated SEG and its series are walked: no pydicom at all (seg/source_walked.py)
    assert not out["mods"]["pydicom"] and not out["mods"]["requests"]
    assert not out["mods"]["highdicom"] and not out["mods"]["SimpleITK"]
    assert not out["mods"]["numpy.ma"]  # np.median would import it (core.geometry.median_spacing)

    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    src = tmp_path / "in.seg.nrrd"
    write_seg_nrrd(LabelMap(labels, grid, segments), src)
    out = _modules_after(["export", str(src), "--reference", str(ref.folder), "--out", str(tmp_path / "e.dcm"),
                          "--json"])
    assert out["rc"] == 0 and out["requests_ok"]
    assert out["mods"]["pydicom"] and not out["mods"]["requests"]
    assert not out["mods"]["highdicom"] and not out["mods"]["pydicom.sr.codedict"]
    assert out["mods"]["AdaptiveBrushDicomLib.dicom.seg.fast"]  # the fast writer wrote it
    # and the file is the one the highdicom path writes (test_fast_path compares them)
    import pydicom

    ds = pydicom.dcmread(tmp_path / "e.dcm")
    assert [int(i.SegmentNumber) for i in ds.SegmentSequence] == list(range(len(segments) + 1))


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
