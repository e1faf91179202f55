"""8-bit sRGB <-> DICOM RecommendedDisplayCIELabValue."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from AdaptiveBrushDicomLib.core.colors import (
    DEFAULT_PALETTE,
    TYPE_COLORS,
    color_for_terminology,
    default_color,
    dicom_lab_to_lab,
    dicom_lab_to_rgb,
    parse_color,
    rgb_to_dicom_lab,
    rgb_to_lab,
)
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.core.segment import Code


def test_white_black_and_grey_axis():
    # D65 white is L*=100, a*=b*=0 -> (65535, 32896, 32896); 32896 = round(128 * 65535 / 255)
    assert rgb_to_dicom_lab((255, 255, 255)) == (65535, 32896, 32896)
    assert rgb_to_dicom_lab((0, 0, 0)) == (0, 32896, 32896)
    grey = rgb_to_dicom_lab(np.array([[v, v, v] for v in range(256)]))
    assert np.all(grey[:, 1:] == 32896)  # neutral greys have a* = b* = 0
    assert np.all(np.diff(grey[:, 0].astype(int)) > 0)


def test_all_cube_corners_round_trip():
    corners = np.array(list(itertools.product((0, 255), repeat=3)))
    lab = rgb_to_dicom_lab(corners)
    assert lab.dtype == np.uint16 and lab.shape == (8, 3)
    assert np.array_equal(dicom_lab_to_rgb(lab), corners)


def test_dense_sample_round_trips_exactly():
    """Every 5th value per channel (52**3 = 140,608 colours), plus 254/255 edges."""
    v = np.unique(np.r_[np.arange(0, 256, 5), 254, 255])
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(-1, 3)
    back = dicom_lab_to_rgb(rgb_to_dicom_lab(rgb))
    assert np.array_equal(back, rgb), f"{int(np.any(back != rgb, axis=1).sum())} colours changed"


def test_known_values_against_dicom_examples():
    # dcmqi prints this triple as its default colour when a segment has none; it is
    # Slicer's "Tissue" green (128, 174, 128)
    assert dicom_lab_to_rgb((43803, 26565, 37722)) == (128, 174, 128)
    # dcmqi's triple came from another conversion; ours differs by at most a few units
    assert np.abs(np.subtract(rgb_to_dicom_lab((128, 174, 128)), (43803, 26565, 37722))).max() <= 3
    lab = rgb_to_lab((255, 0, 0))
    assert lab[0] == pytest.approx(53.24, abs=0.01)
    assert lab[1] == pytest.approx(80.09, abs=0.01)
    assert lab[2] == pytest.approx(67.20, abs=0.01)
    assert np.allclose(dicom_lab_to_lab((65535, 0, 65535)), (100.0, -128.0, 127.0))


def test_bad_values_are_user_errors():
    with pytest.raises(UserError, match="0..255"):
        rgb_to_dicom_lab((256, 0, 0))
    with pytest.raises(UserError, match="triple"):
        rgb_to_dicom_lab((1, 2))
    with pytest.raises(UserError, match="0..65535"):
        dicom_lab_to_rgb((70000, 0, 0))


@pytest.mark.parametrize(
    "text, rgb",
    [("#dd8265", (221, 130, 101)), ("DD8265", (221, 130, 101)), ("221,130,101", (221, 130, 101)),
     (" 221 130 101 ", (221, 130, 101)), ([0, 0, 255], (0, 0, 255))],
)
def test_parse_color(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["#12345", "1,2", "1,2,300", "red", "1.5,2,3"])
def test_parse_color_errors(text):
    with pytest.raises(UserError, match="row 7"):
        parse_color(text, "row 7")


def test_default_palette_and_type_colors():
    assert default_color(0) == (128, 174, 128)
    assert default_color(len(DEFAULT_PALETTE)) == default_color(0)
    assert len(set(DEFAULT_PALETTE)) == len(DEFAULT_PALETTE)
    assert set(DEFAULT_PALETTE) <= set(TYPE_COLORS.values())
    # dcmqi's example metadata uses these Slicer General Anatomy colours
    assert color_for_terminology(Code("10200004", "SCT", "Liver")) == (221, 130, 101)
    assert color_for_terminology(Code("122495006", "SCT", "Thoracic spine")) == (226, 202, 134)
    assert color_for_terminology(Code("1", "99X", "unknown")) is None
    for rgb in TYPE_COLORS.values():
        assert dicom_lab_to_rgb(rgb_to_dicom_lab(rgb)) == rgb
