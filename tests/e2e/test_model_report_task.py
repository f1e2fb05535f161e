"""An organizer starts a model report from the page; a real worker computes it on the bulk queue."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from grading.models import REPORT_DONE, ModelReport
from tests.bounty.conftest import publish
from tests.conftest import wait_for
from tests.factories import ROOT, challenge_create, user_create
from tests.grading.test_judge_console import measured_submission_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_report_started_from_the_page_runs_in_a_worker_with_progress(client, celery_worker, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    organizer = user_create("olga")
    challenge = challenge_create(slug="report-task", aspect_ratios=[1.0])
    challenge.organizers.add(organizer)
    finding = measured_submission_create(challenge=challenge, participant=user_create("alice"))
    publish(finding, judge=user_create("jules"))

    client.force_login(organizer)
    url = reverse("challenge-models", args=[challenge.slug])
    assert client.post(url, {"candidate": "spectral-residual@32px"}).status_code == 302
    report = wait_for(lambda: ModelReport.objects.filter(challenge=challenge, status=REPORT_DONE).first(),
                      timeout=180, what="the model report")
    assert report.progress_total and report.progress_done == report.progress_total
    content = json.loads(report.report_json)
    assert content["candidate"] == "spectral-residual@32px"
    assert {row["submission"] for row in content["findings"]} == {finding.pk}
    page = client.get(url).content.decode()
    assert "report-plot" in page and "spectral-residual@32px" in page


def test_a_big_report_is_split_into_chunks_and_gives_the_unsplit_report(celery_worker, settings, monkeypatch):
    from pipeline.reports import report_chunks, report_create, report_execute

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    challenge = challenge_create(slug="report-split", aspect_ratios=[1.0, 2.0])
    finding = measured_submission_create(challenge=challenge, participant=user_create("alice"))
    publish(finding, judge=user_create("jules"))
    settings.MEASURE_CHUNK_SIZE = 10_000
    whole = report_create(challenge=challenge, candidate="spectral-residual@32px")
    assert report_execute(report_id=whole.pk) == REPORT_DONE

    settings.MEASURE_CHUNK_SIZE = 10
    chunks = report_chunks(challenge=challenge, candidate="spectral-residual@32px")
    assert {model for _s, model, _a, _b in chunks} == {challenge.model_name, "spectral-residual@32px"}
    assert all(stop - start <= 10 for _s, _m, start, stop in chunks)
    split = report_create(challenge=challenge, candidate="spectral-residual@32px")
    assert report_execute(report_id=split.pk) == f"split into {len(chunks)} chunks"
    split = wait_for(lambda: ModelReport.objects.filter(pk=split.pk, status=REPORT_DONE).first(), timeout=180,
                     what="the split report")
    whole.refresh_from_db()
    assert split.report_json == whole.report_json
