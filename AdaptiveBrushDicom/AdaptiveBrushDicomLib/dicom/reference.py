"""A DICOM image series on disk, parsed once: headers in slice (k) order and its Grid.

The k axis follows the slice normal ``cross(row, column)`` of ImageOrientationPatient,
the ordering Slicer (``DICOMUtils.getSortedImageFiles``) and ITK use, so a grid built
here is always right-handed in DICOM terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.core.geometry import Grid

#: Tolerance (mm) on slice positions when checking a series is a regular grid.
SLICE_TOLERANCE_MM = 0.01

_HEADER_TAGS = None  # read whole headers: highdicom needs many attributes of the source images


@dataclass
class ReferenceSeries:
    """A single-frame DICOM image series, sorted along its slice normal.

    Attributes
    ----------
    folder : Path or None
    datasets : list of pydicom.Dataset
        Headers (no pixel data) in k order.
    paths : list of Path, same order
    grid : Grid
        LPS geometry; ``grid.shape_kji == (len(datasets), Rows, Columns)``.
    """

    datasets: list
    paths: list[Path]
    grid: Grid
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)

    # --------------------------------------------------------------- attributes
    @property
    def series_instance_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def study_instance_uid(self) -> str:
        return str(self.datasets[0].StudyInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(getattr(self.datasets[0], "FrameOfReferenceUID", ""))

    @property
    def sop_instance_uids(self) -> list[str]:
        return [str(ds.SOPInstanceUID) for ds in self.datasets]

    @property
    def patient_id(self) -> str:
        return str(getattr(self.datasets[0], "PatientID", ""))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_folder(cls, folder: str | Path) -> "ReferenceSeries":
        """Parse every DICOM file under ``folder`` (recursively) that has an image plane.

        Raises
        ------
        InputFileError
            No DICOM images, several series, a multi-frame image, or irregular slices.
        """
        folder = Path(folder)
        if not folder.exists():
            raise InputFileError("reference folder does not exist; give the folder of the image series", folder)
        if not folder.is_dir():
            raise InputFileError("reference must be a folder holding one DICOM image series", folder)
        # hidden files (ours: .NNNN.dcm.tmp-PID temporaries) are never part of a series
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        series = cls.from_files(files, folder=folder)
        return series

    @classmethod
    def from_files(cls, files: Iterable[str | Path], folder: Path | None = None) -> "ReferenceSeries":
        import pydicom
        from pydicom.errors import InvalidDicomError

        where = folder if folder is not None else "reference series"
        by_series: dict[str, list[tuple[Path, object]]] = {}
        for path in files:
            path = Path(path)
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError):
                continue
            if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
                continue  # not an image plane (SEG, SR, multi-frame ...)
            if "SeriesInstanceUID" not in ds or "SOPInstanceUID" not in ds:
                continue
            if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
                # an empty (0008,0005) means the default repertoire; highdicom rejects the
                # empty value, so drop it from our in-memory header copy (files untouched)
                del ds.SpecificCharacterSet
            by_series.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
        if not by_series:
            raise InputFileError(
                "no single-frame DICOM image with ImagePositionPatient (0020,0032) found; "
                "give the folder of the image series the segmentation refers to",
                where,
            )
        if len(by_series) > 1:
            listing = ", ".join(f"{uid} ({len(v)} files)" for uid, v in by_series.items())
            raise InputFileError(f"several image series found: {listing}; give a folder with one series", where)
        items = next(iter(by_series.values()))
        return cls._from_items(items, folder)

    @classmethod
    def _from_items(cls, items: list, folder: Path | None) -> "ReferenceSeries":
        where = folder if folder is not None else items[0][0]
        first = items[0][1]
        iop = np.array(first.ImageOrientationPatient, dtype=float)
        row, col = iop[:3], iop[3:]
        normal = np.cross(row, col)
        for path, ds in items:
            if not np.allclose(np.array(ds.ImageOrientationPatient, dtype=float), iop, atol=1e-4):
                raise InputFileError("slices have different ImageOrientationPatient (0020,0037)", path)
            if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
                raise InputFileError("slices have different Rows/Columns", path)
        positions = np.array([np.array(ds.ImagePositionPatient, dtype=float) for _, ds in items])
        dist = positions @ normal
        order = np.argsort(dist, kind="stable")
        items = [items[i] for i in order]
        positions, dist = positions[order], dist[order]
        if len(items) > 1:
            gaps = np.diff(dist)
            if np.any(gaps < SLICE_TOLERANCE_MM):
                dup = items[int(np.argmin(gaps)) + 1][0]
                raise InputFileError("two slices share one position; the series has duplicates", dup)
            slice_spacing = float(np.median(gaps))
            if np.max(np.abs(gaps - slice_spacing)) > max(SLICE_TOLERANCE_MM, 1e-3 * slice_spacing):
                raise InputFileError(
                    f"slice spacing is irregular ({gaps.min():.4f}..{gaps.max():.4f} mm); "
                    "resample the series to a regular grid first",
                    where,
                )
            # in-plane positions must line up along the normal
            expected = positions[0] + np.outer(dist - dist[0], normal)
            if np.max(np.abs(expected - positions)) > max(SLICE_TOLERANCE_MM, 1e-3 * slice_spacing):
                raise InputFileError("slices are not stacked along the slice normal (gantry tilt?)", where)
        else:
            slice_spacing = float(
                getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", None) or 1.0
            )
        ps = [float(v) for v in first.PixelSpacing]  # (row spacing = along j, column spacing = along i)
        grid = Grid(
            shape_kji=(len(items), int(first.Rows), int(first.Columns)),
            spacing_ijk=(ps[1], ps[0], slice_spacing),
            origin=tuple(positions[0]),
            direction=np.column_stack([row, col, normal]),
        )
        return cls(datasets=[ds for _, ds in items], paths=[p for p, _ in items], grid=grid, folder=folder)

    def read_pixels(self) -> np.ndarray:
        """Stored-value voxels (k, j, i) with Rescale applied (float if slope/intercept not 1/0)."""
        import pydicom

        out = None
        for k, path in enumerate(self.paths):
            ds = pydicom.dcmread(path)
            frame = ds.pixel_array
            slope = float(getattr(ds, "RescaleSlope", 1) or 1)
            intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
            if slope != 1 or intercept != 0:
                frame = frame * slope + intercept
            if out is None:
                out = np.empty((len(self.paths),) + frame.shape, dtype=frame.dtype)
            out[k] = frame
        assert out is not None
        return out
