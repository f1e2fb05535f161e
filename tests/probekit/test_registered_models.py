"""Organizers' ONNX models: the card, registration into PROBEKIT_MODELS_DIR, compressed variants of any model."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probekit.models import REGISTRY, UNKNOWN_VARIANT, get_model, list_models
from probekit.models._card import FIELD_MISSING, FIELD_MISTYPED, CardError, parse_card
from probekit.models._compress import NOTHING_TO_PRUNE, Variant, derive, prune_magnitude
from probekit.models.registered import register_model
from tests.onnx_models import TINY_CARD, U2NETP_CARD, card, tiny_conv, u2netp_bytes, vector_output, write
from tests.probekit.test_models import object_image, textured_patch_image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(folder))
    return folder


def register(tmp_path, name: str, data: bytes, card_json: dict) -> dict:
    return register_model(write(tmp_path / f"{name}.onnx", data), name=name,
                          card_path=write(tmp_path / f"{name}.json", card_json), builtins=REGISTRY)


def test_u2netp_registered_with_the_documented_card_crops_exactly_like_the_built_in(tmp_path, models_dir):
    register(tmp_path, "organizer-u2netp", u2netp_bytes(), U2NETP_CARD)
    images = [object_image(), textured_patch_image(), object_image(size=(300, 500), centre=(100, 380), radius=60)]
    for image in images:
        builtin = get_model("u2netp").analyze(image, keep_map=True)
        registered = get_model("organizer-u2netp").analyze(image, keep_map=True)
        assert registered.saliency.tobytes() == builtin.saliency.tobytes()
        assert (registered.salient_point, registered.crops) == (builtin.salient_point, builtin.crops)
        assert registered.top_points == builtin.top_points


def test_registration_stores_model_and_card_and_reports_name_version_sha256_variants(tmp_path, models_dir):
    report = register(tmp_path, "tiny", tiny_conv(), TINY_CARD)
    assert (models_dir / "tiny" / "model.onnx").read_bytes() == tiny_conv()
    assert json.loads((models_dir / "tiny" / "card.json").read_text()) == TINY_CARD
    assert report == {"name": "tiny", "version": get_model("tiny").version,
                      "sha256": "sha256:" + hashlib.sha256(tiny_conv()).hexdigest(),
                      "variants": ["tiny@int8", "tiny@fp16", "tiny@prune50", "tiny@prune90", "tiny@32px"]}
    rows = {row["name"]: row for row in list_models()}
    assert rows["tiny"]["description"] == TINY_CARD["summary"] and rows["tiny"]["variants"] == report["variants"]
    for variant in report["variants"]:
        assert get_model(variant).saliency(object_image()).shape == (320, 480)


@pytest.mark.parametrize("variant", ["int8", "fp16", "prune50"])
def test_a_registered_models_variants_run_with_their_own_version(tmp_path, models_dir, variant):
    register(tmp_path, "mine", u2netp_bytes(), U2NETP_CARD)
    model = get_model(f"mine@{variant}")
    result = model.analyze(object_image(), keep_map=True)
    assert result.model == f"mine@{variant}" and result.model_version == model.version
    assert model.version not in (get_model("mine").version, get_model(f"u2netp@{variant}").version)
    assert 0.0 <= float(result.saliency.min()) and float(result.saliency.max()) <= 1.0
    assert get_model(f"mine@{variant}").model_bytes()[1] == get_model(f"u2netp@{variant}").model_bytes()[1]


def test_int8_and_fp16_of_u2netp_still_find_the_one_object():
    for name in ("u2netp@int8", "u2netp@fp16"):
        x, y = get_model(name).analyze(object_image()).salient_point
        assert 270 <= x < 410 and 80 <= y < 220, (name, x, y)


def test_prune_records_the_achieved_sparsity_in_the_card(tmp_path, models_dir):
    register(tmp_path, "tiny", tiny_conv(), TINY_CARD)
    model = get_model("tiny@prune50")
    # 27 weights: round(13.5) = 14 smallest set to zero (no ties in normal draws)
    assert model.sparsity == pytest.approx(14 / 27)
    assert "achieved sparsity 51.85%" in model.card.smoothing
    assert get_model("u2netp@prune90").sparsity == pytest.approx(0.9, abs=0.001)
    assert "achieved sparsity 90.0" in get_model("u2netp@prune90").card.input_size


def test_pruning_zeroes_the_smallest_weights_globally():
    import onnx
    from onnx import numpy_helper

    pruned, sparsity = prune_magnitude(tiny_conv(), 30)
    before = numpy_helper.to_array(onnx.load_from_string(tiny_conv()).graph.initializer[0]).ravel()
    after = numpy_helper.to_array(onnx.load_from_string(pruned).graph.initializer[0]).ravel()
    smallest = np.argsort(np.abs(before))[:8]  # round(27 × 0.3) = 8
    assert set(np.flatnonzero(after == 0)) == set(smallest)
    assert np.array_equal(after[after != 0], before[after != 0])
    assert sparsity == pytest.approx(8 / 27)


def test_a_model_without_weights_cannot_be_pruned():
    with pytest.raises(ValueError, match=NOTHING_TO_PRUNE):
        prune_magnitude(vector_output(), 50)


@pytest.mark.parametrize(("name", "known"), [
    ("mine@160px", "int8, fp16, prune<NN> (10–95)"),
    ("mine@prune96", "int8, fp16, prune<NN> (10–95)"),
    ("mine@prune5", "int8, fp16, prune<NN> (10–95)"),
    ("tiny@8px", "int8, fp16, prune<NN> (10–95), <N>px (16–2048)"),
])
def test_variants_outside_the_grammar_are_refused_with_the_known_ones(tmp_path, models_dir, name, known):
    register(tmp_path, "mine", u2netp_bytes(), U2NETP_CARD)
    register(tmp_path, "tiny", tiny_conv(), TINY_CARD)
    base, _, variant = name.partition("@")
    with pytest.raises(ValueError) as error:
        get_model(name)
    assert str(error.value) == UNKNOWN_VARIANT.format(variant=variant, model=base, known=known)


_CHILD = """
import hashlib, sys
sys.path.insert(0, {root!r})
from tests.probekit.test_models import object_image
from probekit.models import get_model
for name in {names!r}:
    model = get_model(name)
    print(name, model.version, hashlib.sha256(model.analyze(object_image(), keep_map=True).saliency.tobytes()).hexdigest())
"""


def test_derived_models_are_bit_identical_across_processes_with_or_without_the_cache(tmp_path, models_dir):
    register(tmp_path, "tiny", tiny_conv(), TINY_CARD)
    names = ["tiny", "tiny@int8", "tiny@fp16", "tiny@prune50", "tiny@48px"]
    here = "".join(f"{n} {get_model(n).version} "
                   f"{hashlib.sha256(get_model(n).analyze(object_image(), keep_map=True).saliency.tobytes()).hexdigest()}\n"
                   for n in names)
    outputs = []
    for cache in ("fresh", "fresh", "fresh-2"):  # built, read back from the cache, built again elsewhere
        env = {**os.environ, "PROBEKIT_CACHE_DIR": str(tmp_path / cache), "PYTHONPATH": str(ROOT)}
        child = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT), names=names)], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=300, check=True)
        outputs.append(child.stdout)
    assert outputs == [here] * 3
    assert len(list((tmp_path / "fresh").glob("*.onnx"))) == 4


def test_a_corrupted_cache_entry_is_rebuilt_not_trusted(tmp_path, monkeypatch):
    from probekit.models import _compress

    monkeypatch.setenv("PROBEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_compress, "_memory", {})
    variant = Variant("prune50", "prune", 50)
    built, _ = derive(tiny_conv(seed=3), variant)
    [cached] = (tmp_path / "cache").glob("*.onnx")
    cached.write_bytes(b"garbage")
    monkeypatch.setattr(_compress, "_memory", {})
    assert derive(tiny_conv(seed=3), variant)[0] == built
    assert cached.read_bytes() == built


@pytest.mark.parametrize(("changes", "message"), [
    ({"input__mean": None}, FIELD_MISSING.format(field="input.mean")),
    ({"summary": None}, FIELD_MISSING.format(field="summary")),
    ({"output": None}, FIELD_MISSING.format(field="output")),
    ({"output__blur_sigma": None}, FIELD_MISSING.format(field="output.blur_sigma")),
    ({"input__mean": [0.5, 0.5]}, FIELD_MISTYPED.format(field="input.mean", expected="a list of 3 numbers",
                                                         value="[0.5, 0.5]")),
    ({"input__std": [0.2, 0, 0.2]}, FIELD_MISTYPED.format(field="input.std", expected="a list of 3 positive numbers",
                                                           value="[0.2, 0, 0.2]")),
    ({"input__resize": "nearest"}, FIELD_MISTYPED.format(field="input.resize", expected="one of lanczos, bilinear, "
                                                         "bicubic", value='"nearest"')),
    ({"input__scale": "min"}, FIELD_MISTYPED.format(field="input.scale", expected='a positive number or "max"',
                                                    value='"min"')),
    ({"input__size": [320]}, FIELD_MISTYPED.format(field="input.size", expected="[width, height] in pixels (8–4096)",
                                                   value="[320]")),
    ({"input__channels": "RGBA"}, FIELD_MISTYPED.format(field="input.channels", expected="one of RGB, BGR, L",
                                                        value='"RGBA"')),
    ({"output__normalize": "softmax"}, FIELD_MISTYPED.format(field="output.normalize",
                                                             expected="one of minmax, sigmoid, none",
                                                             value='"softmax"')),
    ({"output__index": -1}, FIELD_MISTYPED.format(field="output.index", expected="a whole number ≥ 0", value="-1")),
    ({"licence": 3}, FIELD_MISTYPED.format(field="licence", expected="a string", value="3")),
    ({"input__size": "dynamic"}, FIELD_MISSING.format(field="input.native")),
])
def test_a_card_missing_or_mistyping_a_field_names_the_field(changes, message):
    with pytest.raises(CardError) as error:
        parse_card(card(U2NETP_CARD, **changes))
    assert str(error.value) == message


def test_the_documented_card_is_accepted_as_written():
    parsed = parse_card(U2NETP_CARD)
    assert parsed.input.size == (320, 320) and parsed.input.scale == "max" and parsed.output.blur_sigma == 2.0
    assert parse_card(TINY_CARD).input.size is None and parse_card(TINY_CARD).input.native == (64, 64)
