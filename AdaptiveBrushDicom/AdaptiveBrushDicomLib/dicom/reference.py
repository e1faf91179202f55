"""A DICOM image series on disk, parsed once: headers in slice (k) order and its Grid.

The k axis follows the slice normal ``cross(row, column)`` of ImageOrientationPatient,
the ordering Slicer (``DICOMUtils.getSortedImageFiles``) and ITK use, so a grid built
here is always right-handed in DICOM terms.

Two kinds of source are understood:

* a series of single-frame images (one file per slice, e.g. CT Image Storage);
* one multi-frame image (Enhanced CT/MR, Legacy Converted Enhanced, ...): its frames are
  the slices, placed by each frame's PlanePositionSequence (per-frame or shared
  functional groups); ``frame_numbers`` says which frame is slice k.

Headers are walked without pydicom (:mod:`~.dicom.reference_headers`): UIDs and geometry
of 100 slices in a few ms instead of pydicom's import plus ~2 ms per header. pydicom
datasets (:attr:`ReferenceSeries.datasets`, what highdicom needs) are read on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid, median_spacing
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.reference_headers import ImageHeader, first_item, read_image_header
from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io.limits import check_file, check_voxels

#: Tolerance (mm) on slice positions when checking a series is a regular grid.
SLICE_TOLERANCE_MM = 0.01


@dataclass
class ReferenceSeries:
    """A DICOM image series (single-frame images, or one multi-frame image), sorted along
    its slice normal.

    Attributes
    ----------
    paths : list of Path
        The files in k order (a multi-frame source is one file).
    grid : Grid
        LPS geometry; ``grid.shape_kji == (number of slices, Rows, Columns)``.
    folder : Path or None
    frame_numbers : list of int or None
        For a multi-frame source: the 1-based frame number of every slice k (frames need
        not be stored in k order). None for a series of single-frame images.
    headers : list of ImageHeader, same order as ``paths``
        What each file's header says: :attr:`ImageHeader.plane` (UIDs, geometry and the
        whole walked header, read without pydicom) or a pydicom dataset.

    Notes
    -----
    The headers are walked without pydicom; :attr:`datasets` (pydicom datasets, what
    highdicom needs of the source images) are read on first use. Code that needs only
    UIDs and positions should use :attr:`headers` / :meth:`dataset` and stay fast.
    """

    paths: list[Path]
    grid: Grid
    folder: Path | None = None
    notes: list[str] = field(default_factory=list)
    frame_numbers: list[int] | None = None
    headers: list[ImageHeader] = field(default_factory=list)
    _datasets: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    # --------------------------------------------------------------- attributes
    @property
    def datasets(self) -> list[Any]:
        """pydicom headers (no pixel data) in k order; a multi-frame source is one dataset.

        Read with pydicom on first use (then cached), so a caller that needs only UIDs and
        geometry never pays for it."""
        if self._datasets is None:
            self._datasets = [h.pydicom_dataset() for h in self.headers]
        return self._datasets

    def dataset(self, k: int = 0) -> Any:
        """The pydicom header of file ``k`` (in k order), read on first use."""
        return self.headers[k].pydicom_dataset()

    def _uid(self, attr: str, keyword: str) -> str:
        """A UID of the first file: walked, else from its pydicom header (AttributeError if absent)."""
        plane = self.headers[0].plane
        found = getattr(plane, attr) if plane is not None else None
        return found if found is not None else str(getattr(self.dataset(0), keyword))

    @property
    def series_instance_uid(self) -> str:
        """SeriesInstanceUID (0020,000E) of the series."""
        return self._uid("series_instance_uid", "SeriesInstanceUID")

    @property
    def study_instance_uid(self) -> str:
        """StudyInstanceUID (0020,000D) of the series."""
        return self._uid("study_instance_uid", "StudyInstanceUID")

    @property
    def frame_of_reference_uid(self) -> str:
        """FrameOfReferenceUID (0020,0052) ("" when absent)."""
        plane = self.headers[0].plane
        if plane is not None:
            return plane.frame_of_reference_uid or ""
        return str(getattr(self.dataset(0), "FrameOfReferenceUID", ""))

    @property
    def sop_instance_uids(self) -> list[str]:
        """SOPInstanceUID (0008,0018) of every file, in k order."""
        return [h.plane.sop_instance_uid if h.plane is not None else str(h.pydicom_dataset().SOPInstanceUID)
                for h in self.headers]

    @property
    def patient_id(self) -> str:
        """PatientID (0010,0020) ("" when absent)."""
        plane = self.headers[0].plane
        if plane is not None:
            try:
                return str(walker.value(plane.raw, 0x00100020, "") or "")
            except (walker.NotSupported, walker.Malformed):
                pass  # a character set decides: pydicom's job
        return str(getattr(self.dataset(0), "PatientID", ""))

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
        IncompleteFileError
            A file that is empty or too short for DICOM (a slice cut short in copying), or
            a slice that ends inside its header or pixel data.
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
            walker.check_series_file(p, folder, check_file(p, root=folder, what="file of the reference series"))
        return cls.from_files(files, folder=folder)

    @classmethod
    def from_files(cls, files: Iterable[str | Path], folder: Path | None = None) -> "ReferenceSeries":
        """The one image series among ``files`` (files that are no image are skipped).

        Raises
        ------
        InputFileError
            No image, several series, a multi-frame image mixed with other images, or
            images that do not form a stack.
        """
        where: str | Path = folder if folder is not None else "reference series"
        by_series: dict[str, list[ImageHeader]] = {}
        for path in files:
            header = read_image_header(Path(path))
            if header is not None:
                by_series.setdefault(header.series_instance_uid, []).append(header)
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
        multi = [h for h in items if h.is_multiframe]
        if multi:
            if len(items) > 1:
                raise InputFileError(
                    f"the series mixes a multi-frame image ({multi[0].path.name}) with {len(items) - 1} other "
                    "image(s); give the multi-frame file alone",
                    where,
                )
            return cls._from_multiframe(multi[0], folder)
        return cls._from_items(items, folder)

    @classmethod
    def _from_items(cls, items: list[ImageHeader], folder: Path | None) -> "ReferenceSeries":
        """Single-frame images sorted into a stack.

        Raises
        ------
        InputFileError
            Orientation or Rows/Columns differ between images, or they do not form a stack.
        """
        where = folder if folder is not None else items[0].path
        first = items[0]
        iop = first.orientation()
        rows, cols = first.rows_columns()
        if all(h.plane is not None for h in items):
            _check_stack(items, iop, (rows, cols))  # walked headers: all slices at once
        else:
            for h in items:
                if not np.allclose(h.orientation(), iop, atol=1e-4):
                    raise InputFileError("slices have different ImageOrientationPatient (0020,0037)", h.path)
                if h.rows_columns() != (rows, cols):
                    raise InputFileError("slices have different Rows/Columns", h.path)
        positions = np.array([h.position() for h in items])
        check_voxels(int(rows) * int(cols) * len(items), "Rows x Columns x slices", where)
        order, grid = _grid_from_planes(positions, iop, first.pixel_spacing(), (int(rows), int(cols)),
                                        first.slice_spacing(), where, [h.path for h in items])
        items = [items[i] for i in order]
        return cls(paths=[h.path for h in items], grid=grid, folder=folder, headers=items)

    @classmethod
    def _from_multiframe(cls, header: ImageHeader, folder: Path | None) -> "ReferenceSeries":
        """One multi-frame image: frames placed by their functional groups.

        Raises
        ------
        InputFileError
            Frames without plane position / orientation / pixel measures, frames oriented
            differently, or frames that do not form a stack.
        """
        path, ds = header.path, header.pydicom_dataset()
        n = int(getattr(ds, "NumberOfFrames", 1) or 1)
        check_voxels(int(ds.Rows) * int(ds.Columns) * n, "Rows x Columns x NumberOfFrames", path)
        per_frame = list(getattr(ds, "PerFrameFunctionalGroupsSequence", []) or [])
        if len(per_frame) != n:
            raise InputFileError(
                f"PerFrameFunctionalGroupsSequence (5200,9230) has {len(per_frame)} items for {n} frames", path)
        positions, iop, ps = _frame_planes(per_frame, first_item(ds, "SharedFunctionalGroupsSequence"), path)
        measures = first_item(per_frame[0], "PixelMeasuresSequence") or \
            first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "PixelMeasuresSequence")
        single = getattr(measures, "SpacingBetweenSlices", None) or getattr(measures, "SliceThickness", None)
        order, grid = _grid_from_planes(positions, iop, ps, (int(ds.Rows), int(ds.Columns)), single, path,
                                        [f"{path} frame {f + 1}" for f in range(n)])
        return cls(paths=[path], grid=grid, folder=folder, headers=[header],
                   frame_numbers=[int(f) + 1 for f in order])

    def read_pixels(self) -> np.ndarray:
        """Stored-value voxels (k, j, i) with Rescale applied (float if slope/intercept not 1/0).

        Deflated files are inflated with the walker's cap (what the header implies)."""
        if self.frame_numbers is not None:
            ds = walker.dcmread(self.paths[0])
            frames = ds.pixel_array
            frames = frames[np.newaxis] if frames.ndim == 2 else frames
            out: np.ndarray = frames[np.asarray(self.frame_numbers) - 1]
            slope, intercept = _frame_rescale(ds)
            if slope != 1 or intercept != 0:
                out = out * slope + intercept
            return out
        stack: np.ndarray | None = None
        for k, path in enumerate(self.paths):
            ds = walker.dcmread(path)
            frame = ds.pixel_array
            slope = float(getattr(ds, "RescaleSlope", 1) or 1)
            intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
            if slope != 1 or intercept != 0:
                frame = frame * slope + intercept
            if stack is None:
                stack = np.empty((len(self.paths),) + frame.shape, dtype=frame.dtype)
            stack[k] = frame
        assert stack is not None
        return stack


def _check_stack(items: list[ImageHeader], iop: np.ndarray, rows_cols: tuple[Any, Any]) -> None:
    """The per-slice checks of :meth:`ReferenceSeries._from_items` for walked headers, at
    once: same orientation (``np.allclose``, atol 1e-4) and Rows/Columns as the first slice.

    Raises
    ------
    InputFileError
        Naming the first slice that differs (orientation checked before Rows/Columns).
    """
    planes = [h.plane for h in items if h.plane is not None]
    orientation = np.array([p.orientation for p in planes], dtype=float)
    bad_iop = ~np.all(np.isclose(orientation, iop, atol=1e-4), axis=1)
    bad_size = np.array([(p.rows, p.columns) != rows_cols for p in planes])
    bad = bad_iop | bad_size
    if np.any(bad):
        k = int(np.argmax(bad))
        if bad_iop[k]:
            raise InputFileError("slices have different ImageOrientationPatient (0020,0037)", items[k].path)
        raise InputFileError("slices have different Rows/Columns", items[k].path)


def _frame_planes(per_frame: list[Any], shared: Any, path: Path) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(positions (n, 3), orientation (6,), pixel spacing) of a multi-frame image's frames.

    Raises
    ------
    InputFileError
        A frame without plane position / orientation / pixel measures, or oriented
        differently from frame 1.
    """
    positions = np.empty((len(per_frame), 3))
    iop: np.ndarray | None = None
    ps: list[float] | None = None
    for f, fg in enumerate(per_frame):
        pos, orient, measures = (first_item(fg, name) or first_item(shared, name) for name in (
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
    return positions, iop, ps


def _frame_rescale(ds: Any) -> tuple[float, float]:
    """Rescale slope/intercept of a multi-frame image (shared PixelValueTransformation)."""
    item = first_item(first_item(ds, "SharedFunctionalGroupsSequence"), "PixelValueTransformationSequence")
    src = item if item is not None else ds
    return float(getattr(src, "RescaleSlope", 1) or 1), float(getattr(src, "RescaleIntercept", 0) or 0)


def _grid_from_planes(positions: np.ndarray, iop: np.ndarray, pixel_spacing: list[float], rows_cols: tuple[int, int],
                      single_spacing: Any, where: str | Path, names: list[Any]) -> tuple[np.ndarray, Grid]:
    """Sort planes along the normal; (order, Grid). ``names`` name each plane in errors.

    Irregularly spaced planes give a grid with ``slice_positions_mm`` (see core.geometry).

    Raises
    ------
    InputFileError
        Duplicate planes, or planes not stacked along the normal (gantry tilt).
    """
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
        slice_spacing = median_spacing(gaps)
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
