"""Validation of emitted image sets on the trusted side."""
from __future__ import annotations

import json
import os
import struct
import zlib

import pytest
from PIL import Image

from probekit.imageset import ImageSetRejected, validate_image_set
from probekit.synthetic import contrast_composites


@pytest.fixture
def good_set(tmp_path):
    return contrast_composites(tmp_path / "set", n=4, size=48)


def _manifest(root):
    return json.loads((root / "manifest.json").read_text())


def _write_manifest(root, manifest):
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_a_set_written_by_the_writer_is_valid(good_set):
    image_set = validate_image_set(good_set)
    assert image_set.groups == ["high", "low"]
    assert [item.id for item in image_set.items] == ["c000", "c001", "c002", "c003"]
    assert image_set.manifest_sha256.startswith("sha256:") and image_set.items[0].sha256.startswith("sha256:")


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("items"), "manifest 'items' must be a non-empty list"),
    (lambda m: m.update(schema=2), "manifest 'schema' must be 1"),
    (lambda m: m.update(groups=["only"]), "manifest 'groups' must list two or more group names"),
    (lambda m: m.update(compose="triples"), "manifest 'compose' must be one of none, pairs"),
    (lambda m: m["items"][1].update(id="c000"), "item 'c000' (items[1]): the id is used by an earlier item"),
    (lambda m: m["items"][0].update(image="../outside.png"), "must stay inside the image set"),
    (lambda m: m["items"][0].update(image="/etc/passwd"), "must stay inside the image set"),
    (lambda m: m["items"][0].update(image="images/missing.png"), "does not exist"),
    (lambda m: m["items"][0]["regions"][0].update(group="other"), "is not one of the manifest's groups"),
    (lambda m: m["items"][0]["regions"][0].update(box=[0, 0, 10_000, 10]), "must have positive size and lie inside"),
    (lambda m: m["items"][0]["regions"][0].update(box=[0, 0, "w", 10]), "'box' must be four integers"),
])
def test_a_broken_manifest_is_rejected_naming_the_rule(good_set, change, message):
    manifest = _manifest(good_set)
    change(manifest)
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_image_set(good_set)


def test_a_missing_manifest_is_rejected(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ImageSetRejected, match="manifest.json is missing"):
        validate_image_set(tmp_path)


def test_a_manifest_that_is_not_json_is_rejected(good_set):
    (good_set / "manifest.json").write_text("{not json")
    with pytest.raises(ImageSetRejected, match="manifest.json is not valid JSON"):
        validate_image_set(good_set)


def test_a_symlinked_image_is_rejected(good_set):
    target = good_set / "images" / "c000.png"
    target.unlink()
    os.symlink("/etc/hostname", target)
    with pytest.raises(ImageSetRejected, match=r"item 'c000' \(items\[0\]\): .*symbolic link"):
        validate_image_set(good_set)


def test_a_symlinked_directory_is_rejected(good_set, tmp_path):
    (good_set / "images").rename(tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", good_set / "images")
    with pytest.raises(ImageSetRejected, match="symbolic link"):
        validate_image_set(good_set)


def test_a_hard_link_is_rejected(good_set):
    os.link(good_set / "images" / "c001.png", good_set / "images" / "extra.png")
    with pytest.raises(ImageSetRejected, match="hard link"):
        validate_image_set(good_set)


def test_a_jpeg_named_png_is_rejected(good_set):
    Image.new("RGB", (200, 96)).save(good_set / "images" / "c000.png", format="JPEG")
    with pytest.raises(ImageSetRejected, match="is JPEG by content but named .png"):
        validate_image_set(good_set)


def test_a_text_file_named_png_is_rejected(good_set):
    (good_set / "images" / "c000.png").write_text("hello")
    with pytest.raises(ImageSetRejected, match="is not a readable PNG or JPEG"):
        validate_image_set(good_set)


def test_a_truncated_png_is_rejected(good_set):
    path = good_set / "images" / "c000.png"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ImageSetRejected, match="is not a readable PNG or JPEG"):
        validate_image_set(good_set)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: the classic decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_rejected_before_decoding(good_set):
    (good_set / "images" / "c000.png").write_bytes(_png_header_only(60_000, 60_000))
    with pytest.raises(ImageSetRejected, match="decompression bomb|the limit is"):
        validate_image_set(good_set)


def test_an_image_over_the_pixel_cap_is_rejected(good_set):
    with pytest.raises(ImageSetRejected, match=r"the limit is 1,000 per image"):
        validate_image_set(good_set, max_pixels=1_000)


def test_too_many_images_are_rejected(good_set):
    with pytest.raises(ImageSetRejected, match="the set lists 4 images; the limit is 3"):
        validate_image_set(good_set, max_images=3)


def test_too_many_bytes_are_rejected(good_set):
    with pytest.raises(ImageSetRejected, match="the images total more than 0 MiB"):
        validate_image_set(good_set, max_total_bytes=100)


def test_exif_orientation_is_applied_to_the_size(tmp_path):
    from probekit.writer import ImageSetWriter

    with ImageSetWriter(tmp_path, groups=["a", "b"]) as writer:
        writer.add(Image.new("RGB", (40, 20)), id="x", regions=[("a", (0, 0, 10, 10))])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated a quarter: 40×20 stored, 20×40 shown
    Image.new("RGB", (40, 20)).save(tmp_path / "images" / "x.png", exif=exif)
    item = validate_image_set(tmp_path).items[0]
    assert (item.width, item.height) == (20, 40)


def test_files_not_in_the_manifest_are_ignored(good_set):
    (good_set / "images" / "notes.txt").write_text("ignored")
    assert len(validate_image_set(good_set).items) == 4


@pytest.mark.parametrize("primary, problem", [
    ("preference:low>high", "tests name the groups in the manifest's order: \"preference:high>low\""),
    ("paired:high>low@1.0", "no 'base' tuple holds both groups"),
    ("position:high>low", "'position' is the slot test of platform-built pairs"),
    ("group_rate:high>low", "paired and group_rate tests end in '@<ratio>'"),
    ("preference:high>other", "both groups must be among the manifest's groups"),
    ("preference:high>low#u2netp@int8", "a primary names a base-model test"),
])
def test_a_primary_the_set_cannot_produce_is_refused_naming_it(good_set, primary, problem):
    manifest = _manifest(good_set)
    manifest["primary"] = primary
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected) as refused:
        validate_image_set(good_set)
    assert f"manifest 'primary' '{primary}' names a test this set cannot produce" in str(refused.value)
    assert problem in str(refused.value)


def test_a_primary_set_by_the_writer_is_kept(tmp_path):
    from probekit.writer import ImageSetWriter

    with ImageSetWriter(tmp_path / "set", groups=["a", "b"], primary="group_rate:a>b@1.0") as writer:
        writer.add(Image.new("RGB", (40, 20)), id="i0", regions=[("a", (0, 0, 20, 20)), ("b", (20, 0, 20, 20))])
    assert validate_image_set(tmp_path / "set").primary == "group_rate:a>b@1.0"
    with pytest.raises(ValueError, match="must be a test id"):
        writer.preregister("preference:a>c")


def test_every_independent_problem_is_reported_at_once(good_set):
    """Four problems, four lines: a participant fixes them in one round, not one per submission."""
    manifest = _manifest(good_set)
    manifest.update(compose="triples", pairs_per_image=99, title="bad\u202etitle")
    manifest["items"][2]["regions"][0].update(box=[0, 0, 10_000, 10])
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected) as error:
        validate_image_set(good_set)
    message = str(error.value)
    assert message.startswith("the image set has 4 problems:\n1. ")
    for rule in ("manifest 'compose' must be one of", "manifest 'pairs_per_image' must be an integer",
                 "manifest 'title' holds the control or invisible character U+202E",
                 "item 'c002' (items[2]), regions[0]: box [0, 0, 10000, 10] must have positive size"):
        assert rule in message, rule


def test_broken_groups_are_one_problem_not_one_per_region(good_set):
    manifest = _manifest(good_set)
    manifest.update(groups=["only"])
    manifest["items"][1].update(id="c000")
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected) as error:
        validate_image_set(good_set)
    assert str(error.value).splitlines()[1:] == [
        "1. manifest 'groups' must list two or more group names",
        "2. item 'c000' (items[1]): the id is used by an earlier item; ids must be unique, case aside"]


def test_the_list_is_capped_and_a_check_that_cannot_go_on_stops_it(good_set, monkeypatch):
    from probekit import setproblems

    monkeypatch.setattr(setproblems, "MAX_PROBLEMS", 3)
    manifest = _manifest(good_set)
    for item in manifest["items"]:
        item["regions"][0].update(box=[0, 0, "w", 10])
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected) as error:
        validate_image_set(good_set)
    assert str(error.value).startswith("the image set has at least 3 problems (the check stopped there):")
    assert len(str(error.value).splitlines()) == 4
    # Past the set's byte cap nothing more is read: what was found before is reported with it.
    manifest = _manifest(good_set)
    manifest.update(compose="triples")
    _write_manifest(good_set, manifest)
    with pytest.raises(ImageSetRejected) as error:
        validate_image_set(good_set, max_total_bytes=1)
    assert str(error.value).splitlines() == [
        "the image set has 2 problems (the check stopped at the last one):",
        "1. manifest 'compose' must be one of none, pairs, got 'triples'",
        "2. item 'c000' (items[0]): the images total more than 0 MiB"]


def test_probekit_check_lists_every_problem_of_a_set_and_passes_a_sound_one(good_set, capsys):
    from probekit.__main__ import main

    assert main(["check", str(good_set)]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 4
    manifest = _manifest(good_set)
    manifest.update(compose="triples", pairs_per_image=0)
    manifest["items"][1].update(id="c000")
    _write_manifest(good_set, manifest)
    assert main(["check", str(good_set)]) == 1
    err = capsys.readouterr().err
    assert "the image set has 3 problems" in err and "compose" in err and "pairs_per_image" in err and "c000" in err
