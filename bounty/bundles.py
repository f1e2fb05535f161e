"""Downloads of a published finding: its image set as a zip and its reproducibility bundle
(docs/findings-reproducibility.md). The bundle is written here, outside the read layer; what it
holds is read through the selectors (`latest_measurement`, `challenge_measurement_settings`)."""
from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import blobs
from bounty.errors import NotFound
from bounty.models import Submission
from bounty.selectors import challenge_measurement_settings, latest_measurement, measurement_document
from grading import selectors as grading_selectors
from probekit.bundle import image_set_files, write_bundle


@contextlib.contextmanager
def image_set_local(*, submission: Submission) -> Iterator[Path]:
    """The finding's image set as a local directory for the block (fetched from the object storage)."""
    measurement = latest_measurement(submission=submission)
    if measurement is None or measurement.image_set is None:
        raise NotFound("This finding has no image set.")
    try:
        manifest = blobs.key_of(measurement.image_set.path, "manifest.json")
    except ValueError:  # not a key of ours
        manifest = None
    if manifest is None or not blobs.exists(manifest):
        raise NotFound("This finding's image set is no longer stored.")
    with blobs.fetched_tree(measurement.image_set.path, label="download") as directory:
        yield directory


def image_set_zip_write(*, submission: Submission, target) -> None:
    """The image set as a zip into `target`: manifest.json and its images, regular files only, no links followed."""
    with image_set_local(submission=submission) as directory, \
            zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in image_set_files(directory):
            archive.write(path, arcname=path.relative_to(directory).as_posix())


def finding_record(*, submission: Submission, url: str = "") -> dict:
    """How the platform names a published finding in its bundle and its AVID report."""
    return {"id": submission.pk, "identifier": submission.finding_identifier, "title": submission.title,
            "challenge": submission.challenge.slug, "url": url,
            "published_at": submission.published_at.isoformat() if submission.published_at else None}


def finding_bundle_write(*, submission: Submission, target, url: str = "") -> dict:
    """Write the reproducibility bundle of a published finding to `target` (docs/findings-reproducibility.md).

    The stored document byte for byte, the image set it measured, the probe as submitted, and the
    challenge's measurement settings and seed, so `probekit verify` can recompute the document.
    """
    measurement = latest_measurement(submission=submission)
    if measurement_document(measurement) is None:
        raise NotFound("This finding has no metrics document.")
    try:
        with submission.probe.open("rb") as handle:
            probe_bytes = handle.read()
    except (*blobs.FAULTS, ValueError):  # the probe file is no longer stored: the bundle says so (probe: null)
        probe_bytes = None
    with image_set_local(submission=submission) as directory, \
            replication_local(submission=submission) as replication:
        return write_bundle(target, document_text=measurement.document_json, image_set_dir=directory,
                            settings=challenge_measurement_settings(challenge=submission.challenge),
                            seed=measurement.seed, probe_name=submission.probe_name, probe_bytes=probe_bytes,
                            finding=finding_record(submission=submission, url=url), replication=replication)


@contextlib.contextmanager
def replication_local(*, submission: Submission) -> Iterator[dict | None]:
    """The finding's replication as write_bundle takes it (its confirmatory set fetched for the block),
    or None when it has no measured one (pending, same draw, failed, or none)."""
    replication = grading_selectors.measured_replication(submission=submission)
    if replication is None:
        yield None
        return
    with blobs.fetched_tree(replication.confirmatory.image_set.path, label="download") as directory:
        yield {"status": replication.status, "probe_seed": replication.seed,
               "document_text": replication.confirmatory.document_json, "image_set_dir": directory}


SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def download_name(submission: Submission, suffix: str) -> str:
    return f"finding-{submission.pk}-{SAFE_FILENAME.sub('-', submission.challenge.slug)}{suffix}"
