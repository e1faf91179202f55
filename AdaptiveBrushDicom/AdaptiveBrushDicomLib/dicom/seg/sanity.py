"""Checks of a SEG's header before anything is placed, allocated or decoded.

A hostile or broken SEG must end in one line naming the file and the attribute, never a
traceback or an allocation the machine cannot make. These checks run in
:func:`~.seg.read.read_seg` on values already parsed (plain numbers, numpy arrays):

* dimensions: Rows, Columns, NumberOfFrames positive, their product within ``--max-voxels``;
* plane geometry: orientation two finite unit vectors at right angles, pixel spacing two
  finite positive values, positions three finite values within :data:`MAX_POSITION_MM`;
* slide microscopy and other 2D images: said in words (:func:`refuse_2d`);
* encapsulated frames: a JPEG-LS / JPEG 2000 frame's own header must have Rows x Columns
  (a small file whose codestream claims 60000 x 60000 is a decompression bomb).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.io.limits import check_voxels

#: Largest |coordinate| accepted in ImagePositionPatient (mm): 100 m, far beyond any scanner.
MAX_POSITION_MM = 1e5
#: Tolerance on |row| = |column| = 1 and row . column = 0 in ImageOrientationPatient.
ORIENTATION_TOLERANCE = 1e-3
#: Smallest pixel or slice spacing accepted (mm): 1 nm; below is a broken header.
MIN_SPACING_MM = 1e-6

_PLANE_POSITION_SLIDE = 0x0048021A
_TOTAL_PIXEL_MATRIX_COLUMNS = 0x00480006  # (0048,0006); a tiled slide image has it


def check_dimensions(rows: int, cols: int, frames: int, path: Path) -> None:
    """Rows, Columns, NumberOfFrames positive and within ``--max-voxels``.

    Raises
    ------
    InputFileError
        Rows, Columns or NumberOfFrames is 0 or negative (naming the tag).
    LimitError
        Their product is over ``--max-voxels`` (:func:`~.limits.check_voxels`).
    """
    for name, tag, v in (("Rows", "(0028,0010)", rows), ("Columns", "(0028,0011)", cols),
                         ("NumberOfFrames", "(0028,0008)", frames)):
        if v <= 0:
            raise InputFileError(f"{name} {tag} is {v}; a SEG needs at least one {name[:-1].lower()}", path)
    check_voxels(rows * cols * frames, "Rows x Columns x NumberOfFrames", path)


def refuse_2d(ds: Any, path: Path) -> None:
    """Refuse, in words, a SEG of a slide-microscopy or other 2D image (no patient positions).

    Raises
    ------
    InputFileError
        The SEG places its frames on a slide (PlanePositionSlideSequence, TotalPixelMatrix)
        or has no PlanePositionSequence anywhere.
    """
    shared = ds.get("SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    groups = list(shared or []) + list(per_frame[:1] if per_frame else [])
    slide = _TOTAL_PIXEL_MATRIX_COLUMNS in ds or any(_PLANE_POSITION_SLIDE in g for g in groups)
    if slide:
        raise InputFileError(
            "this SEG segments a slide-microscopy image (frames are placed on a glass slide: "
            "PlanePositionSlideSequence / TotalPixelMatrix, not positions in the patient); abdicom decodes "
            "segmentations of 3D image series (CT, MR, PET) only; open it in a slide viewer such as QuPath or "
            "Slim",
            path,
        )
    if groups and not any("PlanePositionSequence" in g for g in groups) and "PlanePositionSequence" not in ds:
        raise InputFileError(
            "this SEG has no frame positions in the patient (no PlanePositionSequence (0020,9113)): it segments "
            "a 2D image (an X-ray, photo or screenshot), not a 3D series; abdicom decodes segmentations of 3D "
            "image series only",
            path,
        )


def check_plane_geometry(positions: np.ndarray, iop: np.ndarray, ps: list[float], gap: float | None,
                         path: Path) -> float | None:
    """Validate the frame geometry; returns the slice spacing to use (None: derive it).

    A SpacingBetweenSlices that is not finite or not positive is ignored (the spacing is
    then derived from the frame positions), not trusted.

    Raises
    ------
    InputFileError
        Orientation missing/zero/NaN/not unit/not perpendicular; PixelSpacing not two
        finite positive values; positions not three finite values within MAX_POSITION_MM.
    """
    iop = np.asarray(iop, dtype=float)
    if iop.shape != (6,) or not np.all(np.isfinite(iop)):
        raise InputFileError(f"ImageOrientationPatient (0020,0037) must be 6 finite numbers, got {iop.tolist()}",
                             path)
    row, col = iop[:3], iop[3:]
    if (abs(np.linalg.norm(row) - 1) > ORIENTATION_TOLERANCE or abs(np.linalg.norm(col) - 1) > ORIENTATION_TOLERANCE):
        raise InputFileError(
            f"ImageOrientationPatient (0020,0037) {iop.round(6).tolist()} is not two unit vectors "
            "(zero or unnormalised); the frames cannot be placed", path)
    if abs(float(row @ col)) > ORIENTATION_TOLERANCE:
        raise InputFileError(
            f"ImageOrientationPatient (0020,0037) {iop.round(6).tolist()}: row and column are not at right angles "
            f"(parallel or skewed, cos = {float(row @ col):.4f}); the frames cannot be placed", path)
    ps_arr = np.asarray(ps, dtype=float)
    if ps_arr.shape != (2,) or not np.all(np.isfinite(ps_arr)) or np.any(ps_arr < MIN_SPACING_MM):
        raise InputFileError(f"PixelSpacing (0028,0030) must be two positive numbers (mm), got {ps_arr.tolist()}",
                             path)
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputFileError("ImagePositionPatient (0020,0032) must have 3 values in every frame", path)
    bad = ~np.all(np.isfinite(pos), axis=1) | np.any(np.abs(pos) > MAX_POSITION_MM, axis=1)
    if np.any(bad):
        f = int(np.argmax(bad))
        raise InputFileError(
            f"frame {f + 1}: ImagePositionPatient (0020,0032) {pos[f].tolist()} is not a position in the patient "
            f"(not finite or beyond {MAX_POSITION_MM:.0e} mm)", path)
    if gap is None or not np.isfinite(gap) or gap < MIN_SPACING_MM:
        return None
    return float(gap)


def numbers(values: Any, name: str, path: Path) -> list[float]:
    """The floats of a DS/FD element value (one value or several), or a one-line error.

    Raises
    ------
    InputFileError
        Missing or not numbers.
    """
    if values is None or values == "":
        raise InputFileError(f"{name} is missing; the frames cannot be placed", path)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputFileError(f"{name} {values!r} is not numbers", path) from None


def positions_of(values: Any, frame: int, path: Path) -> list[float]:
    """Three floats of one frame's ImagePositionPatient, or a one-line error.

    Raises
    ------
    InputFileError
        The value is not three numbers (naming the frame and the tag).
    """
    if values is None or isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputFileError(f"frame {frame + 1}: ImagePositionPatient (0020,0032) {values!r} is not numbers",
                             path) from None
    if len(out) != 3:
        raise InputFileError(
            f"frame {frame + 1}: ImagePositionPatient (0020,0032) has {len(out)} values, not 3", path)
    return out


# ------------------------------------------------------------------ codestreams
def check_codestream_sizes(ds: Any, rows: int, cols: int, path: Path) -> None:
    """Refuse JPEG-LS / JPEG 2000 frames whose codestream claims a size other than Rows x Columns.

    Only the frame headers are read (markers SOF55 / SIZ), never decoded.

    Raises
    ------
    InputFileError
        A frame's codestream size differs from the dataset's.
    """
    ts = str(ds.file_meta.TransferSyntaxUID)
    if not ts.startswith("1.2.840.10008.1.2.4."):
        return
    data = ds.get("PixelData")
    if not isinstance(data, (bytes, bytearray)):
        return
    from pydicom.encaps import generate_frames

    try:
        frames = generate_frames(bytes(data), number_of_frames=int(getattr(ds, "NumberOfFrames", 1) or 1))
        for f, frame in enumerate(frames):
            size = _codestream_size(frame)
            if size is not None and size != (rows, cols):
                raise InputFileError(
                    f"frame {f + 1}: its compressed data says {size[0]} x {size[1]} pixels, the header "
                    f"Rows x Columns {rows} x {cols} (a decompression bomb?); the file is broken", path)
    except InputFileError:
        raise
    except (ValueError, KeyError, IndexError, struct.error) as exc:
        raise InputFileError(f"encapsulated pixel data is malformed ({exc})", path) from None


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG-LS SOF55 or JPEG 2000 SIZ marker; None if neither is found."""
    if frame[:2] == b"\xff\xd8":  # JPEG family: walk markers to the SOF
        pos = 2
        while pos + 4 <= len(frame):
            if frame[pos] != 0xFF:
                return None
            marker = frame[pos + 1]
            length = struct.unpack_from(">H", frame, pos + 2)[0]
            if marker in (0xF7, 0xC0, 0xC1, 0xC3) and pos + 9 <= len(frame):  # SOF55 / SOF0-3
                height, width = struct.unpack_from(">HH", frame, pos + 5)
                return height, width
            pos += 2 + length
        return None
    start = frame.find(b"\xff\x4f\xff\x51")  # J2K codestream: SOC then SIZ
    if start < 0 or start + 24 > len(frame):
        return None
    xsiz, ysiz, xo, yo = struct.unpack_from(">IIII", frame, start + 8)
    return ysiz - yo, xsiz - xo


__all__ = ["MAX_POSITION_MM", "check_codestream_sizes", "numbers", "check_dimensions", "check_plane_geometry",
           "positions_of", "refuse_2d"]
