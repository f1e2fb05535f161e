"""The compression curve: each base test across the variants, ordered by compression, in the document and as a plot."""
from __future__ import annotations

import pytest
from PIL import Image

from probekit.measurement import measure_image_set
from probekit.measurement._curve import compression_curve, compression_order
from probekit.models import REGISTRY
from probekit.models.registered import register_model
from probekit.synthetic import contrast_composites
from tests.onnx_models import TINY_CARD, tiny_conv, write


def _test(tid, variant=None, estimate=0.5, ci=(0.4, 0.6), kind="preference"):
    return {"id": tid if variant is None else f"{tid}#{variant}", "variant": variant, "kind": kind,
            "estimate": estimate, "ci": list(ci)}


def test_variants_are_ordered_by_compression_then_name():
    compression = {"m@fp16": 2.0, "m@int8": 4.0, "m@prune10": 1.11, "m@prune50": 2.0, "m@prune90": 10.0,
                   "m@64px": None}
    assert compression_order(list(compression), compression) == [
        "m@prune10", "m@fp16", "m@prune50", "m@int8", "m@prune90", "m@64px"]


def test_each_base_test_has_the_base_then_each_variant_with_its_estimate_and_interval():
    tests = [_test("preference:a>b"), _test("preference:a>b", "m@int8", 0.7, (0.6, 0.8)),
             _test("preference:a>b", "m@fp16", 0.55, (0.45, 0.65)),
             {**_test("amplification:preference:a>b#m@int8", None), "kind": "amplification"},
             _test("position:left>right", estimate=0.52)]
    curve = compression_curve(tests, model="m", variants=["m@int8", "m@fp16"],
                              compression={"m@int8": 4.0, "m@fp16": 2.0})
    assert list(curve) == ["preference:a>b", "position:left>right"]
    assert curve["preference:a>b"] == [
        {"model": "m", "compression": 1.0, "estimate": 0.5, "ci": [0.4, 0.6], "amplification": None},
        {"model": "m@fp16", "compression": 2.0, "estimate": 0.55, "ci": [0.45, 0.65],
         "amplification": "amplification:preference:a>b#m@fp16"},
        {"model": "m@int8", "compression": 4.0, "estimate": 0.7, "ci": [0.6, 0.8],
         "amplification": "amplification:preference:a>b#m@int8"},
    ]
    assert [p["model"] for p in curve["position:left>right"]] == ["m"]
    assert compression_curve(tests[:1], model="m", variants=[], compression={}) == {}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "models"))
    register_model(write(tmp_path / "tiny.onnx", tiny_conv()), name="tiny",
                   card_path=write(tmp_path / "tiny.json", TINY_CARD), builtins=REGISTRY)
    return "tiny"


def test_a_measurement_with_variants_carries_the_curve_and_draws_it(tmp_path, tiny):
    image_set = contrast_composites(tmp_path / "set", n=8)
    variants = ["tiny@prune90", "tiny@int8", "tiny@fp16", "tiny@prune10"]
    document = measure_image_set(image_set, model="tiny", variants=variants, artifacts_dir=tmp_path / "art")
    base_ids = [t["id"] for t in document["tests"] if t["variant"] is None and t["kind"] != "amplification"]
    assert sorted(document["compression_curve"]) == sorted(base_ids)  # the canonical document sorts keys
    by_id = {t["id"]: t for t in document["tests"]}
    for tid, points in document["compression_curve"].items():
        assert [p["model"] for p in points] == ["tiny", "tiny@prune10", "tiny@fp16", "tiny@int8", "tiny@prune90"]
        compressions = [p["compression"] for p in points]
        assert compressions == sorted(compressions) and compressions[0] == 1.0
        for point in points[1:]:
            assert point["estimate"] == by_id[f"{tid}#{point['model']}"]["estimate"]
            assert point["amplification"] in by_id
    with Image.open(tmp_path / "art" / "compression_curve.png") as plot:
        assert plot.format == "PNG" and plot.width > 400


def test_a_measurement_without_variants_has_an_empty_curve_and_no_plot(tmp_path, tiny):
    image_set = contrast_composites(tmp_path / "set", n=4)
    document = measure_image_set(image_set, model="tiny", artifacts_dir=tmp_path / "art")
    assert document["compression_curve"] == {}
    assert not (tmp_path / "art" / "compression_curve.png").exists()
