"""A DICOM image series on disk, parsed once: headers in slice (k) order and its Grid.

The k axis follows the slice normal ``cross(row, column)`` of ImageOrientationPatient,
the ordering Slicer (``DICOMUtils.getSortedImageFiles``) and ITK use, so a grid built
here is always right-handed in DICOM terms.

Two kinds of source are understood:

* a series of single-frame images (one file per slice, e.g. CT Image Storage);
* one multi-frame image (Enhanced CT/MR, Legacy Converted Enhanced, ...): its frames are
  the slices, placed by each frame's PlanePositionSequence (per-frame or shared
  functional groups); ``frame_numbers`` says which frame is slice k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io.limits import check_file, check_voxels
from AdaptiveBrushDicomLib.core.geometry import Grid

#: Tolerance (mm) on slice positions when checking a series is a regular grid.
SLICE_TOLERANCE_MM = 0.01

_HEADER_TAGS = None  # read whole headers: highdicom needs many attributes of the source images


@dataclass
class ReferenceSeries:
    """A DICOM image series (single-frame images, or one multi-frame image), sorted along
    its slice normal.

    Attributes
    ----------
    folder : Path or None
    datasets : list of pydicom.Dataset
        Headers (no pixel data) in k order; a multi-frame source is one dataset.
    paths : list of Path, same order
    grid : Grid
        LPS geometry; ``grid.shape_kji == (number of slices, Rows, Columns)``.
    frame_numbers : list of int or None
        For a multi-frame source: the 1-based frame number of every slice k (frames need
        not be stored in k order). None for a series of single-frame images.
    """

    datasets: list
    paths: list[Path]
    grid: Grid
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)
    frame_numbers: list[int] | None = None

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

    @property
    def is_multiframe(self) -> bool:
        """True when the series is one multi-frame image (frames = slices)."""
        return self.frame_numbers is not None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_folder(cls, folder: str | Path) -> "ReferenceSeries":
        """Parse every DICOM file under ``folder`` (recursively) that has an image plane.

        ``folder`` may also be one file: a multi-frame image (e.g. Enhanced CT).

        Raises
        ------
        InputFileError
            No DICOM images, several series, or slices that do not form a stack.
        """
        folder = Path(folder)
        if not folder.exists():
            raise InputFileError("reference folder does not exist; give the folder of the image series", folder)
        if folder.is_file():
            return cls.from_files([folder], folder=None)
        if not folder.is_dir():
            raise InputFileError("reference must be a folder holding one DICOM image series", folder)
        # hidden files (ours: .NNNN.dcm.tmp-PID temporaries) are never part of a series
        files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        for p in files:  # no symlink out of the folder the user gave (limits.check_file)
            check_file(p, root=folder, what="file of the reference series")
        series = cls.from_files(files, folder=folder)
        return series

    @classmethod
    def from_files(cls, files: Iterable[str | Path], folder: Path | None = None) -> "ReferenceSeries":
        from pydicom.errors import InvalidDicomError

        from AdaptiveBrushDicomLib.dicom import walker

        where = folder if folder is not None else "reference series"
        by_series: dict[str, list[tuple[Path, Any]]] = {}
        for path in files:
            path = Path(path)
            try:
                ds = walker.dcmread(path, stop_before_pixels=True)  # capped inflate (deflate bombs)
            except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError):
                continue
            if not _has_image_plane(ds):
                continue  # not an image plane (SEG, SR, ...)
            if "SeriesInstanceUID" not in ds or "SOPInstanceUID" not in ds:
                continue
            if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
                # an empty (0008,0005) means the default repertoire; highdicom rejects the
                # empty value, so drop it from our in-memory header copy (files untouched)
                del ds.SpecificCharacterSet
            by_series.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
        if not by_series:
            raise InputFileError(
                "no DICOM image with ImagePositionPatient (0020,0032) or a PlanePositionSequence (0020,9113) "
                "found; give the folder of the image series the segmentation refers to",
                where,
            )
        if len(by_series) > 1:
            listing = ", ".join(f"{uid} ({len(v)} files)" for uid, v in by_series.items())
            raise InputFileError(f"several image series found: {listing}; give a folder with one series", where)
        items = next(iter(by_series.values()))
        multi = [(p, ds) for p, ds in items if "ImagePositionPatient" not in ds]
        if multi:
            if len(items) > 1:
                raise InputFileError(
                    f"the series mixes a multi-frame image ({multi[0][0].name}) with {len(items) - 1} other "
                    "image(s); give the multi-frame file alone",
                    where,
                )
            return cls._from_multiframe(*multi[0], folder)
        return cls._from_items(items, folder)

    @classmethod
    def _from_items(cls, items: list, folder: Path | None) -> "ReferenceSeries":
        where = folder if folder is not None else items[0][0]
        first = items[0][1]
        iop = np.array(first.ImageOrientationPatient, dtype=float)
        for path, ds in items:
            if not np.allclose(np.array(ds.ImageOrientationPatient, dtype=float), iop, atol=1e-4):
                raise InputFileError("slices have different ImageOrientationPatient (0020,0037)", path)
            if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
                raise InputFileError("slices have different Rows/Columns", path)
        positions = np.array([np.array(ds.ImagePositionPatient, dtype=float) for _, ds in items])
        single = getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", None)
        check_voxels(int(first.Rows) * int(first.Columns) * len(items), "Rows x Columns x slices", where)
        order, grid = _grid_from_planes(positions, iop, [float(v) for v in first.PixelSpacing],
                                        (int(first.Rows), int(first.Columns)), single,
                                        where, [items[i][0] for i in range(len(items))])
        items = [items[i] for i in order]
        return cls(datasets=[ds for _, ds in items], paths=[p for p, _ in items], grid=grid, folder=folder)

    @classmethod
    def _from_multiframe(cls, path: Path, ds, folder: Path | None) -> "ReferenceSeries":
        """One multi-frame image: frames placed by their functional groups."""
        n = int(getattr(ds, "NumberOfFrames", 1) or 1)
        check_voxels(int(ds.Rows) * int(ds.Columns) * n, "Rows x Columns x NumberOfFrames", path)
        shared = _first(ds, "SharedFunctionalGroupsSequence")
        per_frame = list(getattr(ds, "PerFrameFunctionalGroupsSequence", []) or [])
        if len(per_frame) != n:
            raise InputFileError(
                f"PerFrameFunctionalGroupsSequence (5200,9230) has {len(per_frame)} items for {n} frames", path)

        def group(fg, name):
            return _first(fg, name) or _first(shared, name)

        positions = np.empty((n, 3))
        iop: np.ndarray | None = None
        ps: list[float] | None = None
        for f, fg in enumerate(per_frame):
            pos, orient, measures = (group(fg, name) for name in (
                "PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence"))
            if pos is None or orient is None or measures is None or "PixelSpacing" not in measures:
                raise InputFileError(
                    f"frame {f + 1} lacks PlanePositionSequence, PlaneOrientationSequence or PixelMeasuresSequence; "
                    "cannot place it",
                    path,
                )
            positions[f] = [float(v) for v in pos.ImagePositionPatient]
            this = np.array([float(v) for v in orient.ImageOrientationPatient])
            if iop is None:
                iop, ps = this, [float(v) for v in measures.PixelSpacing]
            elif not np.allclose(this, iop, atol=1e-4):
                raise InputFileError(f"frame {f + 1} is oriented differently from frame 1", path)
        if iop is None or ps is None:
            raise InputFileError("PerFrameFunctionalGroupsSequence (5200,9230) has no frames", path)
        measures = group(per_frame[0], "PixelMeasuresSequence")
        single = getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", None)
        order, grid = _grid_from_planes(positions, iop, ps, (int(ds.Rows), int(ds.Columns)), single, path,
                                        [f"{path} frame {f + 1}" for f in range(n)])
        return cls(datasets=[ds], paths=[path], grid=grid, folder=folder,
                   frame_numbers=[int(f) + 1 for f in order])

    def read_pixels(self) -> np.ndarray:
        """Stored-value voxels (k, j, i) with Rescale applied (float if slope/intercept not 1/0).

        Deflated files are inflated with the walker's cap (what the header implies)."""
        from AdaptiveBrushDicomLib.dicom import walker

        if self.frame_numbers is not None:
            ds = walker.dcmread(self.paths[0])
            frames = ds.pixel_array
            frames = frames[np.newaxis] if frames.ndim == 2 else frames
            out = frames[np.asarray(self.frame_numbers) - 1]
            slope, intercept = _frame_rescale(ds)
            return out * slope + intercept if (slope != 1 or intercept != 0) else out
        out = None
        for k, path in enumerate(self.paths):
            ds = walker.dcmread(path)
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


def _first(ds, name: str):
    seq = getattr(ds, name, None) if ds is not None else None
    return seq[0] if seq else None


def _has_image_plane(ds) -> bool:
    """A single-frame image plane, or a multi-frame image whose frames carry plane positions."""
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
        return True
    if str(getattr(ds, "Modality", "")) == "SEG" or "PerFrameFunctionalGroupsSequence" not in ds:
        return False
    if "SegmentSequence" in ds:
        return False
    first = _first(ds, "PerFrameFunctionalGroupsSequence")
    return _first(first, "PlanePositionSequence") is not None or \
        _first(_first(ds, "SharedFunctionalGroupsSequence"), "PlanePositionSequence") is not None


def _frame_rescale(ds) -> tuple[float, float]:
    """Rescale slope/intercept of a multi-frame image (shared PixelValueTransformation)."""
    item = _first(_first(ds, "SharedFunctionalGroupsSequence"), "PixelValueTransformationSequence")
    src = item if item is not None else ds
    return float(getattr(src, "RescaleSlope", 1) or 1), float(getattr(src, "RescaleIntercept", 0) or 0)


def _grid_from_planes(positions: np.ndarray, iop: np.ndarray, pixel_spacing: list[float], rows_cols: tuple[int, int],
                      single_spacing, where, names: list) -> tuple[np.ndarray, Grid]:
    """Sort planes along the normal; (order, Grid). ``names`` name each plane in errors.

    Irregularly spaced planes give a grid with ``slice_positions_mm`` (see core.geometry);
    duplicates and planes not stacked along the normal (gantry tilt) are errors."""
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    positions, dist = positions[order], dist[order]
    slice_positions = None
    if len(positions) > 1:
        gaps = np.diff(dist)
        if np.any(gaps < SLICE_TOLERANCE_MM):
            dup = names[int(order[int(np.argmin(gaps)) + 1])]
            raise InputFileError("two slices share one position; the series has duplicates", dup)
        slice_spacing = float(np.median(gaps))
        if np.max(np.abs(gaps - slice_spacing)) > max(SLICE_TOLERANCE_MM, 1e-3 * slice_spacing):
            # irregular spacing (a missing slice, varying reconstruction): exact positions kept
            slice_positions = tuple(dist - dist[0])
        # in-plane positions must line up along the normal
        expected = positions[0] + np.outer(dist - dist[0], normal)
        if np.max(np.abs(expected - positions)) > max(SLICE_TOLERANCE_MM, 1e-3 * slice_spacing):
            raise InputFileError("slices are not stacked along the slice normal (gantry tilt?)", where)
    else:
        slice_spacing = float(single_spacing or 1.0)
    ps = pixel_spacing  # (row spacing = along j, column spacing = along i)
    grid = Grid(
        shape_kji=(len(positions), int(rows_cols[0]), int(rows_cols[1])),
        spacing_ijk=(ps[1], ps[0], slice_spacing),
        origin=tuple(positions[0]),
        direction=np.column_stack([row, col, normal]),
        slice_positions_mm=slice_positions,
    )
    return order, grid
