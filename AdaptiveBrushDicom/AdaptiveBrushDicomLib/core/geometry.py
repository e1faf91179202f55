"""Voxel grids in DICOM patient coordinates (LPS).

Conventions used everywhere in this package
-------------------------------------------
* Arrays are indexed ``[k, j, i]`` (slice, row, column), as numpy / SimpleITK
  ``GetArrayFromImage`` return them.
* Every ``Grid`` field and method whose value depends on the axis order says the order
  in its name:

  - ``Grid.shape_kji`` is ``(nk, nj, ni)``, the array order (numpy ``.shape``);
  - ``Grid.size_ijk`` is ``(ni, nj, nk)`` (SimpleITK ``GetSize()`` order);
  - ``Grid.spacing_ijk`` is ``(si, sj, sk)`` in millimetres, index order
    (SimpleITK ``GetSpacing()`` order, DICOM PixelSpacing is ``(sj, si)``);
  - ``Grid.lattice_offset_kji`` returns ``(dk, dj, di)``, array order.
* ``Grid.origin`` is the LPS position (mm) of the centre of voxel ``(i, j, k) = (0, 0, 0)``.
* ``Grid.direction`` is a 3x3 matrix whose **columns** are the unit vectors of the
  i, j and k axes in LPS (SimpleITK's direction reshaped row-major).
* Slicer uses RAS = diag(-1, -1, 1) * LPS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk

#: Default tolerance (mm) for positions and spacings when comparing grids.
POSITION_TOLERANCE_MM = 1e-3
#: Default tolerance for direction cosines.
DIRECTION_TOLERANCE = 1e-4

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


class GeometryError(ValueError):
    """Raised when a grid is invalid or two grids are incompatible."""


def int3(values: "Iterable[int] | np.ndarray") -> tuple[int, int, int]:
    """Three ints as a typed triple (a shape or an index, in the order given).

    Raises
    ------
    GeometryError
        When ``values`` does not hold exactly three values.
    """
    t = tuple(int(v) for v in values)
    if len(t) != 3:
        raise GeometryError(f"grid shape must be three positive sizes, got {t}")
    return (t[0], t[1], t[2])


def float3(values: "Iterable[float] | np.ndarray") -> tuple[float, float, float]:
    """Three floats as a typed triple (a spacing or a position, in the order given).

    Raises
    ------
    GeometryError
        When ``values`` does not hold exactly three values.
    """
    t = tuple(float(v) for v in values)
    if len(t) != 3:
        raise GeometryError(f"expected three values (mm), got {t}")
    return (t[0], t[1], t[2])


@dataclass(frozen=True)
class Grid:
    """A regular 3D voxel grid in LPS.

    Parameters
    ----------
    shape_kji : (nk, nj, ni) number of voxels in array order.
    spacing_ijk : (si, sj, sk) voxel spacing in mm along i, j, k (index order).
    origin : LPS position (mm) of the centre of voxel (0, 0, 0).
    direction : 3x3, columns are the LPS unit vectors of the i, j, k axes.
    """

    shape_kji: tuple[int, int, int]
    spacing_ijk: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __post_init__(self) -> None:
        shape = tuple(int(v) for v in self.shape_kji)
        spacing = tuple(float(v) for v in self.spacing_ijk)
        origin = tuple(float(v) for v in self.origin)
        direction = np.array(self.direction, dtype=float).reshape(3, 3)
        if len(shape) != 3 or min(shape) < 1:
            raise GeometryError(f"grid shape must be three positive sizes, got {self.shape_kji}")
        if len(spacing) != 3 or min(spacing) <= 0:
            raise GeometryError(f"grid spacing must be three positive values (mm), got {self.spacing_ijk}")
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-3):
            raise GeometryError("grid direction columns must be orthonormal unit vectors")
        direction.setflags(write=False)
        object.__setattr__(self, "shape_kji", shape)
        object.__setattr__(self, "spacing_ijk", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_sitk(cls, image: "sitk.Image") -> "Grid":
        """Grid of a 3D SimpleITK image (SimpleITK uses LPS)."""
        size = image.GetSize()
        if len(size) != 3:
            raise GeometryError(f"expected a 3D image, got {len(size)}D")
        return cls(
            shape_kji=(size[2], size[1], size[0]),
            spacing_ijk=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=np.array(image.GetDirection()).reshape(3, 3),
        )

    @classmethod
    def from_ijk_to_lps(cls, matrix: np.ndarray, shape_kji: Sequence[int]) -> "Grid":
        """Grid from a 4x4 IJK->LPS matrix and a (nk, nj, ni) shape."""
        m = np.asarray(matrix, dtype=float)
        if m.shape != (4, 4):
            raise GeometryError(f"IJK->LPS matrix must be 4x4, got {m.shape}")
        axes = m[:3, :3]
        spacing = np.linalg.norm(axes, axis=0)
        if np.any(spacing <= 0):
            raise GeometryError("IJK->LPS matrix has a zero-length axis")
        return cls(int3(shape_kji), float3(spacing), float3(m[:3, 3]), axes / spacing)

    @classmethod
    def from_ijk_to_ras(cls, matrix: np.ndarray, shape_kji: Sequence[int]) -> "Grid":
        """Grid from a Slicer IJKToRAS 4x4 matrix and a (nk, nj, ni) shape."""
        m = np.array(matrix, dtype=float)
        m[:3, :] = LPS_TO_RAS @ m[:3, :]
        return cls.from_ijk_to_lps(m, shape_kji)

    # ------------------------------------------------------------------ matrices
    @property
    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction * np.asarray(self.spacing_ijk)
        m[:3, 3] = self.origin
        return m

    @property
    def ijk_to_ras(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to Slicer RAS mm."""
        m = self.ijk_to_lps
        m[:3, :] = LPS_TO_RAS @ m[:3, :]
        return m

    @property
    def size_ijk(self) -> tuple[int, int, int]:
        """(ni, nj, nk), SimpleITK ``GetSize()`` order."""
        return (self.shape_kji[2], self.shape_kji[1], self.shape_kji[0])

    @property
    def slice_normal(self) -> np.ndarray:
        """LPS unit vector of the k axis."""
        return np.array(self.direction[:, 2])

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map an (..., 3) array of (i, j, k) indices to LPS mm."""
        ijk = np.asarray(ijk, dtype=float)
        return np.asarray(ijk @ (self.direction * np.asarray(self.spacing_ijk)).T + np.asarray(self.origin))

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """Map an (..., 3) array of LPS mm to continuous (i, j, k) indices."""
        lps = np.asarray(lps, dtype=float) - np.asarray(self.origin)
        return np.asarray((lps @ self.direction) / np.asarray(self.spacing_ijk))

    def slice_origins(self) -> np.ndarray:
        """(nk, 3) LPS positions of voxel (i=0, j=0) of every slice k."""
        ks = np.arange(self.shape_kji[0], dtype=float)
        return np.asarray(self.origin) + np.outer(ks, self.direction[:, 2] * self.spacing_ijk[2])

    def with_shape_and_origin(self, shape_kji: Sequence[int], origin: Sequence[float]) -> "Grid":
        """Same spacing and direction, new ``(nk, nj, ni)`` shape and LPS origin (mm)."""
        return Grid(int3(shape_kji), self.spacing_ijk, float3(origin), self.direction)

    def apply_to_sitk(self, image: "sitk.Image") -> "sitk.Image":
        """Set spacing, origin and direction of ``image`` to this grid (in place)."""
        image.SetSpacing(self.spacing_ijk)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.reshape(-1)))
        return image

    # ---------------------------------------------------------------- comparison
    def same_orientation(self, other: "Grid", tol: float = DIRECTION_TOLERANCE) -> bool:
        return bool(np.allclose(self.direction, other.direction, atol=tol))

    def almost_equal(
        self, other: "Grid", pos_tol: float = POSITION_TOLERANCE_MM, dir_tol: float = DIRECTION_TOLERANCE
    ) -> bool:
        """Same shape, and spacing/origin/direction equal within tolerances."""
        return (
            self.shape_kji == other.shape_kji
            and np.allclose(self.spacing_ijk, other.spacing_ijk, atol=pos_tol)
            and np.allclose(self.origin, other.origin, atol=pos_tol)
            and self.same_orientation(other, dir_tol)
        )

    def lattice_offset_kji(
        self, other: "Grid", pos_tol: float = POSITION_TOLERANCE_MM, dir_tol: float = DIRECTION_TOLERANCE
    ) -> tuple[int, int, int] | None:
        """Integer (dk, dj, di) such that voxel (k, j, i) of ``other`` is voxel
        (k + dk, j + dj, i + di) of ``self``; None if the voxel centres do not coincide
        (different spacing, orientation, or a non-integer shift)."""
        if not self.same_orientation(other, dir_tol):
            return None
        if not np.allclose(self.spacing_ijk, other.spacing_ijk, atol=pos_tol):
            return None
        idx = self.lps_to_index(np.asarray(other.origin))
        rounded = np.round(idx)
        # compare in mm so the tolerance does not depend on spacing
        if np.any(np.abs(idx - rounded) * np.asarray(self.spacing_ijk) > pos_tol * 10):
            return None
        di, dj, dk = (int(v) for v in rounded)
        return (dk, dj, di)

    def same_lattice(self, other: "Grid") -> bool:
        """True when both grids' voxel centres lie on one lattice (extents may differ)."""
        return self.lattice_offset_kji(other) is not None

    def describe(self) -> str:
        return (
            f"shape (k,j,i)={self.shape_kji}, spacing (i,j,k)={tuple(round(s, 6) for s in self.spacing_ijk)} mm, "
            f"origin LPS={tuple(round(o, 4) for o in self.origin)} mm"
        )

    def __eq__(self, other: object) -> bool:  # tolerance-aware
        return isinstance(other, Grid) and self.almost_equal(other)

    def __hash__(self) -> int:  # pragma: no cover - grids are not dict keys
        return hash(self.shape_kji)
