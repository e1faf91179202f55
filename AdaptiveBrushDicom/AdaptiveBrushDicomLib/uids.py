"""Deterministic UIDs: same stable inputs -> same UID (design rule 4).

UIDs are derived with pydicom's ``generate_uid(entropy_srcs=...)`` (SHA-512 of the
sources under pydicom's root), so a second migration of the same data yields the same
Study, Series and SOP Instance UIDs and no duplicates in any database.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .geometry import Grid

#: Namespace string mixed into every derivation, so our UIDs never collide with
#: another tool that hashes the same strings.
NAMESPACE = "AdaptiveBrushDicom/1"


def derive_uid(*parts: object) -> str:
    """UID derived from ``parts`` (converted with ``str``)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[NAMESPACE, *[str(p) for p in parts]]))


def content_digest(array: np.ndarray, grid: Grid) -> str:
    """SHA-256 hex digest of an image's voxels and geometry (dtype-independent values)."""
    h = hashlib.sha256()
    a = np.ascontiguousarray(array)
    h.update(str(a.dtype.kind).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    h.update(np.round(grid.ijk_to_lps, 5).tobytes())
    return h.hexdigest()


def study_uid(patient_id: str, digest: str) -> str:
    return derive_uid("study", patient_id, digest)


def volume_series_uid(patient_id: str, digest: str) -> str:
    return derive_uid("volume-series", patient_id, digest)


def frame_of_reference_uid(patient_id: str, digest: str) -> str:
    return derive_uid("frame-of-reference", patient_id, digest)


def instance_uid(series_uid: str, index: int) -> str:
    return derive_uid("instance", series_uid, index)


def seg_series_uid(*stable_parts: object) -> str:
    """Series UID of a SEG from stable inputs (e.g. study UID, run name, trial number)."""
    return derive_uid("seg-series", *stable_parts)
