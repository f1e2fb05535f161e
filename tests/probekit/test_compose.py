"""join_pair: the one layout probes and the platform's `pairs` composition share."""
from PIL import Image

from probekit.compose import join_pair


def test_side_by_side_pads_around_and_between_and_centres_the_shorter_image():
    canvas, origins = join_pair(Image.new("RGB", (40, 30), "red"), Image.new("RGB", (20, 10), "blue"),
                                horizontal=True, padding=5, background=(0, 0, 0))
    assert canvas.size == (40 + 20 + 15, 30 + 10)
    assert origins == [(5, 5), (50, 15)]
    assert canvas.getpixel((50, 15)) == (0, 0, 255) and canvas.getpixel((50, 14)) == (0, 0, 0)


def test_stacked_puts_the_first_image_on_top():
    canvas, origins = join_pair(Image.new("RGB", (20, 10)), Image.new("RGB", (40, 30)), horizontal=False)
    assert canvas.size == (40, 40) and origins == [(10, 0), (0, 10)]
