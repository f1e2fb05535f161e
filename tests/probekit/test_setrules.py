"""Portable paths, look-alike names, image shape and plan size: refused at validation, by name."""
from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
from PIL import Image

from probekit import setrules
from probekit.imageset import ImageSetRejected, validate_image_set
from probekit.synthetic import contrast_composites, single_subjects


@pytest.fixture
def good_set(tmp_path):
    return contrast_composites(tmp_path / "set", n=4, size=48)


def _edit(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _move_image(root, index: int, new: str):
    """Item `index`'s image moved to `new` (created on this Linux file system as named)."""
    def change(manifest):
        old = manifest["items"][index]["image"]
        target = root / new
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root / old, target)
        manifest["items"][index]["image"] = new
    _edit(root, change)


@pytest.mark.parametrize("path, rule", [
    ("images/D:/x.png", "':'"),
    ("images/c:x.png", "':'"),
    ("images/a?b.png", "'?'"),
    ("images/CON.png", "reserved Windows device name 'CON'"),
    ("images/lpt1.png", "reserved Windows device name 'LPT1'"),
    ("images/nul/x.png", "reserved Windows device name 'NUL'"),
    ("images/dir./x.png", "ending in a dot or a space"),
    ("images/dir /x.png", "ending in a dot or a space"),
    ("images/" + ("日" * 80 + "/") * 3 + "x.png", "bytes long; at most 512"),
])
def test_unportable_image_paths_are_refused_naming_the_item(good_set, path, rule):
    _move_image(good_set, 1, path)
    with pytest.raises(ImageSetRejected, match="item 'c001'") as caught:
        validate_image_set(good_set)
    assert rule in str(caught.value)


@pytest.mark.parametrize("second", ["images/C000.PNG", "images/c000.png"])
def test_paths_equal_case_insensitively_are_one_file(good_set, second):
    def change(manifest):
        manifest["items"][0]["image"] = "images/c000.png"
        manifest["items"][1]["image"] = second
    shutil.move(good_set / json.loads((good_set / "manifest.json").read_text())["items"][1]["image"], good_set / second)
    shutil.move(good_set / json.loads((good_set / "manifest.json").read_text())["items"][0]["image"],
                good_set / "images/c000.png")
    _edit(good_set, change)
    with pytest.raises(ImageSetRejected, match="already listed by item 'c000'"):
        validate_image_set(good_set)


def test_paths_equal_after_nfc_are_one_file(good_set):
    nfc, nfd = unicodedata.normalize("NFC", "images/é.png"), unicodedata.normalize("NFD", "images/é.png")
    _move_image(good_set, 0, nfc)
    _move_image(good_set, 1, nfd)
    with pytest.raises(ImageSetRejected, match="differ only in case or Unicode normalisation"):
        validate_image_set(good_set)


@pytest.mark.parametrize("groups", [
    ["alice", "ａｌｉｃｅ"],  # fullwidth
    ["Alice", "alice"],
    [unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")],
    ["straße", "STRASSE"],
    ["paypal", "раураl"],  # Cyrillic р, а, у
    ["Apple", "Αpple"],  # Greek capital alpha
])
def test_look_alike_group_names_are_refused(good_set, groups):
    _edit(good_set, lambda m: m.update(groups=groups))
    with pytest.raises(ImageSetRejected, match="look alike"):
        validate_image_set(good_set)


def test_ids_differing_only_in_case_are_refused(good_set):
    def change(manifest):
        manifest["items"][1]["id"] = manifest["items"][0]["id"].upper()
    _edit(good_set, change)
    with pytest.raises(ImageSetRejected, match="ids must be unique, case aside"):
        validate_image_set(good_set)


@pytest.mark.parametrize("size, rule", [
    ((1, 8000), "aspect ratio over 12:1"),
    ((8193, 1000), "a side of 8,193 pixels"),
])
def test_strips_and_giant_sides_are_refused_before_decoding(good_set, size, rule):
    item = json.loads((good_set / "manifest.json").read_text())["items"][2]
    Image.new("RGB", size, (200, 10, 10)).save(good_set / item["image"])
    with pytest.raises(ImageSetRejected, match="item 'c002'") as caught:
        validate_image_set(good_set, decode=False)
    assert rule in str(caught.value)


def test_the_plan_is_counted_without_building_it(tmp_path):
    image_set = validate_image_set(single_subjects(tmp_path / "s", n=5, paired=True))
    # 5 pairs × 1 round × 4 layouts, plus the 10 items with a base observed as singles
    assert setrules.unit_count(image_set) == 5 * 4 + 10
    assert setrules.plan_error(image_set, models=3, cap=90) is None
    message = setrules.plan_error(image_set, models=4, cap=90)
    assert "120 model runs (30 composites × 4 models)" in message and "capped at 90" in message


def test_the_plan_bomb_of_the_battery_is_over_the_default_cap(tmp_path):
    """16 groups × 20 pairs_per_image: millions of composites planned from a few hundred images."""
    class Region:
        def __init__(self, group):
            self.group = group

    class Item:
        def __init__(self, group):
            self.regions, self.base = (Region(group),), None

    class Bomb:
        compose, pairs_per_image = "pairs", 20
        groups = [f"g{k}" for k in range(16)]
        items = [Item(f"g{k % 16}") for k in range(16 * 78)]

    assert setrules.unit_count(Bomb) == 120 * 78 * 20 * 4
    assert "capped at 200,000 model runs" in setrules.plan_error(Bomb, models=1)
