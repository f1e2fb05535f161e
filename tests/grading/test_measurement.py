"""The platform's measurement of an image set (docs/statistics.md) on generated sets, on the fast model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grading.measurement import document_dumps, measure_image_set
from probekit.synthetic import contrast_composites, identical_composites, single_subjects, textured_square
from probekit.writer import ImageSetWriter

MODEL = "spectral-residual"


def _test(document, test_id):
    return next(t for t in document["tests"] if t["id"] == test_id)


@pytest.fixture(scope="module")
def contrast_set(tmp_path_factory):
    return contrast_composites(tmp_path_factory.mktemp("contrast"), n=16)


def test_a_textured_subject_against_a_flat_one_wins_significantly(contrast_set):
    document = measure_image_set(contrast_set, model=MODEL, seed=0)
    preference = _test(document, "preference:high>low")
    # flat squares of one shade are identical pixels: the same "low" subject in several images
    assert preference["unit"] == "subject" and preference["subjects"]["high"] == 16
    assert preference["n_comparisons"] + preference["n_neither"] == 16
    assert preference["estimate"] > 0.9 and preference["p_holm"] < 0.05
    assert preference["parity_gap"] == pytest.approx(preference["estimate"] - 0.5)
    assert preference["ci"][0] > 0.5


def test_position_is_reported_apart_from_the_group(contrast_set):
    document = measure_image_set(contrast_set, model=MODEL, seed=0)
    # Probe-built images have no slots: the left region and the upper one are tested apart.
    position = _test(document, "position_x:high>low")
    # The textured subject alternates sides, so the left region wins about half the time.
    assert position["ci"][0] < 0.5 < position["ci"][1] and position["outcomes"]["left"] + position["outcomes"]["right"] == 16
    # side by side in every image: no test of top against bottom
    assert not any(t["kind"] == "position_y" for t in document["tests"])


def test_identical_groups_cover_parity(tmp_path):
    document = measure_image_set(identical_composites(tmp_path / "same", n=16), model=MODEL, seed=0)
    preference = _test(document, "preference:a>b")
    assert preference["ci"][0] <= 0.5 <= preference["ci"][1]
    assert preference["p_holm"] > 0.05
    for test in document["tests"]:
        if test["kind"] == "group_rate":
            assert test["ci"][0] <= 0 <= test["ci"][1]


def test_every_test_has_the_fields_of_the_contract(contrast_set):
    document = measure_image_set(contrast_set, model=MODEL, variants=[f"{MODEL}@32px"], seed=0)
    assert set(document) >= {"schema", "model", "model_version", "seed", "hashes", "versions", "tests", "groups",
                             "generalization", "warnings"}
    kinds = {t["kind"] for t in document["tests"]}
    assert kinds == {"preference", "position_x", "group_rate", "amplification"}
    for test in document["tests"]:
        assert {"id", "kind", "variant", "ratio", "groups", "unit", "n", "estimate", "ci", "p_value", "p_holm",
                "effect_size"} <= set(test)
    ids = [t["id"] for t in document["tests"]]
    assert len(ids) == len(set(ids))
    assert "group_rate:high>low@0.56#spectral-residual@32px" in ids
    p_values = [t["p_value"] for t in document["tests"] if t["p_value"] is not None]
    holm = [t["p_holm"] for t in document["tests"] if t["p_value"] is not None]
    assert all(h >= p for h, p in zip(holm, p_values))
    assert document["groups"]["high"]["kept_rate"]["1.0"] > document["groups"]["low"]["kept_rate"]["1.0"]
    assert len(document["hashes"]["images"]) == 16
    # each probe-built composite is its own unit here (no `base`): 16 images, not 197
    assert any("16 images; about 197 are needed" in w for w in document["warnings"])


def test_the_same_inputs_give_a_byte_identical_document(contrast_set, tmp_path):
    first = document_dumps(measure_image_set(contrast_set, model=MODEL, seed=3))
    cached = document_dumps(measure_image_set(contrast_set, model=MODEL, seed=3, cache_dir=tmp_path / "cache"))
    from_cache = document_dumps(measure_image_set(contrast_set, model=MODEL, seed=3, cache_dir=tmp_path / "cache"))
    two_workers = document_dumps(measure_image_set(contrast_set, model=MODEL, seed=3, workers=2))
    assert first == cached == from_cache == two_workers
    assert any((tmp_path / "cache").rglob("*.json"))


def test_pairs_are_composed_four_ways_and_paired_tuples_measured(tmp_path):
    document = measure_image_set(single_subjects(tmp_path / "singles", n=6), model=MODEL, seed=0)
    assert document["n_units"] == 6 * 4
    preference = _test(document, "preference:high>low")
    # the four layouts of a pair are one unit: 6 pairs, 24 layouts
    assert preference["unit"] == "pair" and preference["n"] + preference["n_neither"] == 6
    assert preference["n_layouts"] == 24 and preference["estimate"] > 0.9
    position = _test(document, "position:high>low")
    assert position["n"] == preference["n"]
    paired = _test(document, "paired:high>low@1.0")
    assert paired["n"] == 6 and "mass_difference" in paired


def test_compression_amplification_reports_the_signed_change_and_the_change_in_distance_from_parity(contrast_set):
    document = measure_image_set(contrast_set, model=MODEL, variants=[f"{MODEL}@32px"], seed=0)
    amplified = _test(document, f"amplification:group_rate:high>low@0.56#{MODEL}@32px")
    base = _test(document, "group_rate:high>low@0.56")
    variant = _test(document, f"group_rate:high>low@0.56#{MODEL}@32px")
    assert amplified["signed_change"] == pytest.approx(variant["estimate"] - base["estimate"])
    assert amplified["abs_disparity_change"] == pytest.approx(abs(variant["estimate"]) - abs(base["estimate"]))
    assert amplified["estimate"] == amplified["abs_disparity_change"] and amplified["ci"] == amplified["abs_disparity_change_ci"]
    assert amplified["signed_change_ci"][0] <= amplified["signed_change"] <= amplified["signed_change_ci"][1]


def test_generalization_lists_the_models_where_a_test_holds(contrast_set, monkeypatch):
    from probekit import models

    # Generalization runs every registered model; keep the fast ones for this test.
    fast = {k: v for k, v in models.REGISTRY.items() if k in ("spectral-residual", "fine-grained")}
    monkeypatch.setattr("probekit.measurement.REGISTRY", fast)
    document = measure_image_set(contrast_set, model=MODEL, seed=0, generalization=True)
    assert MODEL in document["generalization"]["preference:high>low"]
    assert set(document["hashes"]["models"]) == {MODEL, "fine-grained"}


def test_artifacts_are_drawn(contrast_set, tmp_path):
    measure_image_set(contrast_set, model=MODEL, variants=[f"{MODEL}@32px"], seed=0, artifacts_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["compression_curve.png", "contact_sheet.png", "group_rates.png", "preference.png", "variants.png"]


def test_the_measure_command_prints_the_document(contrast_set):
    out = subprocess.run([sys.executable, "manage.py", "measure", str(contrast_set), "--model", MODEL, "--json"],
                         capture_output=True, text=True, check=True)
    document = json.loads(out.stdout)
    assert document["model"] == MODEL and _test(document, "preference:high>low")["p_holm"] < 0.05


def test_the_measure_command_names_a_bad_set(tmp_path):
    out = subprocess.run([sys.executable, "manage.py", "measure", str(tmp_path), "--model", MODEL, "--json"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "manifest.json is missing" in out.stderr


def test_the_cache_tells_apart_the_same_images_labelled_differently(contrast_set, tmp_path):
    import json as json_module
    import shutil

    relabelled = tmp_path / "relabelled"
    shutil.copytree(contrast_set, relabelled)
    manifest = json_module.loads((relabelled / "manifest.json").read_text())
    manifest["groups"] = ["textured", "flat"]
    for item in manifest["items"]:
        for region in item["regions"]:
            region["group"] = {"high": "textured", "low": "flat"}[region["group"]]
    (relabelled / "manifest.json").write_text(json_module.dumps(manifest))
    cache = tmp_path / "cache"
    measure_image_set(contrast_set, model=MODEL, seed=0, cache_dir=cache)
    document = measure_image_set(relabelled, model=MODEL, seed=0, cache_dir=cache)
    assert _test(document, "preference:textured>flat")["estimate"] > 0.9


def test_every_image_is_hashed_by_its_content_paired_or_not_split_or_not(tmp_path):
    from grading.measurement import measure_chunk
    from probekit.imageset import file_sha256

    root = single_subjects(tmp_path / "singles", n=5, paired=False)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["items"] = manifest["items"][:-1]  # one high image more than low: it is in no pair
    (root / "manifest.json").write_text(json.dumps(manifest))
    unsplit = measure_image_set(root, model=MODEL, seed=0, workers=2)
    assert unsplit["hashes"]["images"] == {item["id"]: file_sha256(root / item["image"]) for item in manifest["items"]}
    cache = tmp_path / "cache"
    for start, stop in ((0, 7), (7, unsplit["n_units"])):
        measure_chunk(root, model=MODEL, start=start, stop=stop, cache_dir=cache)
    assert document_dumps(measure_image_set(root, model=MODEL, seed=0, cache_dir=cache)) == document_dumps(unsplit)


POOL_AFTER_IN_PROCESS = """
import sys
from grading.measurement import document_dumps, measure_image_set
alone = measure_image_set(sys.argv[1], model=sys.argv[2], seed=0)
pooled = measure_image_set(sys.argv[1], model=sys.argv[2], seed=0, workers=2)
sys.exit(0 if document_dumps(pooled) == document_dumps(alone) else 3)
"""


def test_a_process_pool_after_a_measurement_in_this_process_finishes(tmp_path):
    # Big enough images that OpenCV resized their maps on its own threads before the pool forked.
    # A fresh process: the scenario is that process's own history, not this test session's.
    root = contrast_composites(tmp_path / "big", n=66, size=480)
    done = subprocess.run([sys.executable, "-c", POOL_AFTER_IN_PROCESS, str(root), MODEL], timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0


def test_group_names_are_drawn_as_written_never_as_mathtext(tmp_path):
    # "$\zzz$" is a valid group name; mathtext would try to parse it and raise while plotting
    groups = ["$\\zzz$", "b"]
    with ImageSetWriter(tmp_path / "set", groups=groups, title="odd names") as writer:
        for k in range(4):
            canvas = Image.new("RGB", (120, 60), (128, 128, 128))
            canvas.paste(textured_square(40, k), (10, 10) if k % 2 else (70, 10))
            boxes = [(10, 10, 40, 40), (70, 10, 40, 40)]
            writer.add(canvas, id=f"c{k}", regions=list(zip(groups if k % 2 else groups[::-1], boxes)))
    document = measure_image_set(tmp_path / "set", model=MODEL, seed=0, artifacts_dir=tmp_path / "plots")
    assert _test(document, "preference:$\\zzz$>b")
    assert {"group_rates.png", "preference.png"} <= {p.name for p in (tmp_path / "plots").glob("*.png")}


def test_a_preregistered_primary_is_in_the_document_at_the_full_alpha(tmp_path):
    directory = contrast_composites(tmp_path / "set", n=12)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["primary"] = "group_rate:high>low@1.0"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    document = measure_image_set(directory, model=MODEL, seed=0)
    primary = _test(document, "group_rate:high>low@1.0")
    assert document["primary"] == "group_rate:high>low@1.0" and primary["p_holm"] == primary["p_value"]
    assert document["multiplicity"] == {"procedure": "fixed-sequence: primary at full alpha, then holm", "alpha": 0.05}
    assert document["confounds"] == [] and all(t["ci"][0] >= -1 and t["ci"][1] <= 1 for t in document["tests"])


def _plotted_series(ax) -> list[str]:
    """The label of every series drawn on `ax`: errorbar containers, markers and reference lines."""
    in_containers = {id(child) for container in ax.containers for child in container.get_children()}
    labels = [container.get_label() for container in ax.containers]
    labels += [artist.get_label() for artist in [*ax.collections, *ax.lines] if id(artist) not in in_containers]
    return labels


def _checking_legends(monkeypatch) -> list[str]:
    """Check each plot's legend as it is closed; returns the titles of the plots checked."""
    from probekit.measurement import _artifacts

    checked = []

    class Checking(_artifacts._Figures):
        @staticmethod
        def close(fig) -> None:
            fig.draw_without_rendering()
            (ax,) = fig.axes
            legend_texts = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
            series = _plotted_series(ax)
            assert series and all(label and not label.startswith("_") for label in series), series
            assert sorted(legend_texts) == sorted(series)
            box, frame = fig.legends[0].get_window_extent(), fig.bbox
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)
            checked.append(ax.get_title())
            fig.clear()

    monkeypatch.setattr(_artifacts, "_pyplot", Checking)
    return checked


def test_every_legend_has_an_entry_per_series_and_fits_in_its_figure(contrast_set, tmp_path, monkeypatch):
    checked = _checking_legends(monkeypatch)
    measure_image_set(contrast_set, model=MODEL, variants=[f"{MODEL}@32px"], seed=0, artifacts_dir=tmp_path)
    assert len(checked) == 4, checked


def test_a_narrow_plot_keeps_its_whole_legend(tmp_path, monkeypatch):
    from probekit.measurement._artifacts import render_plots

    checked = _checking_legends(monkeypatch)
    # One aspect ratio: the narrowest figure, where three long labels in a row were cut at both edges.
    rate = {"id": "group_rate:a>b@0.56", "kind": "group_rate", "variant": None, "groups": ["a", "b"],
            "rates": {"a": 0.5, "b": 0.4}, "estimate": 0.1, "ci": [0.0, 0.2]}
    render_plots({"tests": [rate]}, tmp_path)
    assert checked == ["Kept-in-crop rate per group and aspect ratio"]
