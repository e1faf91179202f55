"""The reference series loader walks headers without pydicom and gives what pydicom gives.

Each series is loaded twice: as shipped (walker) and with the walker switched off (every
file read with pydicom, the loader before the walker). Grid, file order, UIDs and the
lazily read pydicom datasets must be the same; files the walker does not read (Implicit
VR, from the dcmqi corpus) are read with pydicom, also inside one series.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from AdaptiveBrushDicomLib.dicom import reference_headers, walker
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.errors import InputFileError

from conftest import corpus_path


def _pydicom_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise walker.NotSupported("walker switched off by the test")

    monkeypatch.setattr(reference_headers.walker, "read_header", refuse)


def _load_both(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ReferenceSeries, ReferenceSeries]:
    walked = ReferenceSeries.from_folder(folder)
    with monkeypatch.context() as m:
        _pydicom_only(m)
        plain = ReferenceSeries.from_folder(folder)
        plain.datasets  # read while the walker is off
    return walked, plain


def _assert_same(walked: ReferenceSeries, plain: ReferenceSeries) -> None:
    g, h = walked.grid, plain.grid
    assert g.shape_kji == h.shape_kji
    assert np.allclose(g.spacing_ijk, h.spacing_ijk) and np.allclose(g.origin, h.origin)
    assert np.allclose(g.direction, h.direction)
    assert (g.slice_positions_mm is None) == (h.slice_positions_mm is None)
    assert walked.paths == plain.paths
    assert walked.sop_instance_uids == plain.sop_instance_uids
    for attr in ("series_instance_uid", "study_instance_uid", "frame_of_reference_uid", "patient_id"):
        assert getattr(walked, attr) == getattr(plain, attr), attr
    for a, b in zip(walked.datasets, plain.datasets):
        assert a == b  # pydicom Dataset equality: every element


def _copy_series(src: Path, dst: Path, syntax: str | None) -> Path:
    dst.mkdir()
    for f in sorted(src.iterdir()):
        ds = pydicom.dcmread(f)
        if syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(dst / f.name, enforce_file_format=True)
    return dst


def test_ours_walked_equals_pydicom(phantom_series, monkeypatch):
    ref = phantom_series[4]
    assert all(h.plane is not None for h in ref.headers)  # every slice walked
    walked, plain = _load_both(ref.folder, monkeypatch)
    assert all(h.plane is None for h in plain.headers)
    _assert_same(walked, plain)
    assert walked.grid.shape_kji == phantom_series[3].shape_kji


@pytest.mark.parametrize("syntax", [None, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_corpus_ct_in_three_syntaxes(tmp_path, monkeypatch, syntax):
    """dcmqi's CT (Implicit VR, empty SpecificCharacterSet, slices stored in descending z)."""
    folder = _copy_series(corpus_path("dcmqi", "ct-3slice"), tmp_path / "ct", syntax)
    walked, plain = _load_both(folder, monkeypatch)
    assert all((h.plane is None) == (syntax is None) for h in walked.headers)
    _assert_same(walked, plain)
    assert "SpecificCharacterSet" not in walked.dataset(0)  # empty value dropped, as before


def test_mixed_syntaxes_in_one_series(tmp_path, monkeypatch):
    src = corpus_path("dcmqi", "ct-3slice")
    folder = _copy_series(src, tmp_path / "mixed", None)
    ds = pydicom.dcmread(src / "02.dcm")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(folder / "02.dcm", enforce_file_format=True)
    walked, plain = _load_both(folder, monkeypatch)
    assert [h.plane is not None for h in walked.headers].count(True) == 1
    _assert_same(walked, plain)


def test_non_ascii_patient_id_read_by_pydicom(tmp_path, monkeypatch):
    folder = _copy_series(corpus_path("dcmqi", "ct-3slice"), tmp_path / "utf8", ExplicitVRLittleEndian)
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID = "Läsion_肝臓"
        ds.save_as(f, enforce_file_format=True)
    walked, plain = _load_both(folder, monkeypatch)
    assert walked.patient_id == "Läsion_肝臓"
    _assert_same(walked, plain)


def test_errors_unchanged(tmp_path, monkeypatch):
    """Two series in one folder, Rows or orientation that differ: the same one-line errors either way."""
    src = corpus_path("dcmqi", "ct-3slice")
    tilted = [1, 0, 0, 0, 0.9998, 0.02]
    for name, edit in (("series", lambda ds: setattr(ds, "SeriesInstanceUID", "1.2.3.4")),
                       ("rows", lambda ds: setattr(ds, "Rows", int(ds.Rows) + 1)),
                       ("orientation", lambda ds: setattr(ds, "ImageOrientationPatient", tilted))):
        folder = _copy_series(src, tmp_path / name, ExplicitVRLittleEndian)
        ds = pydicom.dcmread(folder / "02.dcm")
        edit(ds)
        ds.save_as(folder / "02.dcm", enforce_file_format=True)
        with pytest.raises(InputFileError) as walked:
            ReferenceSeries.from_folder(folder)
        with monkeypatch.context() as m:
            _pydicom_only(m)
            with pytest.raises(InputFileError) as plain:
                ReferenceSeries.from_folder(folder)
        assert str(walked.value) == str(plain.value)
        assert name == "series" or "02.dcm" in str(walked.value)  # the slice that differs is named


def test_loading_imports_no_pydicom(phantom_series):
    """Grid and UIDs of a walked series without importing pydicom; datasets still work."""
    code = (
        "import sys\n"
        "from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries\n"
        f"ref = ReferenceSeries.from_folder({str(phantom_series[4].folder)!r})\n"
        "print(ref.grid.shape_kji, ref.series_instance_uid, len(ref.sop_instance_uids), ref.patient_id)\n"
        "print('pydicom' in sys.modules)\n"
        "print(ref.datasets[0].SOPInstanceUID == ref.sop_instance_uids[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    ref = phantom_series[4]
    assert out[0] == f"{ref.grid.shape_kji} {ref.series_instance_uid} {len(ref.paths)} {ref.patient_id}"
    assert out[1:3] == ["False", "True"]
