"""A finding's zips (images.zip, bundle.zip): built once, kept in the object storage, streamed.

The first request for a zip builds it into a scratch file (never in memory) and stores it under
`downloads/finding-<id>/`; every later request, from any web worker, streams the stored object
in blocks, so a download costs neither a rebuild nor memory that grows with the finding. The
key holds a digest of everything the zip is made of (the measurement's document, the stored set,
the probe, the settings, the finding's address): when one of them changes, the next request
builds a new zip under a new key.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import blobs
from bounty import bundles, selectors
from bounty.models import Submission

DOWNLOADS = "downloads"


def _key(submission: Submission, kind: str, *facts: object) -> str:
    measurement = selectors.latest_measurement(submission=submission)
    recipe = [kind, submission.probe_sha256, getattr(measurement, "document_sha256", None),
              getattr(getattr(measurement, "image_set", None), "path", None), *facts]
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return blobs.key_of(DOWNLOADS, f"finding-{submission.pk}", f"{kind}-{digest}.zip")


def _cached(key: str, build: Callable[[object], object]):
    """The open stored object at `key`, built by `build(file)` first when it is not stored yet."""
    handle = blobs.open_blob(key)
    if handle is not None:
        return handle
    with blobs.scratch(label="download") as directory:
        path = directory / "download.zip"
        with open(path, "wb") as target:
            build(target)
        if not blobs.exists(key):  # a concurrent first request may have stored it meanwhile
            blobs.put_file(key, path)
    return blobs.open_blob(key)


def image_set_zip_open(*, submission: Submission):
    """The finding's image set as an open zip (manifest.json and its images)."""
    return _cached(_key(submission, "images"),
                   lambda target: bundles.image_set_zip_write(submission=submission, target=target))


def bundle_zip_open(*, submission: Submission, url: str):
    """The finding's reproducibility bundle as an open zip (`probekit verify` reads it)."""
    settings = selectors.challenge_measurement_settings(challenge=submission.challenge)
    return _cached(_key(submission, "bundle", url, settings, submission.finding_identifier),
                   lambda target: bundles.finding_bundle_write(submission=submission, target=target, url=url))
