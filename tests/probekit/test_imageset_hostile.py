"""Hostile probe output on the trusted side: any tree or bytes end valid or in ImageSetRejected."""
from __future__ import annotations

import io
import json
import os
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from probekit import imageset
from probekit.imageset import ImageSetRejected, validate_image_set
from probekit.writer import ImageSetWriter
from sandbox.runner import _copy_out


def _small_set(root: Path, n: int = 2, *, fmt: str = "png", **image_kw) -> Path:
    with ImageSetWriter(root, groups=["a", "b"], title="t") as writer:
        for k in range(n):
            writer.add(Image.new("RGB", (32, 24), (40 * k, 90, 200)), id=f"i{k}",
                       regions=[("a" if k % 2 == 0 else "b", (0, 0, 8, 8))], format=fmt)
    return root


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _write(root: Path, manifest) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest))


def _rejected(root: Path, **kw) -> str:
    with pytest.raises(ImageSetRejected) as caught:
        validate_image_set(root, **kw)
    return str(caught.value)


def test_a_manifest_nested_200000_levels_deep_is_rejected_without_recursion(tmp_path):
    _small_set(tmp_path)
    (tmp_path / "manifest.json").write_text('{"schema": 1, "extra": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "manifest.json nests 200,001 levels deep; at most 16 are allowed" in _rejected(tmp_path)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    _small_set(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["hypothesis"] = '[[[[[[[[[[[[[[[[[[[[ "quoted" \\ {{{{{{{{{{{{{{{{{{{{{'
    _write(tmp_path, manifest)
    assert validate_image_set(tmp_path).hypothesis == manifest["hypothesis"]


def test_an_unterminated_string_of_escaped_quotes_is_rejected_without_quadratic_scanning(tmp_path):
    _small_set(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b'{"schema": 1, "title": "' + b'\\"' * 4_000_000)
    assert "manifest.json is not valid JSON (Unterminated string" in _rejected(tmp_path)


def test_two_items_listing_the_same_image_are_rejected_naming_both(tmp_path):
    _small_set(tmp_path)
    manifest = _manifest(tmp_path)
    manifest["items"][1]["image"] = "images/./" + manifest["items"][0]["image"].split("/")[-1]
    _write(tmp_path, manifest)
    assert ("item 'i1' (items[1]): image 'images/i0.png' is already listed by item 'i0'; "
            "each item needs its own image file") in _rejected(tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(title="x" * 301), "manifest 'title' has 301 characters; at most 300 are allowed"),
    (lambda m: m.update(hypothesis="x" * 2001), "manifest 'hypothesis' has 2,001 characters; at most 2,000"),
    (lambda m: m.update(attribute="x" * 101), "manifest 'attribute' has 101 characters; at most 100"),
    (lambda m: m.update(title="a\u202eb"), "manifest 'title' holds the control or invisible character U+202E"),
    (lambda m: m.update(title="nul\x00"), "manifest 'title' holds the control or invisible character U+0000"),
    (lambda m: m.update(attribute="lone \ud800"), "manifest 'attribute' holds the control or invisible character U+D800"),
    (lambda m: m.update(groups=[f"g{i}" for i in range(17)]), "lists 17 groups; at most 16 are allowed"),
    (lambda m: m.update(groups=["a", "b\u200b"]), "without '<', '>', '@', '#' or control characters"),
    (lambda m: m["items"][0].update(regions=[{"group": "a", "box": [0, 0, 1, 1]}] * 33),
     "item 'i0' (items[0]): 'regions' lists 33 regions; at most 32 are allowed"),
    (lambda m: m["items"][0].update(image="images/" + "é" * 128 + ".png"), "has a name longer than 255 bytes"),
    (lambda m: m["items"][0].update(image="images/a\nb.png"), "may not contain the control or invisible character U+000A"),
    (lambda m: m["items"][0].update(image="images/\ud800.png"), "U+D800"),
    (lambda m: m["items"][0].update(image="."), "must stay inside the image set"),
    (lambda m: m.update(schema=True), "manifest 'schema' must be 1, got True"),
    (lambda m: m.update(schema=1.0), "manifest 'schema' must be 1, got 1.0"),
    (lambda m: m.update(compose=["none"]), "manifest 'compose' must be one of none, pairs"),
    (lambda m: m.update(pairs_per_image=True), "'pairs_per_image' must be an integer from 1 to 20"),
    (lambda m: m.update(title=["t"]), "manifest 'title' must be a string"),
    (lambda m: m.update(groups="ab"), "manifest 'groups' must list two or more group names"),
    (lambda m: m.update(groups=["a", ["b"]]), "group name ['b'] must be"),
    (lambda m: m.update(items={"0": {}}), "manifest 'items' must be a non-empty list"),
    (lambda m: m["items"].__setitem__(0, "images/i0.png"), "each item must be an object"),
    (lambda m: m["items"][0].update(id=7), "'id' must be 1–128 letters"),
    (lambda m: m["items"][0].update(image=["images/i0.png"]), "'image' must be a non-empty relative path"),
    (lambda m: m["items"][0].update(base={"x": 1}), "'base' must be a short id"),
    (lambda m: m["items"][0].update(regions="a"), "'regions' must list at least one region"),
    (lambda m: m["items"][0]["regions"][0].update(group=["a"]), "group ['a'] is not one of"),
    (lambda m: m["items"][0]["regions"][0].update(box=[0, 0, 1.5, 1]), "'box' must be four integers"),
    (lambda m: m["items"][0]["regions"][0].update(box=[0, 0, True, 1]), "'box' must be four integers"),
    (lambda m: m["items"][0]["regions"][0].update(box=[0, 0, 10**400, 1]), "must have positive size and lie inside"),
])
def test_wrong_shapes_and_participant_text_over_the_caps_are_rejected_naming_the_field(tmp_path, change, message):
    _small_set(tmp_path)
    manifest = _manifest(tmp_path)
    change(manifest)
    _write(tmp_path, manifest)
    assert message in _rejected(tmp_path)


@pytest.mark.parametrize("raw, message", [
    (b'{"schema": 1, "n": ' + b"9" * 5000 + b"}", "manifest.json holds a value that cannot be read"),
    (b"[1, 2]", "manifest.json must hold a JSON object"),
    (b"\xff\xfe{}", "manifest.json is not UTF-8"),
    (b"", "manifest.json is not valid JSON"),
    (b'{"schema": 1, "title": "unterminated', "manifest.json is not valid JSON (Unterminated string"),
])
def test_manifest_bytes_that_are_not_a_manifest_are_rejected(tmp_path, raw, message):
    _small_set(tmp_path)
    (tmp_path / "manifest.json").write_bytes(raw)
    assert message in _rejected(tmp_path)


def test_an_oversized_manifest_is_rejected_before_it_is_read(tmp_path):
    _small_set(tmp_path)
    with open(tmp_path / "manifest.json", "r+b") as handle:
        handle.truncate(imageset.MAX_MANIFEST_BYTES + 1)
    assert "manifest.json is larger than 16 MiB" in _rejected(tmp_path)


def test_a_fifo_manifest_or_image_is_refused_without_waiting_for_a_writer(tmp_path):
    _small_set(tmp_path)
    (tmp_path / "images" / "i1.png").unlink()
    os.mkfifo(tmp_path / "images" / "i1.png")
    assert "is not a regular file (devices, fifos and directories are refused)" in _rejected(tmp_path)
    (tmp_path / "manifest.json").unlink()
    os.mkfifo(tmp_path / "manifest.json")
    assert "manifest.json must be a regular file" in _rejected(tmp_path)


def test_a_link_swapped_in_after_validation_is_not_copied_out(tmp_path):
    root = _small_set(tmp_path / "set")
    image_set = validate_image_set(root)
    (root / "images" / "i1.png").unlink()
    os.symlink("/etc/hostname", root / "images" / "i1.png")
    with pytest.raises(ImageSetRejected, match="'images/i1.png' cannot be opened as a plain file"):
        _copy_out(image_set, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out-")], "the staging copy is removed"


def test_copy_out_copies_an_image_listed_twice_once(tmp_path):
    root = _small_set(tmp_path / "set")
    image_set = validate_image_set(root)
    image_set.items.append(image_set.items[0])  # a set built by hand, not by validation
    _copy_out(image_set, root, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["i0.png", "i1.png"]


# -- decoding on the trusted side ------------------------------------------------------------------

def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every scan of a JPEG: its SOS segment and the entropy-coded data after it."""
    pos, found = 2, []
    while data[pos + 1] != 0xD9:
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if data[pos + 1] != 0xDA:
            pos += 2 + length
            continue
        end = pos + 2 + length
        while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
            end += 1
        found.append((pos, end))
        pos = end
    return found


def progressive_jpeg_with_repeated_scans(size: int, repeats: int) -> bytes:
    """A flat progressive JPEG whose small luminance refinement scan is repeated `repeats` times.

    Each copy is a dozen bytes but makes the decoder walk every block again: the attack that
    makes a kilobyte-sized file cost minutes of CPU.
    """
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (120, 130, 140)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    scans = _scans(data)
    start, end = scans[5]  # libjpeg's standard script: the luminance AC refinement scan
    eoi = scans[-1][1]
    return data[:eoi] + data[start:end] * repeats + data[eoi:]


def test_an_ordinary_progressive_jpeg_is_accepted(tmp_path):
    root = _small_set(tmp_path, fmt="jpg")
    Image.new("RGB", (32, 24), "white").save(root / "images" / "i0.jpg", "JPEG", progressive=True)
    assert len(_scans((root / "images" / "i0.jpg").read_bytes())) == 10
    assert len(validate_image_set(root).items) == 2


def test_a_jpeg_with_thousands_of_repeated_scans_is_rejected_before_decoding(tmp_path):
    root = _small_set(tmp_path, fmt="jpg")
    (root / "images" / "i1.jpg").write_bytes(progressive_jpeg_with_repeated_scans(256, 5_000))
    assert ("item 'i1' (items[1]): JPEG has more than 64 scans, at most 64 allowed"
            in _rejected(root, decode=False))


def test_opening_an_image_rechecks_the_scan_cap(tmp_path):
    root = _small_set(tmp_path, fmt="jpg")
    image_set = validate_image_set(root)
    (root / "images" / "i1.jpg").write_bytes(progressive_jpeg_with_repeated_scans(32, 100))
    with pytest.raises(ImageSetRejected, match="item 'i1': JPEG has more than 64 scans"):
        image_set.open_image(image_set.items[1])


def test_opening_an_image_that_cannot_be_decoded_is_rejected_naming_the_item(tmp_path):
    root = _small_set(tmp_path)
    path = root / "images" / "i1.png"
    path.write_bytes(path.read_bytes()[:-40])
    image_set = validate_image_set(root, decode=False)  # as the measurement reads a set
    with pytest.raises(ImageSetRejected, match=r"item 'i1': image 'images/i1.png' is not a readable PNG or JPEG"):
        image_set.open_image(image_set.items[1])


def test_a_set_whose_jpegs_all_use_many_scans_is_over_the_set_budget(tmp_path):
    root = _small_set(tmp_path, n=3, fmt="jpg")
    for k in range(3):  # 10 + 30 scans: each under the per-image cap, together over the mean
        data = progressive_jpeg_with_repeated_scans(32, 30)
        Image.open(io.BytesIO(data)).load()
        (root / "images" / f"i{k}.jpg").write_bytes(data)
    manifest = _manifest(root)
    for item in manifest["items"]:
        item["regions"][0]["box"] = [0, 0, 8, 8]
    _write(root, manifest)
    message = _rejected(root)
    assert "the set's JPEGs average 40.0 scans per pixel, at most 16 allowed (item 'i2' has 40 scans)" in message


def test_a_jpeg_flooded_with_marker_segments_is_rejected(tmp_path):
    root = _small_set(tmp_path, fmt="jpg")
    data = (root / "images" / "i0.jpg").read_bytes()
    (root / "images" / "i0.jpg").write_bytes(data[:2] + b"\xff\xe5\x00\x02" * 2000 + data[2:])
    assert "JPEG has more than 1,000 marker segments" in _rejected(root)


def test_a_png_flooded_with_empty_chunks_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setattr(imageset, "MAX_PNG_CHUNKS", 50)
    root = _small_set(tmp_path)
    data = (root / "images" / "i0.png").read_bytes()
    empty_chunk = b"\x00\x00\x00\x00prVt" + zlib.crc32(b"prVt").to_bytes(4, "big")  # an empty private chunk
    (root / "images" / "i0.png").write_bytes(data[:33] + empty_chunk * 60 + data[33:])
    assert "PNG has more than 50 chunks" in _rejected(root)


# -- property: whatever a probe leaves, the answer is a set or a rejection with a message ----------

NAMES = st.sampled_from(["images", "a.png", "b.jpg", "c.jpeg", "manifest.json", "x", "é.png", "a b.png", ".png"])
PATHS = st.lists(NAMES, min_size=1, max_size=3).map("/".join)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), "red").save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(progressive: bool) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), "blue").save(buffer, "JPEG", progressive=progressive)
    return buffer.getvalue()


IMAGE_BYTES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([_png(), _jpeg(False), _jpeg(True), progressive_jpeg_with_repeated_scans(16, 70)]),
    st.sampled_from([_png(), _jpeg(True)]).flatmap(
        lambda good: st.integers(0, len(good)).map(lambda cut: good[:cut])),  # truncated
)
ENTRY = st.one_of(
    st.tuples(st.just("file"), PATHS, IMAGE_BYTES),
    st.tuples(st.just("dir"), PATHS, st.none()),
    st.tuples(st.just("symlink"), PATHS, st.sampled_from(["/etc/hostname", "a.png", "../x", "images", "nowhere"])),
    st.tuples(st.just("fifo"), PATHS, st.none()),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
BOX = st.one_of(st.lists(st.integers(0, 12), min_size=4, max_size=4), st.lists(st.integers(-2, 20) | JSON, max_size=5))
REGION = st.fixed_dictionaries({"group": st.sampled_from(["a", "b", "a", "c", 1]), "box": BOX}) | JSON
IMAGE_PATH = st.one_of(st.sampled_from(["a.png", "b.jpg", "a.png", "b.jpg", "./a.png", "x", "a.png/x"]), PATHS, JSON)
ITEM = st.fixed_dictionaries(
    {"id": st.sampled_from(["i0", "i1", "i2", "i0", "bad id", 3]), "image": IMAGE_PATH,
     "regions": st.lists(REGION, min_size=1, max_size=3) | JSON},
    optional={"base": st.sampled_from(["b0", None, 7])},
)
def MOSTLY(good, *bad):  # noqa: N802 - reads as a strategy constant in the table below
    return st.sampled_from([good] * 6 + list(bad))



MANIFEST = st.fixed_dictionaries(
    {"schema": MOSTLY(1, 2, True, "1"), "groups": MOSTLY(["a", "b"], ["a"], "ab", ["a", 2]),
     "items": st.lists(ITEM, min_size=1, max_size=4) | JSON},
    optional={"compose": MOSTLY("none", "pairs", "x", None), "pairs_per_image": MOSTLY(1, 0, 2.5, None),
              "title": st.text(max_size=20) | JSON, "hypothesis": st.text(max_size=20)},
)
VALID_MANIFEST = {"schema": 1, "groups": ["a", "b"], "title": "t", "items": [
    {"id": "i0", "image": "a.png", "regions": [{"group": "a", "box": [0, 0, 4, 4]}]},
    {"id": "i1", "image": "b.jpg", "base": "b0", "regions": [{"group": "b", "box": [2, 2, 8, 8]}]},
]}


def _nodes(value, path=()):
    yield path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


@st.composite
def mutated_manifests(draw) -> dict:
    """The valid manifest with a few nodes replaced by arbitrary JSON or removed."""
    manifest = json.loads(json.dumps(VALID_MANIFEST))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        paths = [p for p in _nodes(manifest) if p]
        if not paths:
            break
        *parents, key = draw(st.sampled_from(paths))
        holder = manifest
        for step in parents:
            holder = holder[step]
        if draw(st.booleans()):
            holder[key] = draw(JSON | st.sampled_from(["a.png", "b.jpg", "x", "i0", "a", 0, 3, -1]))
        else:
            del holder[key]
    return manifest


MANIFEST_BYTES = st.one_of(
    mutated_manifests().map(lambda m: json.dumps(m).encode()),
    MANIFEST.map(lambda m: json.dumps(m, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    JSON.map(lambda m: json.dumps(m).encode()),
    st.binary(max_size=100),
    st.integers(1, 50).map(lambda n: b'{"schema":1,"x":' + b"[" * n + b"]" * n + b"}"),
)


def _build(root: Path, entries, manifest: bytes | None, with_images: bool) -> None:
    if manifest is not None:
        (root / "manifest.json").write_bytes(manifest)
    if with_images:
        (root / "a.png").write_bytes(_png())
        (root / "b.jpg").write_bytes(_jpeg(True))
    for kind, path, payload in entries:
        target = root / path
        if os.path.lexists(target):
            continue  # writing into a fifo made earlier would wait for a reader forever
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                target.write_bytes(payload)
            elif kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
            elif kind == "symlink":
                os.symlink(payload, target)
            else:
                os.mkfifo(target)
        except OSError:
            pass  # a clash in the generated tree: the probe could not have written it either


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, max_size=8), manifest=st.none() | MANIFEST_BYTES, with_images=st.booleans())
def test_any_tree_is_either_a_valid_set_or_rejected_with_a_message(entries, manifest, with_images):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "out"
        root.mkdir()
        _build(root, entries, manifest, with_images)
        try:
            image_set = validate_image_set(root, decode=True)
        except ImageSetRejected as exc:
            assert str(exc).strip()
            event(str(exc).split(": ")[-1][:40])
            return
        event("valid")
        copied = Path(scratch) / "stored"
        _copy_out(image_set, root, copied)
        again = validate_image_set(copied)
        assert [item.sha256 for item in again.items] == [item.sha256 for item in image_set.items]
        for item in again.items:
            assert again.open_image(item).mode == "RGB"


@settings(max_examples=150, deadline=None)
@given(manifest=mutated_manifests() | MANIFEST)
def test_any_manifest_over_real_images_is_valid_or_rejected(manifest):
    """The images exist and are readable, so the manifest's own shape is what is exercised."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "images").mkdir()
        for name in ("a.png", "x"):
            (root / name).write_bytes(_png())
        (root / "b.jpg").write_bytes(_jpeg(True))
        (root / "manifest.json").write_text(json.dumps(manifest))
        try:
            image_set = validate_image_set(root)
        except ImageSetRejected as exc:
            assert str(exc).strip()
            event(str(exc).split(": ")[-1][:40])
            return
        event("valid")
        assert image_set.items and all(item.regions for item in image_set.items)
