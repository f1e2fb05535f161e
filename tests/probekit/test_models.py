"""The target models: maps, determinism, where they look, weights integrity and the registry."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from probekit.crop import crop_window
from probekit.models import UNKNOWN_MODEL, UNKNOWN_VARIANT, get_model, list_models
from probekit.models.u2net import WEIGHTS_MD5, ModelWeightsError, U2Netp, load_weights, weights_path

ROOT = Path(__file__).resolve().parents[2]
ALL_MODELS = ["spectral-residual", "spectral-residual@32px", "fine-grained", "fine-grained@128px", "smartcrop",
              "smartcrop@128px", "u2netp", "u2netp@int8", "u2netp@160px", "u2netp@fp16", "u2netp@prune50"]
PATCH = (330, 60, 90, 90)  # x, y, w, h


def textured_patch_image(size=(480, 240), patch=PATCH) -> Image.Image:
    """A flat grey background with a saturated yellow-and-blue, finely textured square (high local contrast)."""
    image = Image.new("RGB", size, (96, 96, 96))
    x, y, w, h = patch
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 2, (h // 6 + 1, w // 6 + 1), dtype=np.uint8).repeat(6, 0).repeat(6, 1)[:h, :w]
    pixels = np.where(texture[..., None] == 1, [255, 230, 0], [20, 20, 160]).astype(np.uint8)
    image.paste(Image.fromarray(pixels), (x, y))
    return image


def object_image(size=(480, 320), centre=(340, 150), radius=70) -> Image.Image:
    """A face-like blob (filled disc with eyes and a mouth) on a plain background: one salient object."""
    image = Image.new("RGB", size, (70, 120, 160))
    draw = ImageDraw.Draw(image)
    cx, cy = centre
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(224, 172, 140))
    for dx in (-25, 25):
        draw.ellipse((cx + dx - 8, cy - 25, cx + dx + 8, cy - 9), fill=(30, 20, 20))
    draw.arc((cx - 30, cy, cx + 30, cy + 40), 20, 160, fill=(120, 30, 30), width=5)
    return image


def inside(point, box) -> bool:
    x, y, w, h = box
    return x <= point[0] < x + w and y <= point[1] < y + h


@pytest.mark.parametrize("name", ALL_MODELS)
def test_saliency_map_is_float32_in_unit_range_at_the_images_size(name):
    saliency = get_model(name).saliency(textured_patch_image())
    assert saliency.dtype == np.float32
    assert saliency.shape == (240, 480)
    assert float(saliency.min()) >= 0.0 and float(saliency.max()) <= 1.0
    assert float(saliency.max()) > 0.0


@pytest.mark.parametrize("name", ALL_MODELS)
def test_the_same_image_twice_gives_bit_identical_maps_and_crops(name):
    model = get_model(name)
    first = model.analyze(object_image(), keep_map=True)
    second = model.analyze(object_image(), keep_map=True)
    assert first.saliency.tobytes() == second.saliency.tobytes()
    assert first.to_json() == second.to_json()


@pytest.mark.parametrize("name", ["spectral-residual", "spectral-residual@32px", "fine-grained", "fine-grained@128px"])
def test_a_bright_textured_patch_on_a_flat_background_holds_the_salient_point(name):
    result = get_model(name).analyze(textured_patch_image())
    assert inside(result.salient_point, PATCH), result.salient_point


@pytest.mark.parametrize("name", ["u2netp", "u2netp@int8", "u2netp@160px"])
def test_u2netp_puts_the_salient_point_on_the_one_object_in_the_picture(name):
    result = get_model(name).analyze(object_image())
    assert inside(result.salient_point, (340 - 70, 150 - 70, 140, 140)), result.salient_point


@pytest.mark.parametrize("name", ["smartcrop", "smartcrop@128px"])
def test_smartcrop_square_window_keeps_the_detailed_saturated_patch(name):
    result = get_model(name).analyze(textured_patch_image())
    left, top, width, height = result.crops["1.0"]
    x, y, w, h = PATCH
    assert left <= x and x + w <= left + width, result.crops["1.0"]


@pytest.mark.parametrize("name", ["smartcrop", "smartcrop@128px"])
def test_smartcrop_salient_point_is_the_centre_of_its_square_window(name):
    model = get_model(name)
    image = textured_patch_image()
    square = model.analyze(image, ratios=[1.0]).crops["1.0"]
    result = model.analyze(image, ratios=[0.56, 2.0])
    assert "1.0" not in result.crops
    assert result.salient_point == (square[0] + square[2] // 2, square[1] + square[3] // 2)


@pytest.mark.parametrize("size", [(480, 240), (240, 480), (333, 333), (1024, 768), (17, 301)])
def test_smartcrop_windows_have_the_crop_rules_size_and_lie_inside_the_image(size):
    image = textured_patch_image(size=size, patch=(0, 0, min(size) // 2, min(size) // 2))
    result = get_model("smartcrop").analyze(image, ratios=[0.3, 0.56, 1.0, 1.14, 2.0, 5.0])
    for key, (left, top, width, height) in result.crops.items():
        assert (width, height) == crop_window(*size, 0, 0, float(key))[2:]
        assert 0 <= left and left + width <= size[0] and 0 <= top and top + height <= size[1]


def test_smartcrop_map_is_the_same_whether_asked_alone_or_through_analyze():
    model = get_model("smartcrop")
    image = object_image()
    assert model.saliency(image).tobytes() == model.analyze(image, keep_map=True).saliency.tobytes()


_CHILD = """
import hashlib, sys
sys.path.insert(0, {root!r})
from tests.probekit.test_models import object_image
from probekit.models import get_model
result = get_model({name!r}).analyze(object_image(), keep_map=True)
print(hashlib.sha256(result.saliency.tobytes()).hexdigest(), result.model_version)
"""


@pytest.mark.parametrize("name", ["u2netp", "u2netp@int8"])
def test_u2netp_map_and_version_are_bit_identical_in_separate_processes(name):
    model = get_model(name)
    here = (hashlib.sha256(model.analyze(object_image(), keep_map=True).saliency.tobytes()).hexdigest(),
            model.version)
    runs = []
    for _ in range(2):
        child = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), name=name)], cwd=ROOT,
                               capture_output=True, text=True, timeout=300, check=True)
        runs.append(tuple(child.stdout.split()))
    assert runs == [here, here]


def test_the_installed_weights_are_the_published_file():
    assert hashlib.md5(load_weights()).hexdigest() == WEIGHTS_MD5
    assert weights_path().name == "u2netp.onnx"


def test_an_altered_weights_file_is_rejected_with_how_to_reinstall(tmp_path):
    altered = tmp_path / "u2netp.onnx"
    shutil.copyfile(weights_path(), altered)
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    with pytest.raises(ModelWeightsError) as error:
        load_weights(altered)
    assert "altered" in str(error.value) and WEIGHTS_MD5 in str(error.value)
    assert "pip install ./probekit" in str(error.value)
    with pytest.raises(ModelWeightsError):
        U2Netp(weights=altered)


def test_a_truncated_or_missing_weights_file_is_rejected(tmp_path):
    truncated = tmp_path / "u2netp.onnx"
    truncated.write_bytes(weights_path().read_bytes()[:1000])
    with pytest.raises(ModelWeightsError, match="1000 bytes"):
        load_weights(truncated)
    with pytest.raises(ModelWeightsError, match="not found"):
        load_weights(tmp_path / "absent.onnx")


def test_every_variant_has_its_own_version():
    versions = {name: get_model(name).version for name in ALL_MODELS}
    assert len(set(versions.values())) == len(ALL_MODELS), versions


@pytest.mark.parametrize(("name", "message"), [
    ("resnet", UNKNOWN_MODEL.format(name="resnet", known="u2netp, spectral-residual, fine-grained, smartcrop")),
    ("u2netp@int4", UNKNOWN_VARIANT.format(variant="int4", model="u2netp",
                                          known="int8, fp16, prune<NN> (10–95), <N>px (16–2048)")),
    ("smartcrop@12px", UNKNOWN_VARIANT.format(variant="12px", model="smartcrop", known="<N>px with 16 ≤ N ≤ 2048")),
    ("fine-grained@int8", UNKNOWN_VARIANT.format(variant="int8", model="fine-grained", known="<N>px (16–2048)")),
])
def test_unknown_models_and_variants_are_refused_with_the_known_names(name, message):
    with pytest.raises(ValueError) as error:
        get_model(name)
    assert str(error.value) == message


def test_every_registered_model_is_listed_available_with_its_card():
    rows = {row["name"]: row for row in list_models()}
    assert set(rows) == {"u2netp", "spectral-residual", "fine-grained", "smartcrop"}
    for name, row in rows.items():
        assert row["version"] != "unavailable" and len(row["version"]) == 16
        assert row["description"] == get_model(name).card.summary
        for variant in row["variants"]:
            assert get_model(variant).name == variant


@pytest.mark.skipif(not (ROOT / "probekit" / "__main__.py").exists(), reason="the CLI is not written yet")
def test_models_command_prints_the_registry_as_json():
    out = subprocess.run([sys.executable, "-m", "probekit", "models", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = json.loads(out.stdout)
    assert [set(row) for row in rows] == [{"name", "version", "description", "variants"}] * 4
    assert rows == json.loads(json.dumps(list_models()))


def test_platform_venv_runs_probekit_from_any_folder(tmp_path):
    """`make venv` installs probekit (editable) in the platform's venv: no checkout on the path needed."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run([sys.executable, "-m", "probekit", "models", "--json"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert {row["name"] for row in json.loads(out.stdout)} >= {"u2netp", "spectral-residual"}
    script = Path(sys.executable).parent / "probekit"
    assert script.exists(), "the venv has no `probekit` script"
    out = subprocess.run([str(script), "models", "--json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0 and json.loads(out.stdout), out.stderr
