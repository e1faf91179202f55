"""Steps of the module's workflows that are decisions, not MRML calls: output folders,
verification of a written SEG, which files a migration wrote, and the one-line messages
the Slicer user sees (in Slicer terms: no CLI flags).

Never imports slicer, vtk, qt or ctk.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from AdaptiveBrushDicomLib.errors import ReferenceMismatchError, UserError


class VerificationError(RuntimeError):
    """The SEG just written does not decode to the segmentation it was made from (a bug,
    not a user mistake: the message names the file)."""


def new_output_directory(base: str | os.PathLike[str], kind: str, now: float | None = None) -> Path:
    """Create and return ``<base>/AdaptiveBrushDicom/<kind>/<YYYYmmdd-HHMMSS>[-n]`` (never an
    existing folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    root = Path(base) / "AdaptiveBrushDicom" / kind
    n, candidate = 1, root / stamp
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{n}"
    candidate.mkdir(parents=True)
    return candidate


def unused_path(folder: str | os.PathLike[str], stem: str, suffix: str = ".dcm") -> Path:
    """``folder/stem.dcm``, or ``stem_2.dcm``, ... whichever does not exist."""
    base = Path(folder) / stem
    path, n = base.with_name(base.name + suffix), 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}_{n}{suffix}")
    return path


def verify_written_seg(path: str | os.PathLike[str], expected: np.ndarray, decoded: np.ndarray) -> None:
    """Check that ``decoded`` (the written SEG read back, on the reference series' grid,
    (k, j, i)) equals ``expected`` voxel for voxel.

    Raises
    ------
    VerificationError
        Shapes differ, or any voxel differs (the message names the file and the count).
    """
    if decoded.shape != expected.shape:
        raise VerificationError(f"{path}: decoding the written SEG gives shape {decoded.shape}, expected {expected.shape}")
    differ = int(np.count_nonzero(decoded != expected))
    if differ:
        raise VerificationError(f"{path}: decoding the written SEG differs from the segmentation in {differ} voxels")


def written_dicom_files(report_folders: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The ``.dcm`` files under ``<folder>/dicom`` of each migrated folder (sorted per folder):
    what the module indexes into the DICOM database after a migration."""
    out: list[str] = []
    for folder in report_folders:
        for root, _, files in sorted(os.walk(Path(folder) / "dicom")):
            out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(".dcm")]
    return out


def missing_source_image(exc: BaseException) -> bool:
    """True when a migration stopped because the run does not store its source image (the
    module then asks the user for the image and retries)."""
    return isinstance(exc, UserError) and "source image is not stored with the run" in str(exc)


def slicer_message(exc: BaseException) -> str:
    """A core ``UserError`` message in Slicer terms: hints at ``abdicom`` command-line
    options (which the Slicer user has no way to pass) are replaced."""
    text = str(exc)
    if isinstance(exc, ReferenceMismatchError) and "--resample" in text:
        text = text.split("; pass --resample")[0] + (
            "; the segmentation must be on the reference volume's voxel grid (Segment Editor: "
            "'Specify geometry' with the reference volume, or Resample Scalar/Vector/DWI Volume)")
    return text


def irregular_series_message(volume_name: str, transform_name: str | None, segmentation_name: str) -> str:
    """A segmentation that is not in the slice stack Slicer loaded an irregularly spaced (or
    tilted) series in. Slicer's scalar volume plugin loads such a series onto a regular grid,
    one grid slice per image, and shows the true positions through a non-linear *acquisition
    transform*; a segmentation under that same transform has one labelmap slice per image and
    exports exactly onto the series' own slices. Hardening would resample the volume and lose
    its DICOM link, so the message does not suggest it."""
    shown = f" through {transform_name!r}" if transform_name else ""
    return (
        f"volume {volume_name!r} comes from a DICOM series with irregular slice spacing (Slicer shows it{shown}), "
        f"but segmentation {segmentation_name!r} is not in that volume's slice stack, so its slices cannot be "
        f"matched to the series' images; load the SEG after the volume (it is then placed in the volume's "
        f"slice stack), or move the segmentation under {transform_name or 'the volume’s transform'!r} in the Data module "
        "before drawing"
    )


def transformed_node_message(node_name: str, transform_name: str, what: str) -> str:
    """A node under a (linear) transform: DICOM stores untransformed positions."""
    return (
        f"{what} {node_name!r} is under transform {transform_name!r}; DICOM stores positions without "
        "transforms, so harden the transform on it (Data module: right-click, 'Harden transform') or "
        "move it out of the transform first"
    )


class ProgressStream:
    """File-like object for the core migration's progress lines -> ``callback(text)``."""

    def __init__(self, callback: Callable[[str], None] | None):
        self.callback = callback

    def write(self, text: str) -> int:
        line = text.strip("\r\n ")
        if line and self.callback is not None:
            self.callback(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
