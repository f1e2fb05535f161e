"""Every example probe runs in the real bubblewrap sandbox and gets a measured document.

The examples are what a newcomer copies, so each must pass the same path a submission takes:
sandboxed run → validated image set → measurement (spectral-residual, the fast target, with
one compressed variant so the amplification tests are exercised too).
"""
from __future__ import annotations

import ast

import pytest

from bounty.demo import example_probes, probe_upload
from grading.measurement import measure_image_set
from sandbox.limits import Limits
from sandbox.runner import run_probe

pytestmark = pytest.mark.slow

# probe-built composites test the left region (position_x); platform-built pairs the left/top slot (position)
COMPOSITE_KINDS = {"preference", "position_x", "group_rate", "amplification"}
PAIRS_KINDS = {"preference", "position", "group_rate", "amplification"}
# Probe -> (its groups, the test kinds its design must produce).
EXPECTED = {
    "contrast_composites.py": (["high", "low"], COMPOSITE_KINDS),
    "emoji_skin_tone.py": (["light", "medium-light", "medium", "medium-dark", "dark"], COMPOSITE_KINDS | {"paired"}),
    "face_skin_tone.py": (["lighter", "darker"], COMPOSITE_KINDS | {"paired"}),
    "hair_lightness.py": (["dark-hair", "white-hair"], COMPOSITE_KINDS | {"paired"}),
    "labelled_folder_pairs": (["lighter", "darker"], PAIRS_KINDS),
    "padding_position.py": (["collins", "hopper"], COMPOSITE_KINDS | {"paired"}),
    "script_latin_arabic.py": (["latin", "arabic", "hebrew", "devanagari"], COMPOSITE_KINDS | {"paired"}),
}
PROBES = example_probes()


def test_every_example_probe_has_expectations_here():
    assert sorted(p.name for p in PROBES) == sorted(EXPECTED)


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_example_probe_documents_its_hypothesis_method_and_limits(probe):
    source = (probe / "probe.py" if probe.is_dir() else probe).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    for heading in ("Hypothesis", "Method", "can and cannot show", "References"):
        assert heading in docstring, f"{probe.name}: the docstring needs a {heading!r} section"


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_example_probe_runs_in_the_sandbox_and_is_measured(probe, tmp_path):
    name, content = probe_upload(probe)  # a folder probe goes in zipped, as a participant uploads it
    upload = tmp_path / name
    upload.write_bytes(content)
    result = run_probe(upload, backend="bwrap", limits=Limits(wall_s=120, cpu_s=110), out_dir=tmp_path / "set")
    assert result.status == "ok", (result.error, result.stderr_tail)
    assert result.n_images > 0

    document = measure_image_set(tmp_path / "set", model="spectral-residual", variants=["spectral-residual@32px"])
    groups, kinds = EXPECTED[probe.name]
    assert document["group_names"] == groups
    assert kinds <= {test["kind"] for test in document["tests"]}
    preference = [t for t in document["tests"] if t["kind"] == "preference" and t["variant"] is None]
    assert preference and all(t["n"] + t["n_neither"] > 0 and t["p_holm"] is not None for t in preference)


@pytest.mark.django_db
def test_seeding_the_demo_submits_every_example_probe_once():
    from django.core.management import call_command

    from bounty.demo import DEMO_ACCOUNTS, DEMO_SLUG
    from bounty.models import Submission

    call_command("load_demo", model="spectral-residual")
    call_command("seed_demo_submissions")
    call_command("seed_demo_submissions")  # a second start of `make run` adds nothing

    seeded = Submission.objects.filter(challenge__slug=DEMO_SLUG, participant__username=DEMO_ACCOUNTS["participant"][0])
    names = sorted(seeded.values_list("probe_name", flat=True))
    assert names == sorted(probe_upload(p)[0] for p in PROBES)
    assert set(seeded.values_list("state", flat=True)) == {"queued"}
    emoji = seeded.get(probe_name="emoji_skin_tone.py")
    assert emoji.title == "Does the crop prefer lighter skin-tone emoji over darker ones?"
    assert "Hypothesis" in emoji.writeup
