"""The content digest behind every migrated SEG's SOP Instance UID (docs/migration.md,
"UIDs and DICOM attributes"): a function of the voxel values and the geometry only.

The digest must never change for a given labelmap (a re-run compares the UID of an existing
SEG with the one derived from its source: another digest would report every migrated trial
as ``changed``), whatever dtype or memory layout the voxels come in.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.dicom import uids


def slice_by_slice(array: np.ndarray, grid: Grid) -> str:
    """The digest as defined: canonical dtype, shape, then every slice's bytes in that dtype."""
    h = hashlib.sha256()
    dt = uids.canonical_dtype(array)
    h.update(dt.str.encode())
    h.update(str(array.shape).encode())
    for plane in array.reshape((-1,) + array.shape[-2:]):
        h.update(np.ascontiguousarray(plane, dtype=dt).tobytes())
    h.update(np.round(grid.ijk_to_lps, 5).tobytes())
    return h.hexdigest()


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 12, size=(9, 20, 22)).astype(np.uint8)


def test_digest_is_the_defined_one_for_every_dtype_and_layout(labels):
    grid = Grid.from_ijk_to_lps(np.diag([0.8, 0.9, 2.5, 1.0]), labels.shape)
    want = slice_by_slice(labels, grid)
    variants = {
        "uint8 C": labels,
        "int16": labels.astype(np.int16),
        "uint16 big endian": labels.astype(">u2"),
        "int64": labels.astype(np.int64),
        "float32 integral": labels.astype(np.float32),
        "Fortran order": np.asfortranarray(labels),
        "reversed view": labels[::-1][::-1],
    }
    for name, array in variants.items():
        assert uids.content_digest(array, grid) == want, name
    other = labels.copy()
    other[4, 10, 11] += 1
    assert uids.content_digest(other, grid) != want
    shifted = Grid.from_ijk_to_lps(np.array([[0.8, 0, 0, 1.0], [0, 0.9, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]]),
                                   labels.shape)
    assert uids.content_digest(labels, shifted) != want

