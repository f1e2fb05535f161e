"""The crop rule of Twitter's image-crop-analysis, for any size, point and ratio."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from probekit.crop import DEFAULT_RATIOS, INVALID_RATIO, INVALID_SIZE, crop_window, ratio_key, top_points


@st.composite
def image_point_ratio(draw):
    width = draw(st.integers(1, 5000))
    height = draw(st.integers(1, 5000))
    x = draw(st.integers(0, width - 1))
    y = draw(st.integers(0, height - 1))
    ratio = draw(st.one_of(st.sampled_from(DEFAULT_RATIOS),
                           st.floats(0.01, 100, allow_nan=False, allow_infinity=False)))
    return width, height, x, y, ratio


def _centred_unless_clamped(start: int, size: int, limit: int, centre: int) -> None:
    if 0 < start < limit - size:
        assert start == centre - size // 2
    elif start == 0:
        assert centre - size // 2 <= 0 or size == limit  # a full-size window has nowhere to slide
    else:
        assert start == limit - size and centre - size // 2 >= limit - size


@given(image_point_ratio())
def test_crop_window_lies_inside_the_image_and_contains_the_salient_point(case):
    width, height, x, y, ratio = case
    left, top, crop_w, crop_h = crop_window(width, height, x, y, ratio)
    assert 0 <= left and left + crop_w <= width
    assert 0 <= top and top + crop_h <= height
    assert crop_w >= 1 and crop_h >= 1
    assert left <= x < left + crop_w and top <= y < top + crop_h


@given(image_point_ratio())
def test_crop_window_keeps_one_full_side_and_fits_the_other_to_the_ratio(case):
    width, height, x, y, ratio = case
    left, top, crop_w, crop_h = crop_window(width, height, x, y, ratio)
    if ratio < height / width:
        assert (left, crop_w) == (0, width)
        assert crop_h == min(height, max(1, round(ratio * width)))
        _centred_unless_clamped(top, crop_h, height, y)
    else:
        assert (top, crop_h) == (0, height)
        assert crop_w == min(width, max(1, round(height / ratio)))
        _centred_unless_clamped(left, crop_w, width, x)


@pytest.mark.parametrize(("size", "point", "ratio", "window"), [
    ((1024, 768), (744, 295), 0.56, (0, 9, 1024, 573)),     # round(573.44) = 573, 295 - 286 = 9
    ((1024, 768), (744, 295), 1.0, (256, 0, 768, 768)),     # 744 - 384 = 360 overhangs: slides back to 256
    ((1024, 768), (744, 295), 2.0, (552, 0, 384, 768)),
    ((1024, 768), (10, 10), 1.14, (0, 0, 674, 768)),        # round(673.68) = 674, clamped at the left
    ((10, 5), (5, 2), 2.0, (4, 0, 2, 5)),                   # round(2.5) = 2: half to even
    ((5, 10), (2, 9), 0.5, (0, 8, 5, 2)),                   # round(2.5) = 2, 9 - 1 = 8 fits exactly
    ((100, 100), (50, 50), 1.0, (0, 0, 100, 100)),          # r == H/W keeps the full height
    ((1, 1), (0, 0), 0.56, (0, 0, 1, 1)),
])
def test_crop_window_matches_hand_computed_windows(size, point, ratio, window):
    assert crop_window(*size, *point, ratio) == window


@pytest.mark.parametrize(("ratio", "key"), [
    (1, "1.0"), (1.0, "1.0"), (0.56, "0.56"), (1.14, "1.14"), (2, "2.0"), ("0.5", "0.5"),
    (np.float64(0.56), "0.56"), (np.float32(0.5), "0.5"), (1e-05, "1e-05"),
])
def test_ratio_key_is_pythons_str_of_the_float(ratio, key):
    assert ratio_key(ratio) == key


@pytest.mark.parametrize("ratio", [0, -1.0, float("nan"), float("inf")])
def test_crop_window_rejects_a_ratio_that_is_not_a_positive_number(ratio):
    with pytest.raises(ValueError) as error:
        crop_window(100, 100, 50, 50, ratio)
    assert str(error.value) == INVALID_RATIO.format(ratio=ratio)


def test_crop_window_rejects_an_empty_image():
    with pytest.raises(ValueError) as error:
        crop_window(0, 10, 0, 0, 1.0)
    assert str(error.value) == INVALID_SIZE.format(width=0, height=10)


def test_top_points_are_best_first_and_never_inside_a_suppressed_square():
    saliency = np.zeros((100, 200), dtype=np.float32)
    saliency[20, 30], saliency[22, 33], saliency[80, 150], saliency[50, 100] = 1.0, 0.9, 0.7, 0.5
    points = top_points(saliency, k=3, radius=10)
    assert [(x, y) for x, y, _ in points] == [(30, 20), (150, 80), (100, 50)]
    assert [s for _, _, s in points] == [1.0, 0.7, 0.5]
