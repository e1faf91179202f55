"""``abdicom info`` with voxel counts reads an Explicit VR LE / Deflated LABELMAP SEG without
pydicom (issue 17), and says what it said when it took the SegmentNumbers from a pydicom dataset.

The voxel counts are paired with segments by SegmentNumber; those numbers used to come
from ``DecodedSeg.dataset`` (the whole file read again with pydicom, pixels included).
They now come from the segments the decoder read (``DecodedSeg.segment_numbers``). Each
case runs the real command in a fresh interpreter, checks that pydicom was never imported,
and compares its JSON with the summary built the old way in this process: ``seg_info``
plus the counts paired with the SegmentNumbers of ``pydicom.dcmread(...).SegmentSequence``.

SEGs: ours (fast writer, Deflated and Explicit VR LE), highdicom (Explicit VR LE),
dcmqi's corpus LABELMAPs (``sparse-labelmap-*.dcm``), and dcmqi LABELMAP and BINARY
output written from the corpus CT (when dcmqi is installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from AdaptiveBrushDicomLib.analysis.compare import label_boxes
from AdaptiveBrushDicomLib.analysis.metrics import voxel_volume_ml
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast
from AdaptiveBrushDicomLib.dicom.seg.info import seg_info
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.dicom.seg.write import SegWriter, write_seg
from abdicom_testkit.peers import dcmqi_encode, find_tool

from conftest import corpus_path


def _info_in_fresh_process(seg: Path) -> tuple[dict, bool, int]:
    code = (
        "import json, sys, io, contextlib\n"
        "from AdaptiveBrushDicomLib.cli.main import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['info', '--json', {str(seg)!r}])\n"
        "print(json.dumps({'rc': rc, 'out': buf.getvalue(), 'pydicom': 'pydicom' in sys.modules}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return json.loads(res["out"]), res["pydicom"], res["rc"]


def _old_info(seg: Path) -> dict:
    """The summary as ``abdicom info`` built it before: SegmentNumbers from pydicom."""
    info = seg_info(seg)
    decoded = read_seg(seg)
    lm = decoded.labelmap
    skip_background = decoded.segmentation_type == "LABELMAP"
    numbers = sorted(int(item.SegmentNumber) for item in pydicom.dcmread(seg).SegmentSequence
                     if not (skip_background and int(item.SegmentNumber) == 0))
    counts = label_boxes(lm.array)
    ml = voxel_volume_ml(lm.grid.spacing_ijk)
    extra = len(lm.segments) - len(numbers)
    described = iter(numbers)
    sizes = {}
    for s in lm.segments:
        if extra > 0 and s.label not in numbers and s.name == f"Segment {s.label}":
            number, extra = s.label, extra - 1
        else:
            number = next(described, s.label)
        voxels = counts.get((s.layer, s.label), (None, 0))[1]
        sizes[number] = (voxels, voxels * ml)
    for s in info.segments:
        if s.number in sizes:
            s.voxels, s.volume_ml = sizes[s.number]
    return json.loads(json.dumps(info.to_dict()))


def _ours(tmp_path: Path) -> list[Path]:
    ct = corpus_path("dcmqi", "ct-3slice")
    ref = ReferenceSeries.from_folder(ct)
    nk, nj, ni = ref.grid.shape_kji
    labels = np.zeros((nk, nj, ni), dtype=np.uint8)
    labels[0, 100:180, 200:260] = 3  # labels 3, 7, 12: SegmentNumbers 1..3 with restored labels
    labels[1:, 300:360, 100:140] = 7
    labels[2, 10:20, 10:30] = 12
    segments = [Segment(label=v, name=f"part {v}", color=(20 * v, 100, 200)) for v in (3, 7, 12)]
    lm = LabelMap(labels, ref.grid, segments)
    out = []
    for compression in (Compression.DEFLATE, Compression.EXPLICIT):
        p = tmp_path / f"ours_{compression.name}.dcm"
        assert write_seg(lm, ref, p, compression=compression).writer is SegWriter.FAST
        out.append(p)
    old = seg_fast.ENABLED
    try:
        seg_fast.ENABLED = False
        p = tmp_path / "highdicom.dcm"
        assert write_seg(lm, ref, p, compression=Compression.EXPLICIT).writer is SegWriter.HIGHDICOM
        out.append(p)
    finally:
        seg_fast.ENABLED = old
    return out


def _dcmqi(tmp_path: Path) -> list[Path]:
    if find_tool("itkimage2segimage") is None:
        return []
    ct = corpus_path("dcmqi", "ct-3slice")
    spec = json.loads(corpus_path("dcmqi", "seg-example_liver_spine.json").read_text())
    spec["segmentAttributes"] = [[item for group in spec["segmentAttributes"] for item in group]]
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(spec))
    out = []
    for labelmap in (True, False):
        p = tmp_path / f"dcmqi_{'labelmap' if labelmap else 'binary'}.dcm"
        run = dcmqi_encode([corpus_path("dcmqi", "liver_spine_seg.nrrd")], meta, ct, p, labelmap=labelmap)
        assert run.ok, run.output[-2000:]
        out.append(p)
    return out


def test_info_with_voxels_imports_no_pydicom_and_says_what_it_said(tmp_path):
    segs = _ours(tmp_path) + _dcmqi(tmp_path) + [corpus_path("dcmqi", f"sparse-labelmap-{n}.dcm")
                                                 for n in ("noppv", "ppv5")]
    kinds = set()
    for seg in segs:
        ds = pydicom.dcmread(seg, stop_before_pixels=True)
        assert str(ds.file_meta.TransferSyntaxUID) in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99")
        kinds.add(str(ds.SegmentationType))
        got, imported, rc = _info_in_fresh_process(seg)
        assert rc == 0
        # the decoder walks LABELMAP SEGs; a BINARY one is still read with pydicom
        assert imported == (ds.SegmentationType != "LABELMAP"), f"{seg.name}: pydicom imported: {imported}"
        want = _old_info(seg)
        assert got == want, seg.name
        counted = [s for s in got["segments"] if s["number"] != 0]
        assert counted and all(s["voxels"] is not None for s in counted), seg.name
        assert any(s["voxels"] > 0 for s in counted), seg.name
    assert "LABELMAP" in kinds


@pytest.mark.parametrize("name", ["noppv", "ppv5"])
def test_segment_numbers_are_the_segment_sequence_numbers(name):
    seg = corpus_path("dcmqi", f"sparse-labelmap-{name}.dcm")
    numbers = [int(i.SegmentNumber) for i in pydicom.dcmread(seg).SegmentSequence]
    assert numbers == [0, 1]  # dcmqi's Background item, then the liver
    assert read_seg(seg).segment_numbers == [1]
