"""The fast writer's template takes every slice's values from its walked header
(``dicom/seg/fast_sources.py``) and writes exactly what the pydicom-only template wrote.

The pydicom-only template (before this module) read every source header with pydicom and
took the UIDs, geometry and PlanePosition text from those datasets: that is
``fast_sources.from_dataset`` of every slice, which these tests force to get the old
output. Each case compares:

* the walked slices with the pydicom slices (equal dataclasses: every value the template
  uses);
* the written SEG files byte for byte (fixed content date), walked vs pydicom-only;
* for the real corpus CT (re-encoded Explicit VR LE and Deflated so the walker reads it,
  and as stored, Implicit VR, which the walker leaves to pydicom): the file highdicom
  writes, element by element (test_fast_path's comparison).

Odd headers: positions that need pydicom's DS auto-format (17 characters), NUL and space
padding, an IS-encoded position (pydicom decides), one slice the walker cannot read among
walked ones, irregular spacing, all orientations of test_fast_path.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast
from AdaptiveBrushDicomLib.dicom.seg import fast_sources
from AdaptiveBrushDicomLib.dicom.seg.write import SegWriter, write_seg
from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

from conftest import corpus_path
from test_fast_path import DIRECTIONS, _assert_equivalent, _blobs, _both, _segments

WHEN = datetime(2026, 1, 2, 3, 4, 5)


def _pydicom_slices(ref: ReferenceSeries) -> list[fast_sources.SourceSlice]:
    return [fast_sources.from_dataset(ds) for ds in ref.datasets]


def _write(lm, ref, path, compression, monkeypatch, walked: bool):
    seg_fast.TEMPLATES.clear()
    with monkeypatch.context() as m:
        if not walked:
            m.setattr(fast_sources, "source_slices", lambda headers: _pydicom_slices(ref))
        res = write_seg(lm, ref, path, compression=compression, content_datetime=WHEN)
    seg_fast.TEMPLATES.clear()
    assert res.writer is SegWriter.FAST
    return path.read_bytes()


def _check(tmp_path, ref: ReferenceSeries, monkeypatch, expect_walked: int | None = None, labels=(1, 2, 3)):
    """Walked slices == pydicom slices; walked and pydicom-only SEGs byte-equal."""
    walked = fast_sources.source_slices(ref.headers)
    assert walked == _pydicom_slices(ref)
    if expect_walked is not None:
        n = 0
        for h in ref.headers:
            try:
                fast_sources.from_walked(h)
                n += 1
            except fast_sources.NotSupported:
                pass
        assert n == expect_walked
    lm = LabelMap(_blobs(ref.grid.shape_kji, list(labels), empty=(0,)), ref.grid, _segments(list(labels)))
    for compression in (Compression.DEFLATE, Compression.EXPLICIT):
        new = _write(lm, ref, tmp_path / f"new_{compression.name}.dcm", compression, monkeypatch, True)
        old = _write(lm, ref, tmp_path / f"old_{compression.name}.dcm", compression, monkeypatch, False)
        assert new == old, f"{compression.name}: the walked template writes other bytes"
    return lm


def _synthetic(tmp_path: Path, direction, shape=(9, 20, 22), name="ref", spacing=(0.9, 0.8, 2.0),
               origin=(-10.5, 20.25, 33.0)) -> Path:
    grid = Grid(shape, spacing, origin, direction)
    image = np.random.default_rng(3).integers(0, 500, size=shape).astype(np.int16)
    create_synthetic_series(image, grid, tmp_path / name, patient_id="AdaptiveBrush_sources")
    return tmp_path / name


def _reencoded(src: Path, out: Path, syntax) -> Path:
    out.mkdir()
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(out / f.name, enforce_file_format=True)
    return out


@pytest.mark.parametrize("orientation", list(DIRECTIONS))
def test_walked_template_equals_pydicom_template_synthetic(tmp_path, monkeypatch, orientation):
    ref = ReferenceSeries.from_folder(_synthetic(tmp_path, DIRECTIONS[orientation]))
    _check(tmp_path, ref, monkeypatch, expect_walked=len(ref.headers))


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, None])
def test_walked_template_equals_pydicom_and_highdicom_on_corpus_ct(tmp_path, monkeypatch, syntax):
    ct = corpus_path("dcmqi", "ct-3slice")
    folder = ct if syntax is None else _reencoded(ct, tmp_path / "ct", syntax)
    ref = ReferenceSeries.from_folder(folder)
    # as stored (Implicit VR) the walker reads none of them: every slice comes from pydicom
    lm = _check(tmp_path, ref, monkeypatch, expect_walked=0 if syntax is None else 3)
    slow, fast = _both(tmp_path, lm, ref, Compression.DEFLATE, tag="hd")
    _assert_equivalent(slow, fast, lm, ref)


def _patch(path: Path, **raw: tuple[str, bytes]) -> None:
    """Rewrite elements of one file with exact raw values (keyword=(VR, bytes), padded to even)."""
    ds = pydicom.dcmread(path)
    for keyword, (vr, value) in raw.items():
        value += b" " if len(value) % 2 else b""
        tag = pydicom.tag.Tag(pydicom.datadict.tag_for_keyword(keyword))
        ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)
    ds.save_as(path, enforce_file_format=True)


def test_odd_position_texts_and_a_slice_the_walker_cannot_read(tmp_path, monkeypatch):
    folder = _synthetic(tmp_path, DIRECTIONS["oblique"], shape=(6, 12, 14))
    files = sorted(folder.glob("*.dcm"))
    pos = [[float(v) for v in pydicom.dcmread(f).ImagePositionPatient] for f in files]
    # values of 17 characters: pydicom's DS auto-format rewrites them (format_number_as_ds)
    long_text = "\\".join(f"{v:.13f}" for v in pos[0])
    assert max(len(v) for v in long_text.split("\\")) > 16
    _patch(files[0], ImagePositionPatient=("DS", long_text.encode()))
    # leading and inner spaces, NUL padding
    text = f" {pos[1][0]}\\ {pos[1][1]}\\{pos[1][2]}".encode()
    _patch(files[1], ImagePositionPatient=("DS", text + (b"\x00" if len(text) % 2 else b"\x00\x00")))
    # one slice the walker cannot read (Implicit VR): pydicom reads it, as reference_headers does
    d3 = pydicom.dcmread(files[3])
    d3.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    d3.save_as(files[3], enforce_file_format=True)
    ref = ReferenceSeries.from_folder(folder)
    assert [h.plane is None for h in ref.headers].count(True) == 1
    slices = fast_sources.source_slices(ref.headers)
    assert any(len(v) > 16 for v in long_text.split("\\"))
    assert slices[[h.path for h in ref.headers].index(files[0])].position_text != long_text  # auto-formatted
    _check(tmp_path, ref, monkeypatch, expect_walked=len(files) - 1)


def test_position_stored_as_integer_string_is_read_by_pydicom(tmp_path, monkeypatch):
    folder = _synthetic(tmp_path, np.eye(3), shape=(5, 10, 12), spacing=(1.0, 1.0, 2.0), origin=(-10.0, 20.0, 33.0))
    files = sorted(folder.glob("*.dcm"))
    pos = [int(round(float(v))) for v in pydicom.dcmread(files[2]).ImagePositionPatient]
    _patch(files[2], ImagePositionPatient=("IS", "\\".join(str(v) for v in pos).encode()))
    ref = ReferenceSeries.from_folder(folder)
    assert all(h.plane is not None for h in ref.headers)  # the walker reads IS numbers ...
    _check(tmp_path, ref, monkeypatch, expect_walked=len(files) - 1)  # ... the template takes pydicom's


@pytest.mark.parametrize("gap_mm", [0.0, 0.5])
def test_spacing_computed_from_walked_positions(tmp_path, monkeypatch, gap_mm):
    """Sources without SpacingBetweenSlices: the template computes it from the positions
    (regular stack) or leaves it out (one gap 0.5 mm wider: irregular beyond 1 %)."""
    folder = _synthetic(tmp_path, DIRECTIONS["sagittal"], shape=(6, 10, 12))
    first = ReferenceSeries.from_folder(folder)
    normal = np.cross(first.headers[0].orientation()[3:], first.headers[0].orientation()[:3])
    for k, h in enumerate(first.headers):
        ds = pydicom.dcmread(h.path)
        del ds.SpacingBetweenSlices
        if k >= 3:
            ds.ImagePositionPatient = [f"{v:.6g}" for v in h.position() + gap_mm * normal]
        ds.save_as(h.path, enforce_file_format=True)
    ref = ReferenceSeries.from_folder(folder)
    _check(tmp_path, ref, monkeypatch, expect_walked=len(ref.headers))
    measures = pydicom.dcmread(tmp_path / "new_EXPLICIT.dcm").SharedFunctionalGroupsSequence[0] \
        .PixelMeasuresSequence[0]
    assert ("SpacingBetweenSlices" in measures) == (gap_mm == 0.0)
