"""Synthetic DICOM series from any image volume (design: "synthetic.py").

One single-frame file per slice, ``0001.dcm``, ``0002.dcm`` ... in k order, with
ImagePositionPatient / ImageOrientationPatient / PixelSpacing / SliceThickness /
FrameOfReferenceUID describing the input :class:`~.geometry.Grid` exactly.

Voxel storage policy (documented in docs/synthetic-series.md):

* integer images within 0..65535 are stored as unsigned 16-bit, within -32768..32767 as
  signed 16-bit: **exact**;
* float images whose values are all integers in those ranges: stored the same way, exact;
* anything else (fractional floats, wider integers) is mapped linearly onto 0..65535 with
  ``RescaleSlope = (max - min) / 65535`` and ``RescaleIntercept = min``; the round-trip
  error is at most ``RescaleSlope / 2`` per voxel (reported in the result).

UIDs are derived from the patient id and a digest of voxels + geometry (see ``uids``),
so the same input always yields the same Study, Series, Frame of Reference and SOP UIDs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib import MANUFACTURER, __version__
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.io.atomic import AtomicBatch
from AdaptiveBrushDicomLib.errors import OutputExistsError, UserError
from AdaptiveBrushDicomLib.core.geometry import Grid


class Modality(str, enum.Enum):
    """Modalities we can synthesise, with the storage SOP class used for each."""

    MR = "MR"
    CT = "CT"
    PT = "PT"
    OT = "OT"

    @property
    def sop_class_uid(self) -> str:
        return {
            "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
            "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
            "PT": "1.2.840.10008.5.1.4.1.1.128",  # PET Image Storage
            "OT": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        }[self.value]

    @classmethod
    def parse(cls, value: "str | Modality") -> "Modality":
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            raise UserError(f"unknown modality {value!r}; choose one of {', '.join(m.value for m in cls)}") from None


@dataclass
class PixelEncoding:
    """How voxel values are stored: stored = round((value - intercept) / slope)."""

    dtype: np.dtype
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def exact(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0

    @property
    def max_abs_error(self) -> float:
        """Upper bound of |decoded - original| per voxel (0 for exact storage)."""
        return 0.0 if self.exact else self.slope / 2.0

    @property
    def signed(self) -> bool:
        return np.dtype(self.dtype).kind == "i"


def choose_encoding(array: np.ndarray) -> PixelEncoding:
    """Pick the 16-bit storage for ``array`` (see module docstring).

    Raises
    ------
    UserError
        The image holds NaN or infinite values (DICOM pixels cannot store them).
    """
    if array.size == 0:
        return PixelEncoding(np.dtype(np.uint16))
    lo, hi = float(array.min()), float(array.max())
    integral = np.issubdtype(array.dtype, np.integer) or bool(np.all(np.mod(array, 1) == 0))
    if integral and lo >= 0 and hi <= 65535:
        return PixelEncoding(np.dtype(np.uint16))
    if integral and lo >= -32768 and hi <= 32767:
        return PixelEncoding(np.dtype(np.int16))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise UserError("image contains NaN or infinite values; cannot store it as DICOM")
    # round slope and intercept to what a DS (16 chars) holds, so readers decode exactly
    # what we encoded with; nudge the slope up if rounding would overflow 65535
    intercept = float(_fmt_ds(lo))
    if intercept > lo:
        intercept = float(_fmt_ds(lo - abs(lo) * 1e-12 - 1e-12))
    slope = float(_fmt_ds((hi - intercept) / 65535.0)) if hi > intercept else 1.0
    while (hi - intercept) / slope > 65535.0:
        slope = float(_fmt_ds(slope * (1 + 1e-9)))
    return PixelEncoding(np.dtype(np.uint16), slope=slope, intercept=intercept)


def encode_pixels(array: np.ndarray, enc: PixelEncoding) -> np.ndarray:
    if enc.exact:
        return array.astype(enc.dtype, copy=False)
    stored = np.rint((array.astype(np.float64) - enc.intercept) / enc.slope)
    return np.clip(stored, 0, 65535).astype(enc.dtype)


@dataclass
class SyntheticSeries:
    """What :func:`create_synthetic_series` wrote."""

    folder: Path
    paths: list[Path]
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: list[str]
    encoding: PixelEncoding
    content_digest: str
    reused: bool = False
    notes: list[str] = field(default_factory=list)


def _fmt_ds(value: float) -> str:
    """Decimal String (DS, max 16 chars) that round-trips as closely as possible."""
    for digits in range(16, 5, -1):
        s = f"{value:.{digits}g}"
        if len(s) <= 16:
            return s
    return f"{value:.6g}"


def patient_id_for(name: str) -> str:
    """``AdaptiveBrush_<name>``, sanitised to a valid LO (<= 64 characters); one policy
    for the whole package, see :func:`AdaptiveBrushDicomLib.dicom.naming.patient_id`."""
    from AdaptiveBrushDicomLib.dicom.naming import patient_id

    return patient_id(name)


def create_synthetic_series(
    array: np.ndarray,
    grid: Grid,
    out_dir: str | Path,
    *,
    patient_id: str,
    patient_name: str | None = None,
    modality: "str | Modality" = Modality.MR,
    study_description: str = "",
    series_description: str = "",
    series_number: int = 1,
    study_instance_uid: str | None = None,
    force: bool = False,
) -> SyntheticSeries:
    """Write ``array`` (k, j, i) on ``grid`` as a DICOM series in ``out_dir``.

    If ``out_dir`` already holds exactly this series (same SOP UIDs), nothing is
    rewritten and ``reused=True`` is returned; other existing ``NNNN.dcm`` files are
    refused unless ``force``. The slices are written as one batch
    (:class:`~AdaptiveBrushDicomLib.io.atomic.AtomicBatch`): temporary names, synced
    together, then renamed, so a slice under its final name is complete and on disk.

    Raises
    ------
    UserError
        The array does not match the grid, a text value is too long or not valid for
        DICOM, the image holds NaN / infinite values, or a slice cannot be written.
    OutputExistsError
        ``out_dir`` holds another series and ``force`` is not set.
    """
    modality = Modality.parse(modality)
    array = np.asarray(array)
    if array.ndim != 3 or array.shape != grid.shape_kji:
        raise UserError(f"image shape {array.shape} does not match grid shape {grid.shape_kji}")
    from AdaptiveBrushDicomLib.dicom.text_values import check_series_text

    if len(patient_id) > 64:
        raise UserError(f"PatientID (0010,0020) is longer than 64 characters: {patient_id!r}")
    check_series_text("StudyDescription", study_description)
    check_series_text("SeriesDescription", series_description)
    out_dir = Path(out_dir)
    digest = uids.content_digest(array, grid)
    ids = _SeriesUids(
        study=study_instance_uid or uids.study_uid(patient_id, digest),
        series=uids.volume_series_uid(patient_id, digest),
        frame_of_reference=uids.frame_of_reference_uid(patient_id, digest),
    )
    nk = grid.shape_kji[0]
    names = [f"{k + 1:04d}.dcm" for k in range(nk)]
    sop_uids = [uids.instance_uid(ids.series, k) for k in range(nk)]
    enc = choose_encoding(array)

    existing = _existing_series(out_dir, names)
    if existing is not None:
        if existing == sop_uids:
            return SyntheticSeries(
                out_dir, [out_dir / n for n in names], patient_id, ids.study, ids.series, ids.frame_of_reference,
                sop_uids, enc, digest, reused=True,
            )
        if not force:
            raise OutputExistsError(
                "folder already holds a different DICOM series; choose another folder or pass --force", out_dir
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    base = _series_dataset(array, grid, enc, ids, modality, patient_id=patient_id, patient_name=patient_name,
                           study_description=study_description, series_description=series_description,
                           series_number=series_number)
    paths = _write_slices(base, encode_pixels(array, enc), grid, out_dir, names, sop_uids, modality)
    notes = []
    if not enc.exact:
        notes.append(
            f"values stored with RescaleSlope {enc.slope:.6g}, RescaleIntercept {enc.intercept:.6g}: "
            f"round-trip error <= {enc.max_abs_error:.3g}"
        )
    return SyntheticSeries(out_dir, paths, patient_id, ids.study, ids.series, ids.frame_of_reference, sop_uids, enc,
                           digest, notes=notes)


@dataclass(frozen=True)
class _SeriesUids:
    """Study, Series and Frame of Reference UIDs of one synthetic series."""

    study: str
    series: str
    frame_of_reference: str


def _series_dataset(array: np.ndarray, grid: Grid, enc: PixelEncoding, ids: _SeriesUids, modality: Modality, *,
                    patient_id: str, patient_name: str | None, study_description: str, series_description: str,
                    series_number: int) -> Any:
    """The attributes every slice of the series shares (patient, study, series, frame of
    reference, image plane orientation and spacing, pixel format, modality module, window)."""
    from pydicom.dataset import Dataset

    row, col = grid.direction[:, 0], grid.direction[:, 1]
    base = Dataset()
    base.SOPClassUID = modality.sop_class_uid
    name = patient_name or patient_id
    base.PatientName = name if "^" in name else name + "^"  # one-component name, made explicit
    base.PatientID = patient_id
    base.PatientBirthDate = ""
    base.PatientSex = ""
    base.StudyInstanceUID = ids.study
    base.StudyDate = ""
    base.StudyTime = ""
    base.ReferringPhysicianName = ""
    base.StudyID = ""
    base.AccessionNumber = ""
    base.StudyDescription = study_description[:64]
    base.Modality = modality.value
    base.SeriesInstanceUID = ids.series
    base.SeriesNumber = int(series_number)
    base.SeriesDescription = series_description[:64]
    base.FrameOfReferenceUID = ids.frame_of_reference
    base.PositionReferenceIndicator = ""
    base.Manufacturer = MANUFACTURER
    base.ManufacturerModelName = "synthetic series"
    base.SoftwareVersions = __version__
    base.ImageType = ["DERIVED", "SECONDARY"]
    base.ImageOrientationPatient = [_fmt_ds(v) for v in (*row, *col)]
    base.PixelSpacing = [_fmt_ds(grid.spacing_ijk[1]), _fmt_ds(grid.spacing_ijk[0])]
    base.SliceThickness = _fmt_ds(grid.spacing_ijk[2])
    base.SpacingBetweenSlices = _fmt_ds(grid.spacing_ijk[2])
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = int(grid.shape_kji[1]), int(grid.shape_kji[2])
    base.BitsAllocated = 16
    base.BitsStored = 16
    base.HighBit = 15
    base.PixelRepresentation = 1 if enc.signed else 0
    if modality is Modality.CT or not enc.exact:
        base.RescaleIntercept = _fmt_ds(enc.intercept)
        base.RescaleSlope = _fmt_ds(enc.slope)
        base.RescaleType = "HU" if modality is Modality.CT else "US"
    _modality_attributes(base, modality)
    lo, hi = float(array.min()), float(array.max())
    base.WindowCenter = _fmt_ds((lo + hi) / 2)
    base.WindowWidth = _fmt_ds(max(hi - lo, 1.0))
    return base


def _modality_attributes(base: Any, modality: Modality) -> None:
    """Type 1/2 attributes of the modality's image module (empty where unknown)."""
    if modality is Modality.MR:
        base.ScanningSequence = "RM"  # research mode: acquisition unknown
        base.SequenceVariant = "NONE"
        base.ScanOptions = ""
        base.MRAcquisitionType = "3D"
        base.EchoTime = ""
        base.RepetitionTime = ""
        base.EchoTrainLength = ""
    elif modality is Modality.CT:
        base.KVP = ""
        base.AcquisitionNumber = 1
    elif modality is Modality.OT:
        base.ConversionType = "WSD"


def _write_slices(base: Any, stored: np.ndarray, grid: Grid, out_dir: Path, names: list[str], sop_uids: list[str],
                  modality: Modality) -> list[Path]:
    """One file per slice k: ``base`` + SOP Instance UID, position and pixels, written as
    one atomic batch (see :class:`~AdaptiveBrushDicomLib.io.atomic.AtomicBatch`).

    Raises
    ------
    UserError
        A slice cannot be written (disk full, permissions); no final name is left half-written.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID

    positions = grid.slice_origins()
    paths = []
    try:
        with AtomicBatch() as batch:
            for k, name in enumerate(names):
                ds = Dataset()
                ds.update(base)
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = UID(modality.sop_class_uid)
                meta.MediaStorageSOPInstanceUID = UID(sop_uids[k])
                meta.TransferSyntaxUID = UID(Compression.EXPLICIT.uid)
                ds.file_meta = meta
                ds.SOPInstanceUID = sop_uids[k]
                ds.InstanceNumber = k + 1
                ds.ImagePositionPatient = [_fmt_ds(v) for v in positions[k]]
                ds.SliceLocation = _fmt_ds(float(positions[k] @ grid.direction[:, 2]))
                frame = np.ascontiguousarray(stored[k])
                ds.SmallestImagePixelValue = int(frame.min())
                ds.LargestImagePixelValue = int(frame.max())
                ds.PixelData = frame.tobytes()
                path = out_dir / name
                ds.save_as(batch.temporary(path), enforce_file_format=True)
                paths.append(path)
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", exc.filename or out_dir) from None
    return paths


def _existing_series(out_dir: Path, names: list[str]) -> list[str] | None:
    """SOP UIDs of ``NNNN.dcm`` files already in ``out_dir`` (None if there are none)."""
    if not out_dir.is_dir():
        return None
    present = sorted(p.name for p in out_dir.glob("[0-9][0-9][0-9][0-9].dcm"))
    if not present:
        return None
    if present != names:
        return ["<different file set>"]
    import pydicom

    found = []
    for n in names:
        try:
            ds = pydicom.dcmread(out_dir / n, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            found.append(str(ds.SOPInstanceUID))
        except Exception:
            return ["<unreadable>"]
    return found
