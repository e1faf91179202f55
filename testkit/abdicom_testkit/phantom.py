"""Deterministic synthetic data: an MR-like head phantom with labelled structures.

Used by the demo, the tests and the benchmarks so they need no downloads.
"""

from __future__ import annotations

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology

#: Structures of the phantom: (label, name, centre (i, j, k) as fraction of the size,
#: radii as fraction, intensity, SNOMED type code, RGB).
STRUCTURES = [
    (1, "Brain", (0.5, 0.5, 0.5), (0.38, 0.42, 0.40), 600, Code("12738006", "SCT", "Brain"), (250, 250, 225)),
    (2, "Left ventricle", (0.42, 0.45, 0.5), (0.06, 0.12, 0.10), 200,
     Code("35764002", "SCT", "Cerebral ventricle"), (88, 106, 215)),
    (3, "Right ventricle", (0.58, 0.45, 0.5), (0.06, 0.12, 0.10), 200,
     Code("35764002", "SCT", "Cerebral ventricle"), (120, 140, 230)),
    (4, "Tumor", (0.35, 0.62, 0.58), (0.09, 0.08, 0.09), 1100, Code("108369006", "SCT", "Neoplasm"), (255, 60, 40)),
    (300, "Edema", (0.65, 0.66, 0.42), (0.08, 0.06, 0.07), 850, Code("79654002", "SCT", "Edema"), (128, 174, 128)),
]

MORPHOLOGICALLY_ABNORMAL = Code("49755003", "SCT", "Morphologically Altered Structure")
ANATOMICAL_STRUCTURE = Code("123037004", "SCT", "Anatomical Structure")


def phantom_grid(shape: tuple[int, int, int] = (40, 96, 96), spacing=(0.9375, 0.9375, 1.4),
                 origin=(-45.0, -45.0, -28.0), direction=None) -> Grid:
    """Grid of the phantom; ``shape`` is (k, j, i)."""
    return Grid(shape, spacing, origin, np.eye(3) if direction is None else direction)


def make_phantom(grid: Grid | None = None, seed: int = 7) -> tuple[np.ndarray, np.ndarray, list[Segment]]:
    """(image int16 (k,j,i), labelmap uint16 (k,j,i), segments) on ``grid``.

    Later structures overwrite earlier ones, so the labelmap has no overlaps. Label
    300 (> 255) is included on purpose.
    """
    grid = grid or phantom_grid()
    nk, nj, ni = grid.shape_kji
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    rng = np.random.default_rng(seed)
    image = rng.normal(80, 15, size=grid.shape_kji)
    labels = np.zeros(grid.shape_kji, dtype=np.uint16)
    segments = []
    for label, name, c, r, value, type_code, rgb in STRUCTURES:
        d = ((i / ni - c[0]) / r[0]) ** 2 + ((j / nj - c[1]) / r[1]) ** 2 + ((k / nk - c[2]) / r[2]) ** 2
        inside = d <= 1.0
        labels[inside] = label
        image[inside] = value + rng.normal(0, 25, size=int(inside.sum()))
        category = MORPHOLOGICALLY_ABNORMAL if name in ("Tumor", "Edema") else ANATOMICAL_STRUCTURE
        segments.append(Segment(
            label=label, name=name, color=rgb,
            terminology=Terminology(category=category, type=type_code),
            algorithm_type=AlgorithmType.MANUAL, segment_id=f"Segment_{label}",
        ))
    return np.clip(image, 0, 4000).astype(np.int16), labels, segments
