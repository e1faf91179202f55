"""Deterministic UIDs: same stable inputs -> same UID (design rule 4).

UIDs are derived with pydicom's ``generate_uid(entropy_srcs=...)`` (SHA-512 of the
sources under pydicom's root), so a second migration of the same data yields the same
Study, Series and SOP Instance UIDs and no duplicates in any database.
"""

from __future__ import annotations

import hashlib

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid

#: Namespace string mixed into every derivation, so our UIDs never collide with
#: another tool that hashes the same strings.
NAMESPACE = "AdaptiveBrushDicom/1"


def derive_uid(*parts: object) -> str:
    """UID derived from ``parts`` (converted with ``str``)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[NAMESPACE, *[str(p) for p in parts]]))


def canonical_dtype(array: np.ndarray) -> np.dtype:
    """Storage-independent dtype for hashing: chosen from the value range only, so the
    same values stored as uint8, int16, uint16 or integral float32 hash identically.
    Non-integral floats hash as float64."""
    a = np.asarray(array)
    if a.size == 0:
        return np.dtype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.bool_)):
        if not np.all(np.mod(a, 1) == 0):
            return np.dtype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    for dt in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dt)
        if lo >= info.min and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def content_digest(array: np.ndarray, grid: Grid) -> str:
    """SHA-256 hex digest of an image's voxel values and geometry. Independent of the
    storage dtype (see :func:`canonical_dtype`); hashed one slice at a time, so memory
    stays at one slice whatever the volume size."""
    h = hashlib.sha256()
    a = np.asarray(array)
    dt = canonical_dtype(a)
    h.update(dt.str.encode())
    h.update(str(a.shape).encode())
    if a.size and a.dtype == dt and a.flags.c_contiguous:
        h.update(a.data.cast("B"))  # the same bytes as slice by slice, without copying them
    else:
        for plane in a.reshape((-1,) + a.shape[-2:]) if a.ndim >= 2 else [a]:
            h.update(np.ascontiguousarray(plane, dtype=dt).tobytes())
    if grid.is_regular:
        h.update(np.round(grid.ijk_to_lps, 5).tobytes())
    else:  # irregular slices: no single matrix; the slice origins and the in-plane axes say it all
        h.update(np.round(grid.slice_origins(), 5).tobytes())
        h.update(np.round(grid.direction * np.asarray(grid.spacing_ijk), 5).tobytes())
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
