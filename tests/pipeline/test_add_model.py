"""`manage.py add_model`: an organizer's ONNX model is checked, registered frozen, and then measured like a built-in."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from grading.models import RegisteredModel
from probekit.models import registered
from probekit.models.registered import (
    BAD_NAME,
    FROZEN,
    NO_SUCH_OUTPUT,
    NON_DETERMINISTIC,
    STOPPED,
    TAKEN_BY_BUILTIN,
    TOO_LARGE,
    TOO_SLOW,
    WRONG_CHANNELS,
    WRONG_RANK,
    WRONG_SIZE,
)
from probekit.synthetic import contrast_composites
from tests.factories import ROOT
from tests.onnx_models import (
    TINY_CARD,
    U2NETP_CARD,
    card,
    looping,
    nan_on_white,
    random_output,
    rank2_input,
    tiny_conv,
    u2netp_bytes,
    vector_output,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(folder))
    return folder


def add_model(tmp_path, data, card_json, name="organizer-model", capsys=None):
    model = write(tmp_path / "model.onnx", data) if data is not None else tmp_path / "absent.onnx"
    card_path = write(tmp_path / "card.json", card_json) if card_json is not None else tmp_path / "absent.json"
    call_command("add_model", str(model), "--name", name, "--card", str(card_path), "--json")
    return json.loads(capsys.readouterr().out) if capsys else None


def registered_names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_registering_prints_name_version_sha256_and_variants(tmp_path, models_dir, capsys):
    report = add_model(tmp_path, u2netp_bytes(), U2NETP_CARD, capsys=capsys)
    assert set(report) == {"name", "version", "sha256", "variants"}
    assert report["name"] == "organizer-model" and report["sha256"].startswith("sha256:")
    assert report["variants"] == ["organizer-model@int8", "organizer-model@fp16", "organizer-model@prune50",
                                  "organizer-model@prune90"]
    assert registered_names(models_dir) == ["organizer-model"]
    assert RegisteredModel.objects.get(name="organizer-model").sha256 == report["sha256"]
    # the same bytes and card again: nothing changes, the same answer
    assert add_model(tmp_path, u2netp_bytes(), U2NETP_CARD, capsys=capsys) == report


def with_caps(monkeypatch, **caps):
    for name, value in caps.items():
        monkeypatch.setattr(registered, name, value)


REFUSALS = [
    ("not ONNX", b"this is not a model at all, just text\n", U2NETP_CARD, "not an ONNX model: "),
    ("empty file", b"", U2NETP_CARD, "not an ONNX model: "),
    ("missing file", None, U2NETP_CARD, "cannot read model "),
    ("wrong input rank", rank2_input(), TINY_CARD, WRONG_RANK.format(input="x", layout="NCHW", rank=2)),
    ("wrong channels", tiny_conv(channels=4), TINY_CARD,
     WRONG_CHANNELS.format(input="x", found=4, channels="RGB", needed=3)),
    ("wrong size", tiny_conv(size=(32, 32)), TINY_CARD, WRONG_SIZE.format(input="x", found="32×32", card=[64, 64])),
    ("output not a map", vector_output(), TINY_CARD, "output 0 is not a saliency map: shape [1, 3]"),
    ("output index out of range", tiny_conv(), card(TINY_CARD, output__index=2), NO_SUCH_OUTPUT.format(index=2, n=1)),
    ("non-deterministic", random_output(), TINY_CARD, NON_DETERMINISTIC),
    ("card without input.mean", u2netp_bytes(), card(U2NETP_CARD, input__mean=None), "card: input.mean is missing"),
    ("card mistyping a field", u2netp_bytes(), card(U2NETP_CARD, output__normalize="softmax"),
     "card: output.normalize must be one of minmax, sigmoid, none"),
    ("card not JSON", u2netp_bytes(), b"{summary: 1", "card: not a JSON object: "),
    ("missing card", u2netp_bytes(), None, "cannot read card "),
]


@pytest.mark.parametrize(("data", "card_json", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_bad_model_or_card_is_refused_with_one_line_and_nothing_registered(tmp_path, models_dir, data, card_json,
                                                                            message):
    with pytest.raises(CommandError) as error:
        add_model(tmp_path, data, card_json)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)
    assert registered_names(models_dir) == [] and not RegisteredModel.objects.exists()


def test_a_model_over_the_size_cap_is_refused(tmp_path, models_dir, monkeypatch):
    with_caps(monkeypatch, MAX_MODEL_BYTES=1000)
    with pytest.raises(CommandError) as error:
        add_model(tmp_path, u2netp_bytes(), U2NETP_CARD)
    assert str(error.value) == TOO_LARGE.format(size=len(u2netp_bytes()), cap=1000)
    assert registered_names(models_dir) == []


def test_a_model_over_the_time_cap_is_refused(tmp_path, models_dir, monkeypatch):
    with_caps(monkeypatch, MAX_SECONDS_PER_IMAGE=0.0)
    with pytest.raises(CommandError) as error:
        add_model(tmp_path, tiny_conv(), TINY_CARD)
    # The error names the model (the per-image budget stops it on the registration's test images).
    assert str(error.value).startswith("model 'organizer-model' is too slow: ")
    assert str(error.value).endswith("the cap is 0 s")
    assert TOO_SLOW.startswith("the model is too slow: ")
    assert registered_names(models_dir) == []


@pytest.mark.parametrize("white_only, what", [(False, "320×240"), (True, "white")])
def test_a_looping_model_is_stopped_within_its_budget_and_refused(tmp_path, models_dir, monkeypatch, white_only,
                                                                   what):
    """Always looping, or looping only on inputs with white pixels: stopped at the budget, refused by name."""
    with_caps(monkeypatch, MAX_SECONDS_PER_IMAGE=0.5)
    with pytest.raises(CommandError) as error:
        add_model(tmp_path, looping(white_only=white_only), TINY_CARD)
    assert str(error.value) == STOPPED.format(name="organizer-model", cap=0.5, what=what)
    assert str(error.value).startswith("model 'organizer-model' is too slow: stopped after 0.5 s")
    assert registered_names(models_dir) == []


def test_at_measurement_a_looping_model_is_stopped_with_its_name(tmp_path):
    """A model registered before the budget existed (written directly): its run is stopped, naming it."""
    from PIL import Image

    from probekit.models._card import load_card
    from probekit.models.onnx_model import ModelFault, OnnxModel

    model = OnnxModel("loopy", looping(white_only=True), load_card(json.dumps(TINY_CARD)))
    assert model.run(Image.new("RGB", (64, 64), (10, 20, 30)), budget_s=0.5).shape == (1, 1, 64, 64)
    with pytest.raises(ModelFault, match="model 'loopy' ran longer than its budget of 0.5 s on one image"):
        model.run(Image.new("RGB", (64, 64), (255, 255, 255)), budget_s=0.5)


def test_a_map_with_nan_on_some_images_fails_naming_the_model():
    from PIL import Image

    from probekit.models._card import load_card
    from probekit.models.onnx_model import ModelFault, OnnxModel

    model = OnnxModel("nanny", nan_on_white(), load_card(json.dumps(TINY_CARD)))
    assert model.saliency(Image.new("RGB", (64, 64), (10, 20, 30))).shape[:2] == (64, 64)
    with pytest.raises(ModelFault, match="model 'nanny' returned a saliency map with NaN or infinite values"):
        model.saliency(Image.new("RGB", (64, 64), (255, 255, 255)))


@pytest.mark.parametrize(("name", "message"), [
    ("u2netp", TAKEN_BY_BUILTIN.format(name="u2netp")),
    ("../escape", BAD_NAME.format(name="../escape")),
    ("Big", BAD_NAME.format(name="Big")),
    ("a@int8", BAD_NAME.format(name="a@int8")),
])
def test_built_in_and_malformed_names_are_refused(tmp_path, models_dir, name, message):
    with pytest.raises(CommandError) as error:
        add_model(tmp_path, tiny_conv(), TINY_CARD, name=name)
    assert str(error.value) == message
    assert registered_names(models_dir) == [] and not (tmp_path / "escape").exists()


def test_a_registered_name_is_frozen_to_its_bytes_and_card(tmp_path, models_dir, capsys):
    first = add_model(tmp_path, tiny_conv(seed=1), TINY_CARD, name="frozen", capsys=capsys)
    old = first["sha256"].removeprefix("sha256:")
    for data, card_json in ((tiny_conv(seed=2), TINY_CARD), (tiny_conv(seed=1), card(TINY_CARD, summary="other"))):
        with pytest.raises(CommandError) as error:
            add_model(tmp_path, data, card_json, name="frozen")
        assert str(error.value) == FROZEN.format(name="frozen", old=old)
    assert (models_dir / "frozen" / "model.onnx").read_bytes() == tiny_conv(seed=1)


def test_the_command_line_exits_non_zero_with_one_line_for_a_non_onnx_file(tmp_path, models_dir):
    model, card_path = write(tmp_path / "x.onnx", b"PK\x03\x04 not onnx"), write(tmp_path / "c.json", U2NETP_CARD)
    out = subprocess.run([sys.executable, "manage.py", "add_model", str(model), "--name", "bad", "--card",
                          str(card_path), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"})
    assert out.returncode != 0 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "not an ONNX model" in out.stderr
    assert "Traceback" not in out.stderr
    assert registered_names(models_dir) == []


def probekit_cli(*args) -> dict | list:
    out = subprocess.run([sys.executable, "-m", "probekit", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def test_probekit_lists_and_crops_with_a_registered_model_and_its_variants(tmp_path, models_dir, capsys):
    add_model(tmp_path, u2netp_bytes(), U2NETP_CARD, name="mine", capsys=capsys)
    rows = {row["name"]: row for row in probekit_cli("models", "--json")}
    assert rows["mine"]["description"] == U2NETP_CARD["summary"] and "mine@prune50" in rows["mine"]["variants"]
    image = tmp_path / "object.png"
    from tests.probekit.test_models import object_image

    object_image().save(image)
    builtin = probekit_cli("crop", str(image), "--json")
    mine = probekit_cli("crop", str(image), "--model", "mine", "--json")
    assert {k: v for k, v in mine.items() if k not in ("model", "model_version")} == \
        {k: v for k, v in builtin.items() if k not in ("model", "model_version")}
    assert probekit_cli("crop", str(image), "--model", "mine@int8", "--json")["model"] == "mine@int8"


def test_measure_with_a_registered_models_variants_carries_their_amplification_tests(tmp_path, models_dir, capsys):
    add_model(tmp_path, u2netp_bytes(), U2NETP_CARD, name="mine", capsys=capsys)
    image_set = contrast_composites(tmp_path / "set", n=8)
    variants = ["mine@int8", "mine@fp16", "mine@prune50"]
    call_command("measure", str(image_set), "--model", "mine", *[a for v in variants for a in ("--variant", v)],
                 "--json")
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == "mine" and document["variants"] == variants
    assert set(document["hashes"]["models"]) == {"mine", *variants}
    base_ids = [t["id"] for t in document["tests"] if t["variant"] is None and not t["kind"].startswith("position")]
    amplification = {t["id"] for t in document["tests"] if t["kind"] == "amplification"}
    # Every group test on every variant; a position test only where the variant's salient points fell in a
    # region (a test with no units is not compared).
    assert base_ids and {f"amplification:{tid}#{v}" for tid in base_ids for v in variants} <= amplification
    assert all(a.split(":", 1)[1].startswith("position") for a in
               amplification - {f"amplification:{tid}#{v}" for tid in base_ids for v in variants})
    # fp16 (×2) < prune50 (×2, by name) < int8 (×4)
    curve = {tid: [p["model"] for p in points] for tid, points in document["compression_curve"].items()}
    assert {tid: models for tid, models in curve.items() if tid in base_ids} == \
        {tid: ["mine", "mine@fp16", "mine@prune50", "mine@int8"] for tid in base_ids}


def test_measure_names_an_unknown_model_in_one_line(tmp_path, models_dir):
    image_set = contrast_composites(tmp_path / "set", n=4)
    with pytest.raises(CommandError, match="unknown model 'nobody'"):
        call_command("measure", str(image_set), "--model", "nobody", "--json")
