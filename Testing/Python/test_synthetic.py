"""Synthetic DICOM series: geometry and voxels read back by SimpleITK and by us."""

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from AdaptiveBrushDicomLib.errors import OutputExistsError
from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
from AdaptiveBrushDicomLib.dicom.synthetic import choose_encoding, create_synthetic_series, patient_id_for
from AdaptiveBrushDicomLib.io.volumes import read_volume

from conftest import corpus_path, rotation

AXIAL = np.eye(3)
SAGITTAL = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # i along P, j along -S, k along -L
CORONAL = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)
OBLIQUE = rotation(0.25, -0.15, 0.4)


@pytest.mark.parametrize("name,direction", [("axial", AXIAL), ("sagittal", SAGITTAL), ("coronal", CORONAL),
                                            ("oblique", OBLIQUE)])
def test_grid_and_voxels_read_back_by_simpleitk(tmp_path, name, direction):
    assert np.linalg.det(direction) > 0
    grid = Grid((6, 10, 12), (0.8, 0.9, 2.5), (12.5, -30.25, 7.0), direction)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 3000, size=grid.shape_kji).astype(np.int16)
    res = create_synthetic_series(image, grid, tmp_path / name, patient_id=patient_id_for(name))
    assert [p.name for p in res.paths] == [f"{k:04d}.dcm" for k in range(1, 7)]
    arr, g2 = read_volume(tmp_path / name)  # SimpleITK / GDCM, not our reader
    assert g2.almost_equal(grid), (g2.describe(), grid.describe())
    assert np.array_equal(arr, image)
    ds = pydicom.dcmread(res.paths[3])
    assert ds.PatientID == "AdaptiveBrush_" + name
    assert ds.FrameOfReferenceUID == res.frame_of_reference_uid
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], grid.index_to_lps([0, 0, 3]), atol=1e-4)
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.9, 0.8])
    assert float(ds.SliceThickness) == pytest.approx(2.5)
    assert ReferenceSeries.from_folder(tmp_path / name).grid.almost_equal(grid)


def test_ct_in_hounsfield_exact_and_float_bounded(tmp_path):
    grid = Grid((3, 8, 8), (1, 1, 1), (0, 0, 0))
    hu = np.random.default_rng(2).integers(-1024, 3071, size=grid.shape_kji).astype(np.int32)
    res = create_synthetic_series(hu, grid, tmp_path / "ct", patient_id="p", modality="CT")
    ds = pydicom.dcmread(res.paths[0])
    assert ds.Modality == "CT" and ds.PixelRepresentation == 1 and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    arr, _ = read_volume(tmp_path / "ct")
    assert np.array_equal(arr, hu)

    fl = np.random.default_rng(3).normal(0, 400, size=grid.shape_kji).astype(np.float32)
    res = create_synthetic_series(fl, grid, tmp_path / "float", patient_id="p", modality="MR")
    arr, _ = read_volume(tmp_path / "float")
    err = np.abs(arr.astype(np.float64) - fl).max()
    assert 0 < err <= res.encoding.max_abs_error * 1.0001
    assert res.encoding.max_abs_error < (fl.max() - fl.min()) / 65535


def test_integer_valued_float_is_exact():
    enc = choose_encoding(np.array([[[-5.0, 7.0]]]))
    assert enc.exact and enc.signed


def test_uids_are_deterministic_and_content_dependent(tmp_path):
    grid = Grid((2, 4, 4), (1, 1, 1), (0, 0, 0))
    img = np.arange(32, dtype=np.uint16).reshape(grid.shape_kji)
    a = create_synthetic_series(img, grid, tmp_path / "a", patient_id="AdaptiveBrush_x")
    b = create_synthetic_series(img, grid, tmp_path / "b", patient_id="AdaptiveBrush_x")
    assert (a.study_instance_uid, a.series_instance_uid, a.sop_instance_uids) == (
        b.study_instance_uid, b.series_instance_uid, b.sop_instance_uids)
    c = create_synthetic_series(img + 1, grid, tmp_path / "c", patient_id="AdaptiveBrush_x")
    assert c.series_instance_uid != a.series_instance_uid
    d = create_synthetic_series(img, grid, tmp_path / "d", patient_id="AdaptiveBrush_y")
    assert d.study_instance_uid != a.study_instance_uid
    # same folder again: reused, nothing rewritten
    mtime = a.paths[0].stat().st_mtime_ns
    again = create_synthetic_series(img, grid, tmp_path / "a", patient_id="AdaptiveBrush_x")
    assert again.reused and a.paths[0].stat().st_mtime_ns == mtime
    with pytest.raises(OutputExistsError):
        create_synthetic_series(img + 1, grid, tmp_path / "a", patient_id="AdaptiveBrush_x")


def test_from_dicom_folder_of_real_ct(tmp_path):
    ct = corpus_path("dcmqi", "ct-3slice")
    arr, grid = read_volume(ct)
    res = create_synthetic_series(arr, grid, tmp_path / "s", patient_id="AdaptiveBrush_ct", modality="CT")
    arr2, grid2 = read_volume(tmp_path / "s")
    assert grid2.almost_equal(grid) and np.array_equal(arr, arr2)
    assert len(res.paths) == 3


def test_reads_nifti_and_mha(tmp_path):
    img = sitk.GetImageFromArray(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    img.SetSpacing((0.5, 0.6, 3.0))
    img.SetOrigin((1, 2, 3))
    for ext in (".nii.gz", ".mha", ".nrrd"):
        sitk.WriteImage(img, str(tmp_path / f"v{ext}"))
        arr, g = read_volume(tmp_path / f"v{ext}")
        assert arr.shape == (3, 4, 5) and np.allclose(g.spacing_ijk, (0.5, 0.6, 3.0))
