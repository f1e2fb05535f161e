"""A challenge's own caps reach every stage: the sandbox, the stored image set and the measurement."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image

from bounty.selectors import challenge_limits, challenge_measurement_settings
from pipeline.runs import _image_set_create, _image_set_upload
from probekit.imageset import ImageSetRejected, validate_image_set
from sandbox.limits import DEFAULT_LIMITS
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def _validated(path: Path, challenge):
    """What the runner does with the copied-out set: validated once, with the challenge's caps
    (pipeline.runs hands `challenge_limits` to `run_probe`, and stores the facts it returns)."""
    limits = challenge_limits(challenge=challenge)
    return validate_image_set(path, max_images=limits.max_images, max_pixels=limits.max_pixels, decode=False)


def _write_set(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8), "white").save(root / "images" / "0.png")
    for i in range(1, n):  # the same tiny file: this test is about counts, not pixels
        shutil.copyfile(root / "images" / "0.png", root / "images" / f"{i}.png")
    items = [{"id": f"i{i}", "image": f"images/{i}.png", "regions": [{"group": "ab"[i % 2], "box": [0, 0, 4, 4]}]}
             for i in range(n)]
    (root / "manifest.json").write_text(json.dumps({"schema": 1, "groups": ["a", "b"], "items": items}))
    return root


def test_a_challenge_that_raises_max_images_stores_a_set_above_the_default(tmp_path):
    n = DEFAULT_LIMITS.max_images + 1
    challenge = challenge_create(slug="big-sets", limits={"max_images": n})
    submission = submission_create(challenge=challenge, participant=user_create("bea"))
    out = _write_set(Path(settings.RUNS_DIR) / f"limits-{submission.pk}", n)
    try:
        run = submission.runs.get()
        facts = _validated(out, challenge)
        image_set = _image_set_create(run=run, key=_image_set_upload(path=out), n_images=n, facts=facts)
        assert image_set.n_images == n
        assert challenge_measurement_settings(challenge=challenge)["max_images"] == n
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_a_challenge_that_lowers_max_images_is_held_to_it_when_the_set_is_stored():
    challenge = challenge_create(slug="small-sets", limits={"max_images": 3})
    submission = submission_create(challenge=challenge, participant=user_create("bo"))
    out = _write_set(Path(settings.RUNS_DIR) / f"limits-{submission.pk}", 4)
    try:
        with pytest.raises(ImageSetRejected, match="limit is 3"):
            _validated(out, challenge)
        assert challenge_limits(challenge=challenge).max_images == 3
    finally:
        shutil.rmtree(out, ignore_errors=True)
