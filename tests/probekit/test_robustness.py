"""probekit.robustness: each change rewrites images and region boxes into a valid set."""
from PIL import Image

from probekit.imageset import validate_image_set
from probekit.robustness import CHANGES, transform_set, verdicts
from probekit.synthetic import contrast_composites


def test_every_change_writes_a_valid_set_with_its_boxes_moved(tmp_path):
    source = validate_image_set(contrast_composites(tmp_path / "set", n=4))
    first = source.items[0]
    with Image.open(source.root / first.image) as image:
        width, height = image.size
    (x, y, w, h) = first.regions[0].box
    expected = {"pad": (x + 13, y + 13, w, h), "mirror": (width - x - w, y, w, h), "jpeg": (x, y, w, h)}
    for change in CHANGES:
        changed = validate_image_set(transform_set(source.root, tmp_path / change, change))
        assert len(changed.items) == len(source.items)
        if change in expected:
            assert tuple(changed.items[0].regions[0].box) == expected[change]
    assert validate_image_set(tmp_path / "jpeg").items[0].image.endswith(".jpg")


def test_a_verdict_names_the_changes_that_broke_the_test():
    first = {"tests": [{"id": "t", "kind": "preference", "variant": None, "estimate": 0.7, "p_value": 0.001,
                        "p_holm": 0.001}]}
    held = {"tests": [{"id": "t", "kind": "preference", "estimate": 0.68, "p_value": 0.002}]}
    flipped = {"tests": [{"id": "t", "kind": "preference", "estimate": 0.4, "p_value": 0.01}]}
    out = verdicts(first, {"pad": held, "mirror": flipped, "jpeg": held, "scale": {"tests": []}})
    assert out["t"]["verdict"] == "fragile" and out["t"]["broken_by"] == ["mirror", "scale"]
    assert out["t"]["pad"] == {"estimate": 0.68, "p_value": 0.002, "same_direction": True}
    assert verdicts(first, {c: held for c in CHANGES})["t"] | {} == {**{c: {"estimate": 0.68, "p_value": 0.002,
                                                                           "same_direction": True} for c in CHANGES},
                                                                       "verdict": "robust", "broken_by": []}
