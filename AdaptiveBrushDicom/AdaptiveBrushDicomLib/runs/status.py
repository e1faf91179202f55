"""The status vocabulary of migration, shared by the report and ``results.json``.

One set of enums for every place a status is written or compared: the per-trial
``dicom_status`` of results.json (:class:`TrialStatus`), the per-item status of
``migration_report.json`` (:class:`ItemStatus`), the folder status (:class:`FolderStatus`),
what a folder is (:class:`FolderKind`), where its volume series comes from
(:class:`VolumeSource`) and why an item failed (:class:`ReasonCode`). All are ``str``
enums, so they compare equal to and serialise as their plain values.
"""

from __future__ import annotations

import enum


class TrialStatus(str, enum.Enum):
    """``dicom_status`` of a trial in results.json."""

    MIGRATED = "migrated"
    PRUNED = "pruned"
    NO_SEGMENTATION = "no_segmentation"
    FAILED = "failed"
    #: the .seg.nrrd changed after its SEG was written; the SEG is kept (made from the old file)
    CHANGED = "changed"


class ItemStatus(str, enum.Enum):
    """Outcome of one trial / gold segmentation in a migration."""

    MIGRATED = "migrated"
    SKIPPED = "skipped"
    FAILED = "failed"
    PLANNED = "planned"
    CHANGED = "changed"

    @property
    def is_problem(self) -> bool:
        """Whether this outcome makes the folder (and the exit code) fail."""
        return self in (ItemStatus.FAILED, ItemStatus.CHANGED)


class FolderStatus(str, enum.Enum):
    """Outcome of one run / gold standard folder."""

    PENDING = "pending"
    MIGRATED = "migrated"
    PARTIAL = "partial"
    FAILED = "failed"
    ALREADY_MIGRATED = "already_migrated"
    PLANNED = "planned"


class FolderKind(str, enum.Enum):
    """What a migrated folder is."""

    RUN = "run"
    GOLD_STANDARD = "gold_standard"


class VolumeSource(str, enum.Enum):
    """``dicom.volume_source``: where ``dicom/volume/`` came from."""

    #: the source image was a DICOM series: its files, byte for byte
    ORIGINAL = "original"
    #: the source image was not DICOM: a synthetic series made from its voxels
    SYNTHETIC = "synthetic"


class ReasonCode(str, enum.Enum):
    """Why an item was skipped, failed or changed (``reason_code`` in the report)."""

    PRUNED = "pruned"
    MISSING_FILE = "missing_file"
    DUPLICATE = "duplicate"
    PATH_OUTSIDE = "path_outside"
    OVERLAP = "overlap"
    WRONG_GEOMETRY = "wrong_geometry"
    UNREADABLE = "unreadable"
    CONFLICT = "conflict"
    CHANGED = "changed"
    VERIFY_MISMATCH = "verify_mismatch"
    IO_ERROR = "io_error"
    ERROR = "error"


__all__ = ["TrialStatus", "ItemStatus", "FolderStatus", "FolderKind", "VolumeSource", "ReasonCode"]
