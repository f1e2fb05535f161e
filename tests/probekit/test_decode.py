"""One decoding: the pixels a model measures are the ones a browser shows, or the image is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from probekit.imageset import ImageSetRejected, validate_image_set
from probekit.synthetic import contrast_composites


@pytest.fixture
def good_set(tmp_path):
    return contrast_composites(tmp_path / "set", n=4, size=48)


def _replace(root, index: int, save) -> str:
    item = json.loads((root / "manifest.json").read_text())["items"][index]
    size = Image.open(root / item["image"]).size
    save(root / item["image"], size)
    return item["id"]


def _opened(root, item_id):
    image_set = validate_image_set(root)
    return np.asarray(image_set.open_image(next(i for i in image_set.items if i.id == item_id)))


def test_colour_hidden_under_transparency_is_composited_on_white(good_set):
    def save(path, size):
        pixels = np.zeros((size[1], size[0], 4), np.uint8)
        pixels[..., 0] = 255  # pure red, fully transparent: a browser shows white
        Image.fromarray(pixels, "RGBA").save(path)
    item = _replace(good_set, 1, save)
    assert (_opened(good_set, item) == 255).all()


def test_sixteen_bit_grey_is_scaled_not_clipped(good_set):
    def save(path, size):
        Image.fromarray(np.full((size[1], size[0]), 32768, np.uint16)).save(path)
    item = _replace(good_set, 1, save)
    assert abs(int(_opened(good_set, item).mean()) - 128) <= 1


def test_an_animated_png_is_refused_by_name(good_set):
    def save(path, size):
        frames = [Image.new("RGB", size, (0, 0, 0)), Image.new("RGB", size, (255, 255, 255))]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    _replace(good_set, 2, save)
    with pytest.raises(ImageSetRejected, match="item 'c002'.*animated PNG"):
        validate_image_set(good_set)


@pytest.mark.parametrize("gamma, refused", [(1.0, True), (0.25, True), (0.45455, False)])
def test_a_gamma_browsers_disagree_on_is_refused(good_set, gamma, refused):
    def save(path, size):
        info = PngImagePlugin.PngInfo()
        info.add(b"gAMA", int(round(gamma * 100000)).to_bytes(4, "big"))
        Image.new("RGB", size, (90, 90, 90)).save(path, pnginfo=info)
    _replace(good_set, 0, save)
    if refused:
        with pytest.raises(ImageSetRejected, match="item 'c000'.*declares gamma"):
            validate_image_set(good_set)
    else:
        validate_image_set(good_set)


def test_an_srgb_profile_keeps_the_pixels_and_a_broken_one_is_refused(good_set):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

    def with_profile(profile):
        def save(path, size):
            Image.new("RGB", size, (200, 100, 50)).save(path, icc_profile=profile)
        return save
    item = _replace(good_set, 3, with_profile(srgb))
    assert np.abs(_opened(good_set, item).astype(int) - [200, 100, 50]).max() <= 2
    _replace(good_set, 3, with_profile(b"not a profile at all" * 8))
    with pytest.raises(ImageSetRejected, match="item 'c003'.*colour profile that cannot be read"):
        validate_image_set(good_set)
