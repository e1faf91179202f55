"""8-bit sRGB <-> DICOM ``RecommendedDisplayCIELabValue`` (0062,000D), and default colours.

DICOM stores a segment colour as three unsigned 16-bit integers (PS3.3 C.10.7.1.1):

* ``L*`` 0..100 scaled linearly to 0..65535,
* ``a*`` and ``b*`` -128..127 scaled linearly to 0..65535, i.e. ``(v + 128) * 65535 / 255``,

with CIELab relative to the D65 white point. Conversion goes sRGB (IEC 61966-2-1 transfer
curve) -> linear RGB -> CIE XYZ (sRGB primaries, D65) -> CIELab and back, rounding only at
the two ends (to uint16 and to 8-bit). Every 8-bit colour survives
``dicom_lab_to_rgb(rgb_to_dicom_lab(rgb)) == rgb`` (measured over all 256**3 colours;
see ``docs/metadata.md``).

Everything is vectorised: functions accept one triple or an ``(..., 3)`` array.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from AdaptiveBrushDicomLib.errors import UserError

__all__ = [
    "DEFAULT_PALETTE",
    "TYPE_COLORS",
    "default_color",
    "color_for_terminology",
    "dicom_lab_to_lab",
    "dicom_lab_to_rgb",
    "lab_to_dicom_lab",
    "lab_to_rgb",
    "parse_color",
    "rgb_to_dicom_lab",
    "rgb_to_lab",
]

# sRGB primaries with the D65 white point (IEC 61966-2-1), linear RGB -> XYZ (Y of white = 1).
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
#: D65 reference white (X, Y, Z) = the XYZ of linear RGB (1, 1, 1), so white maps to
#: L*=100, a*=b*=0 exactly.
D65_WHITE = _RGB_TO_XYZ.sum(axis=1)

_EPS = 216.0 / 24389.0  # (6/29)**3
_KAPPA = 24389.0 / 27.0  # (29/3)**3


def _as_triples(values: Any, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.shape[-1:] != (3,):
        raise UserError(f"{what} must be a triple (or an array of triples), got shape {a.shape}")
    return a


# ------------------------------------------------------------------ sRGB <-> CIELab
def rgb_to_lab(rgb: Any) -> np.ndarray:
    """8-bit sRGB (0..255, ``(..., 3)``) -> CIELab floats (L*, a*, b*), D65.

    Raises
    ------
    UserError
        When a component lies outside 0..255.
    """
    c = _as_triples(rgb, "RGB colour")
    if np.any(c < 0) or np.any(c > 255):
        raise UserError(f"RGB colour components must lie in 0..255, got {np.asarray(rgb).tolist()}")
    c = c / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T / D65_WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def lab_to_rgb(lab: Any) -> np.ndarray:
    """CIELab floats (D65) -> 8-bit sRGB as ``uint8`` ``(..., 3)`` (rounded, clipped to gamut)."""
    lab = _as_triples(lab, "CIELab colour")
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    f3 = f**3
    xyz = np.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA) * D65_WHITE
    lin = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, 1.0)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)
    return np.asarray(np.clip(np.rint(c * 255.0), 0, 255), dtype=np.uint8)


# ------------------------------------------------------- CIELab <-> DICOM uint16 triple
def lab_to_dicom_lab(lab: Any) -> np.ndarray:
    """CIELab floats -> DICOM uint16 triple(s) (L 0..100, a/b -128..127 -> 0..65535)."""
    lab = _as_triples(lab, "CIELab colour")
    L = np.clip(lab[..., 0], 0.0, 100.0) * 65535.0 / 100.0
    ab = (np.clip(lab[..., 1:], -128.0, 127.0) + 128.0) * 65535.0 / 255.0
    return np.asarray(np.rint(np.concatenate([L[..., None], ab], axis=-1)), dtype=np.uint16)


def dicom_lab_to_lab(value: Any) -> np.ndarray:
    """DICOM uint16 triple(s) -> CIELab floats.

    Raises
    ------
    UserError
        A value is outside 0..65535 or not a triple.
    """
    v = _as_triples(value, "RecommendedDisplayCIELabValue")
    if np.any(v < 0) or np.any(v > 65535):
        raise UserError(f"RecommendedDisplayCIELabValue must be three values in 0..65535, got {np.asarray(value).tolist()}")
    L = v[..., 0] * 100.0 / 65535.0
    ab = v[..., 1:] * 255.0 / 65535.0 - 128.0
    return np.concatenate([L[..., None], ab], axis=-1)


def rgb_to_dicom_lab(rgb: Any) -> Any:
    """8-bit sRGB -> DICOM ``RecommendedDisplayCIELabValue``.

    Parameters
    ----------
    rgb : (r, g, b) or array (..., 3)
        0..255.

    Returns
    -------
    tuple of 3 int for one colour, ``uint16`` array ``(..., 3)`` for an array.
    """
    out = lab_to_dicom_lab(rgb_to_lab(rgb))
    return tuple(int(v) for v in out) if out.ndim == 1 else out


def dicom_lab_to_rgb(value: Any) -> Any:
    """DICOM ``RecommendedDisplayCIELabValue`` -> 8-bit sRGB.

    Returns
    -------
    tuple of 3 int for one triple, ``uint8`` array ``(..., 3)`` for an array.
    """
    out = lab_to_rgb(dicom_lab_to_lab(value))
    return tuple(int(v) for v in out) if out.ndim == 1 else out


# --------------------------------------------------------------------- parsing input
def parse_color(text: str | Sequence[Any], where: str = "colour") -> tuple[int, int, int]:
    """Parse ``#rrggbb``, ``rrggbb``, ``r,g,b`` / ``r g b`` (0..255) or a 3-sequence.

    Raises
    ------
    UserError
        Naming ``where`` when the value is not a valid 8-bit colour.
    """
    if isinstance(text, str):
        s = text.strip()
        h = s[1:] if s.startswith("#") else s
        if len(h) == 6 and all(ch in "0123456789abcdefABCDEF" for ch in h) and (s.startswith("#") or not h.isdigit()):
            return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
        parts = [p for p in s.replace(",", " ").replace(";", " ").split() if p]
    else:
        parts = list(text)
    if len(parts) != 3:
        raise UserError(f"{where}: colour {text!r} is not '#rrggbb' or 'r,g,b'")
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise UserError(f"{where}: colour {text!r} is not '#rrggbb' or 'r,g,b'") from None
    if any(v != int(v) or v < 0 or v > 255 for v in values):
        raise UserError(f"{where}: colour {text!r} needs three integers in 0..255")
    return (int(values[0]), int(values[1]), int(values[2]))


# ------------------------------------------------------------------ default colours
#: Colours for segments that have none, by position (cycled): the colours of 16
#: common types of :data:`TYPE_COLORS` (Slicer General Anatomy list), ordered so that
#: neighbours differ. The first is Slicer's "Tissue" green.
DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (128, 174, 128),  # Tissue (green)
    (216, 101, 79),  # Artery (red)
    (0, 151, 206),  # Vein (blue)
    (241, 214, 145),  # Bone (sand)
    (157, 108, 162),  # Spleen (purple)
    (144, 238, 144),  # Mass (light green)
    (249, 180, 111),  # Pancreas (orange)
    (140, 224, 228),  # Edema (cyan)
    (177, 122, 101),  # Skin (brown)
    (244, 214, 49),  # Nerve (mustard)
    (200, 200, 235),  # Gray Matter (lavender)
    (139, 150, 98),  # Gallbladder (olive)
    (221, 130, 101),  # Liver (salmon)
    (182, 228, 255),  # Trachea (light blue)
    (192, 104, 88),  # Muscle (dark red)
    (216, 191, 216),  # Necrosis (thistle)
)

#: Colours of common segmented property types, keyed by (CodingSchemeDesignator,
#: CodeValue). Values are the ``recommendedDisplayRGBValue`` of these types in 3D Slicer's
#: "Segmentation category and type - 3D Slicer General Anatomy list" (read from dcmqi's
#: copy, doc/segContexts/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json,
#: dcmqi commit b6137d9), which is where Slicer takes a segment's colour from when a type
#: is chosen. pydicom and highdicom carry no colours. Only a small curated subset.
TYPE_COLORS: dict[tuple[str, str], tuple[int, int, int]] = {
    ("SCT", "85756007"): (128, 174, 128),  # Tissue
    ("SCT", "51114001"): (216, 101, 79),  # Artery
    ("SCT", "29092000"): (0, 151, 206),  # Vein
    ("SCT", "15825003"): (224, 97, 76),  # Aorta
    ("SCT", "272673000"): (241, 214, 145),  # Bone
    ("SCT", "71616004"): (192, 104, 88),  # Muscle
    ("SCT", "119410002"): (244, 214, 49),  # Nerve
    ("SCT", "39937001"): (177, 122, 101),  # Skin
    ("SCT", "12738006"): (250, 250, 225),  # Brain
    ("SCT", "389080008"): (250, 250, 210),  # White Matter
    ("SCT", "389081007"): (200, 200, 235),  # Gray Matter
    ("SCT", "280371009"): (85, 188, 255),  # Brain cerebrospinal fluid pathway
    ("SCT", "10200004"): (221, 130, 101),  # Liver
    ("SCT", "78961009"): (157, 108, 162),  # Spleen
    ("SCT", "15776009"): (249, 180, 111),  # Pancreas
    ("SCT", "28231008"): (139, 150, 98),  # Gallbladder
    ("SCT", "69695003"): (216, 132, 105),  # Stomach
    ("SCT", "32849002"): (211, 171, 143),  # Esophagus
    ("SCT", "80891009"): (206, 110, 84),  # Heart
    ("SCT", "44567001"): (182, 228, 255),  # Trachea
    ("SCT", "89837001"): (222, 154, 132),  # Bladder
    ("SCT", "41216001"): (230, 158, 140),  # Prostate
    ("SCT", "113197003"): (253, 232, 158),  # Rib
    ("SCT", "122494005"): (255, 255, 207),  # Cervical spine
    ("SCT", "122495006"): (226, 202, 134),  # Thoracic spine
    ("SCT", "122496007"): (212, 188, 102),  # Lumbar spine
    ("SCT", "4147007"): (144, 238, 144),  # Mass
    ("SCT", "367643001"): (205, 205, 100),  # Cyst
    ("SCT", "79654002"): (140, 224, 228),  # Edema
    ("SCT", "6574001"): (216, 191, 216),  # Necrosis
}


def default_color(index: int) -> tuple[int, int, int]:
    """Colour for the ``index``-th segment (0-based) that has none: :data:`DEFAULT_PALETTE` cycled."""
    return DEFAULT_PALETTE[int(index) % len(DEFAULT_PALETTE)]


def color_for_terminology(type_code: Any) -> tuple[int, int, int] | None:
    """Recommended colour of a segmented property type, or None if not in :data:`TYPE_COLORS`.

    Parameters
    ----------
    type_code : segment.Code, or anything with ``scheme`` and ``value`` (or
        ``scheme_designator`` and ``value``) attributes.
    """
    if type_code is None:
        return None
    scheme = getattr(type_code, "scheme", None) or getattr(type_code, "scheme_designator", None)
    return TYPE_COLORS.get((str(scheme), str(type_code.value)))
