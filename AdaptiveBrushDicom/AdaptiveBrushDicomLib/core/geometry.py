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

Irregular slice spacing
-----------------------
A grid may have slices at irregular distances along k (a CT series with a missing slice,
or with varying reconstruction spacing). Such a grid carries ``slice_positions_mm``: the
distance (mm) of every slice k from ``origin`` along ``direction[:, 2]``, first 0 and
strictly increasing. In-plane (i, j) geometry stays regular. ``spacing_ijk[2]`` is then
only the nominal (median) gap. ``index_to_lps``, ``lps_to_index``, ``slice_origins``,
``lattice_offset_kji`` and ``almost_equal`` use the exact positions (fractional k is
interpolated linearly between slices and extrapolated with the end gaps); a single
IJK->LPS matrix does not exist, so ``ijk_to_lps``, ``ijk_to_ras`` and ``apply_to_sitk``
raise :class:`GeometryError` (use :meth:`Grid.regular_cover` for a regular grid holding
every slice, when there is one). Regular grids have ``slice_positions_mm is None`` (a
position list that is regular within tolerance is normalised to None), so the regular
case is unchanged and costs nothing.
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


#: Largest regular cover (:meth:`Grid.regular_cover`): finer than 1/8 of the smallest gap,
#: or more than 8x the slices, and there is none.
MAX_COVER_SUBDIVISION = 8


def median_spacing(gaps: np.ndarray) -> float:
    """The median of slice gaps (mm), equal to ``float(np.median(gaps))``.

    ``np.median`` imports ``numpy.ma`` on first use (10-90 ms of every command's start-up,
    measured with ``python -X importtime``); sorting the few hundred gaps of a series is
    microseconds.

    Parameters
    ----------
    gaps : numpy.ndarray
        1-D array of distances between consecutive slice positions (mm), at least one.

    Returns
    -------
    float
        The middle value, or the mean of the two middle values for an even count.
    """
    ordered = np.sort(np.asarray(gaps, dtype=float).ravel())
    middle = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2.0)

@dataclass(frozen=True)
class Grid:
    """A 3D voxel grid in LPS, regular in-plane; along k regular, or with explicit slice positions.

    Parameters
    ----------
    shape_kji : (nk, nj, ni) number of voxels in array order.
    spacing_ijk : (si, sj, sk) voxel spacing in mm along i, j, k (index order); for an
        irregular grid ``sk`` is the nominal (median) gap only.
    origin : LPS position (mm) of the centre of voxel (0, 0, 0).
    direction : 3x3, columns are the LPS unit vectors of the i, j, k axes.
    slice_positions_mm : None for a regular grid, else nk distances (mm) of the slices
        from ``origin`` along ``direction[:, 2]``: first 0, strictly increasing.
    """

    shape_kji: tuple[int, int, int]
    spacing_ijk: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    slice_positions_mm: tuple[float, ...] | None = None

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
        object.__setattr__(self, "slice_positions_mm", _normalise_positions(self.slice_positions_mm, shape, spacing))
        object.__setattr__(self, "shape_kji", shape)
        object.__setattr__(self, "spacing_ijk", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_sitk(cls, image: "sitk.Image") -> "Grid":
        """Grid of a 3D SimpleITK image (SimpleITK uses LPS).

        Raises
        ------
        GeometryError
            ``image`` is not 3D.
        """
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
        """Grid from a 4x4 IJK->LPS matrix and a (nk, nj, ni) shape.

        Raises
        ------
        GeometryError
            ``matrix`` is not 4x4 or has a zero-length axis.
        """
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
    def is_regular(self) -> bool:
        """True when slices are equally spaced (``slice_positions_mm is None``)."""
        return self.slice_positions_mm is None

    def _require_regular(self, what: str) -> None:
        if self.slice_positions_mm is not None:
            raise GeometryError(
                f"{what} needs equally spaced slices, but this grid's slices are irregular "
                f"({self.describe()}); use Grid.regular_cover() or the slice positions"
            )

    @property
    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping homogeneous (i, j, k, 1) to LPS mm.

        Raises
        ------
        GeometryError
            The grid has irregular slice positions (no single matrix exists).
        """
        self._require_regular("an IJK->LPS matrix")
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
        """Map an (..., 3) array of (i, j, k) indices to LPS mm (irregular k: interpolated)."""
        ijk = np.asarray(ijk, dtype=float)
        if self.slice_positions_mm is None:
            return np.asarray(ijk @ (self.direction * np.asarray(self.spacing_ijk)).T + np.asarray(self.origin))
        scaled = np.array(ijk, dtype=float)  # copy
        scaled[..., 0] *= self.spacing_ijk[0]
        scaled[..., 1] *= self.spacing_ijk[1]
        scaled[..., 2] = _interp_extrap(ijk[..., 2], np.arange(self.shape_kji[0], dtype=float),
                                        np.asarray(self.slice_positions_mm))
        return np.asarray(scaled @ self.direction.T + np.asarray(self.origin))

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """Map an (..., 3) array of LPS mm to continuous (i, j, k) indices (irregular k:
        interpolated between slices)."""
        lps = np.asarray(lps, dtype=float) - np.asarray(self.origin)
        if self.slice_positions_mm is None:
            return np.asarray((lps @ self.direction) / np.asarray(self.spacing_ijk))
        along = lps @ self.direction
        along[..., 0] /= self.spacing_ijk[0]
        along[..., 1] /= self.spacing_ijk[1]
        along[..., 2] = _interp_extrap(along[..., 2], np.asarray(self.slice_positions_mm),
                                       np.arange(self.shape_kji[0], dtype=float))
        return np.asarray(along)

    def slice_positions(self) -> np.ndarray:
        """(nk,) distance (mm) of every slice from ``origin`` along the k axis (regular or not)."""
        if self.slice_positions_mm is not None:
            return np.asarray(self.slice_positions_mm, dtype=float)
        return np.arange(self.shape_kji[0], dtype=float) * self.spacing_ijk[2]

    def slice_origins(self) -> np.ndarray:
        """(nk, 3) LPS positions of voxel (i=0, j=0) of every slice k."""
        return np.asarray(self.origin) + np.outer(self.slice_positions(), self.direction[:, 2])

    def with_shape_and_origin(self, shape_kji: Sequence[int], origin: Sequence[float]) -> "Grid":
        """Same spacing and direction, new ``(nk, nj, ni)`` shape and LPS origin (mm).

        Raises
        ------
        GeometryError
            The grid is irregular (its slice positions do not carry over to a new extent).
        """
        self._require_regular("a new extent")
        return Grid(int3(shape_kji), self.spacing_ijk, float3(origin), self.direction)

    def regular_cover(self, tol: float = POSITION_TOLERANCE_MM * 10) -> "Grid | None":
        """The regular grid (same origin, in-plane geometry and direction) whose slices
        include every slice of this grid within ``tol`` mm, with the largest such spacing;
        None when there is none with a spacing of at least 1/``MAX_COVER_SUBDIVISION`` of the
        smallest gap. A regular grid is its own cover. For a series with a missing slice
        the cover is the series' own spacing with one more slice.
        """
        if self.slice_positions_mm is None:
            return self
        pos = np.asarray(self.slice_positions_mm)
        base = float(np.min(np.diff(pos)))
        for sub in range(1, MAX_COVER_SUBDIVISION + 1):
            step = base / sub
            m = np.round(pos / step)
            step = float(np.dot(pos, m) / np.dot(m, m))  # least-squares step for these indices
            if np.all(np.abs(pos - m * step) <= tol) and m[-1] + 1 <= MAX_COVER_SUBDIVISION * len(pos):
                return Grid((int(m[-1]) + 1,) + self.shape_kji[1:], self.spacing_ijk[:2] + (step,),
                            self.origin, self.direction)
        return None

    def apply_to_sitk(self, image: "sitk.Image") -> "sitk.Image":
        """Set spacing, origin and direction of ``image`` to this grid (in place).

        Raises
        ------
        GeometryError
            The grid has irregular slice positions.
        """
        self._require_regular("a SimpleITK image geometry")
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
        """Same shape, and spacing/origin/direction (and slice positions) equal within tolerances."""
        if self.slice_positions_mm is not None or other.slice_positions_mm is not None:
            return (
                self.shape_kji == other.shape_kji
                and np.allclose(self.spacing_ijk[:2], other.spacing_ijk[:2], atol=pos_tol)
                and np.allclose(self.origin, other.origin, atol=pos_tol)
                and self.same_orientation(other, dir_tol)
                and np.allclose(self.slice_positions(), other.slice_positions(), atol=pos_tol)
            )
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
        if self.slice_positions_mm is not None or other.slice_positions_mm is not None:
            return self._irregular_offset(other, pos_tol)
        if not np.allclose(self.spacing_ijk, other.spacing_ijk, atol=pos_tol):
            return None
        idx = self.lps_to_index(np.asarray(other.origin))
        rounded = np.round(idx)
        # compare in mm so the tolerance does not depend on spacing
        if np.any(np.abs(idx - rounded) * np.asarray(self.spacing_ijk) > pos_tol * 10):
            return None
        di, dj, dk = (int(v) for v in rounded)
        return (dk, dj, di)

    def _irregular_offset(self, other: "Grid", pos_tol: float) -> tuple[int, int, int] | None:
        """lattice_offset_kji when either grid has explicit slice positions: the in-plane
        offset must be integral and ``other``'s slices must be consecutive slices of ``self``."""
        if not np.allclose(self.spacing_ijk[:2], other.spacing_ijk[:2], atol=pos_tol):
            return None
        idx = self.lps_to_index(other.slice_origins())  # (nk_other, 3)
        rounded = np.round(idx)
        step = np.array([self.spacing_ijk[0], self.spacing_ijk[1], min(self.spacing_ijk[2], other.spacing_ijk[2])])
        if np.any(np.abs(idx - rounded) * step > pos_tol * 10):
            return None
        ks = rounded[:, 2].astype(np.int64)
        if np.any(np.diff(ks) != 1) or np.any(rounded[:, :2] != rounded[0, :2]):
            return None
        di, dj, dk = int(rounded[0, 0]), int(rounded[0, 1]), int(ks[0])
        return (dk, dj, di)

    def same_lattice(self, other: "Grid") -> bool:
        """True when both grids' voxel centres lie on one lattice (extents may differ)."""
        return self.lattice_offset_kji(other) is not None

    def describe(self) -> str:
        """One line: shape, spacing, origin (and the slice gaps of an irregular grid)."""
        text = (
            f"shape (k,j,i)={self.shape_kji}, spacing (i,j,k)={tuple(round(s, 6) for s in self.spacing_ijk)} mm, "
            f"origin LPS={tuple(round(o, 4) for o in self.origin)} mm"
        )
        if self.slice_positions_mm is not None:
            gaps = np.diff(self.slice_positions_mm)
            digest = hash(tuple(round(p, 4) for p in self.slice_positions_mm)) & 0xFFFFFFFF
            text += f", irregular slice gaps {gaps.min():.4g}..{gaps.max():.4g} mm (positions #{digest:08x})"
        return text

    def __eq__(self, other: object) -> bool:  # tolerance-aware
        return isinstance(other, Grid) and self.almost_equal(other)

    def __hash__(self) -> int:  # pragma: no cover - grids are not dict keys
        return hash(self.shape_kji)


def _normalise_positions(positions: "Iterable[float] | None", shape: tuple[int, int, int],
                         spacing: tuple[float, float, float]) -> tuple[float, ...] | None:
    """Validated slice positions, or None when absent or regular with ``spacing[2]``.

    Raises
    ------
    GeometryError
        Not one position per slice, not finite, not starting at 0, or not strictly
        increasing.
    """
    if positions is None:
        return None
    pos = np.asarray([float(v) for v in positions], dtype=float)
    if pos.ndim != 1 or len(pos) != shape[0]:
        raise GeometryError(f"slice_positions_mm must give one position per slice ({shape[0]}), got {len(pos)}")
    if not np.all(np.isfinite(pos)) or abs(pos[0]) > POSITION_TOLERANCE_MM:
        raise GeometryError("slice_positions_mm must be finite and start at 0 (the origin's slice)")
    if len(pos) > 1 and np.any(np.diff(pos) <= 0):
        raise GeometryError("slice_positions_mm must be strictly increasing")
    regular = np.arange(len(pos)) * spacing[2]
    if np.allclose(pos, regular, atol=POSITION_TOLERANCE_MM * 10, rtol=0):
        return None
    return tuple(float(v) for v in pos - pos[0])


def _interp_extrap(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``fp(x)`` through (xp, fp), extended linearly beyond both ends."""
    x = np.asarray(x, dtype=float)
    out = np.interp(x, xp, fp)
    if len(xp) > 1:
        lo, hi = x < xp[0], x > xp[-1]
        out = np.where(lo, fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]), out)
        out = np.where(hi, fp[-1] + (x - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]), out)
    return np.asarray(out)
