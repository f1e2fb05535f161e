"""A published finding's public page and its downloads."""
import io
import json
import zipfile

import pytest
from django.urls import reverse

from grading.models import Measurement
from tests.bounty.conftest import publish
from tests.factories import user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(measured):
    judge = user_create("jules")
    measured.challenge.judges.add(judge)
    publish(measured, judge=judge)
    return measured


def test_the_finding_page_shows_hypothesis_writeup_metrics_plots_and_downloads(client, published):
    page = client.get(reverse("finding-detail", args=[published.pk])).content.decode()
    assert "High-contrast vs low-contrast subject in one image" in page  # the image set's title
    assert "The crop keeps the busier subject." in page
    assert "preference:high>low" in page
    assert reverse("submission-artifact", args=[published.pk, "contact_sheet"]) in page
    assert reverse("finding-metrics", args=[published.pk]) in page
    assert reverse("finding-image-set", args=[published.pk]) in page


def test_the_metrics_download_is_the_stored_document_byte_for_byte(client, published):
    response = client.get(reverse("finding-metrics", args=[published.pk]))
    measurement = Measurement.objects.get(submission=published)
    assert response.content.decode() == measurement.document_json
    assert json.loads(response.content)["schema"] == 1
    assert "attachment" in response["Content-Disposition"] and response["X-Content-Type-Options"] == "nosniff"


def test_the_image_set_download_holds_the_manifest_and_every_image(client, published):
    response = client.get(reverse("finding-image-set", args=[published.pk]))
    archive = zipfile.ZipFile(io.BytesIO(response.getvalue()))  # streamed from the stored zip
    manifest = json.loads(archive.read("manifest.json"))
    names = set(archive.namelist())
    assert {item["image"] for item in manifest["items"]} <= names and len(manifest["items"]) == 24


def test_the_leaderboard_links_to_the_finding(client, published):
    board = client.get(reverse("leaderboard", args=[published.challenge.slug])).content.decode()
    assert reverse("finding-detail", args=[published.pk]) in board and "alice" in board
