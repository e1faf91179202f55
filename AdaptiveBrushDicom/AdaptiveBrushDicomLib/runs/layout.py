"""Where things are in a run / gold standard folder: file and folder names, trial file
names, and resolving a relative path from a JSON file without leaving the folder.

Layout of a migrated run (see ``docs/migration.md``)::

    <run>/
      results.json              legacy fields + "dicom" block + per-trial dicom_* fields
      results.legacy.json       byte copy of the original results.json (written once)
      config.yaml               run configuration (names the sample volume)
      segmentations/trial_000.seg.nrrd ...   originals, never modified
      dicom/volume/0001.dcm ... the source DICOM files (renamed, slice order) or a synthetic series
      dicom/segmentations/trial_000.dcm ...  LABELMAP SEG per trial
      migration_report.json, migration_report.md

    GoldStandards/<name>/
      gold.seg.nrrd, metadata.json (+ "dicom" block), metadata.legacy.json
      dicom/volume/..., dicom/gold.dcm
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from AdaptiveBrushDicomLib.errors import InputFileError

RESULTS_NAME = "results.json"
LEGACY_RESULTS_NAME = "results.legacy.json"
CONFIG_NAME = "config.yaml"
LEGACY_SEG_DIR = "segmentations"
DICOM_DIR = "dicom"
VOLUME_DIR = "dicom/volume"
SEG_DIR = "dicom/segmentations"
GOLD_SOURCE_NAME = "gold.seg.nrrd"
GOLD_METADATA_NAME = "metadata.json"
GOLD_LEGACY_METADATA_NAME = "metadata.legacy.json"
GOLD_SEG_PATH = "dicom/gold.dcm"
REPORT_JSON_NAME = "migration_report.json"
REPORT_MD_NAME = "migration_report.md"
GOLD_STANDARDS_DIR_NAME = "GoldStandards"

#: Keys migration adds to each trial object of results.json.
TRIAL_DICOM_KEYS = ("dicom_status", "dicom_series_uid", "dicom_sop_instance_uid", "dicom_seg_path", "dicom_error")


def trial_seg_name(trial_number: int) -> str:
    """File name of a trial's SEG: ``trial_042.dcm`` (at least three digits)."""
    return f"trial_{int(trial_number):03d}.dcm"


def legacy_trial_candidates(trial_number: int) -> list[str]:
    """Conventional legacy locations of a trial's ``.seg.nrrd``, relative to the run."""
    n = int(trial_number)
    names = [f"trial_{n:03d}.seg.nrrd", f"trial_{n}.seg.nrrd"]
    return [f"{LEGACY_SEG_DIR}/{name}" for name in dict.fromkeys(names)]




def safe_relative_path(root: str | Path, rel: str, *, field_name: str, source: str | Path | None = None) -> Path:
    """Resolve ``rel`` inside ``root``, refusing anything that could leave it.

    Refused: absolute paths (POSIX or Windows drive), ``..`` components, and paths that
    leave ``root`` after resolving symlinks.

    Parameters
    ----------
    root : the run or gold-standard folder
    rel : the path as written in the JSON file
    field_name : JSON field name for the error message (e.g. ``trials/3/segmentation_path``)
    source : the JSON file, for the error message

    Returns
    -------
    Path
        ``root / rel`` (not resolved, so it stays readable in messages).

    Raises
    ------
    InputFileError
        ``rel`` is not text, empty, absolute, has ``..`` or leads out of ``root`` through a
        symlink (naming ``field_name`` and ``source``).
    """
    where = source if source is not None else root
    if not isinstance(rel, str):
        raise InputFileError(f"{field_name} must be a path (text), got {type(rel).__name__}", where)
    text = rel
    if "\x00" in text:
        raise InputFileError(f"{field_name} contains a NUL byte; it is not a path", where)
    if not text.strip():
        raise InputFileError(f"{field_name} is empty; give a path relative to the folder", where)
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise InputFileError(
            f"{field_name} is an absolute path ({text!r}); only paths relative to the folder are accepted", where
        )
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if ".." in parts:
        raise InputFileError(f"{field_name} ({text!r}) contains '..'; paths may not leave the folder", where)
    root = Path(root)
    candidate = root.joinpath(*parts)
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(candidate))
    if real != root_real and root_real not in real.parents:
        raise InputFileError(
            f"{field_name} ({text!r}) leads outside the folder (symlink to {real}); copy the file into the folder",
            where,
        )
    return candidate


def is_run_dir(path: Path) -> bool:
    """A folder holding ``results.json`` (an optimization run)."""
    return path.is_dir() and (path / RESULTS_NAME).is_file()


def is_gold_dir(path: Path) -> bool:
    """A folder holding ``gold.seg.nrrd`` (a gold standard)."""
    return path.is_dir() and (path / GOLD_SOURCE_NAME).is_file()


__all__ = [
    "RESULTS_NAME", "LEGACY_RESULTS_NAME", "CONFIG_NAME", "LEGACY_SEG_DIR", "DICOM_DIR", "VOLUME_DIR", "SEG_DIR",
    "GOLD_SOURCE_NAME", "GOLD_METADATA_NAME", "GOLD_LEGACY_METADATA_NAME", "GOLD_SEG_PATH", "REPORT_JSON_NAME",
    "REPORT_MD_NAME", "GOLD_STANDARDS_DIR_NAME", "TRIAL_DICOM_KEYS", "trial_seg_name", "legacy_trial_candidates",
    "safe_relative_path", "is_run_dir", "is_gold_dir",
]
