"""The challenge's models page, its CSV and its API: organizers and judges only."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from grading.models import REPORT_PENDING, ModelReport
from pipeline.reports import audit_variants
from tests.factories import user_create
from tests.pipeline.test_model_report import finding  # noqa: F401 - the published finding fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(finding):  # noqa: F811
    organizer, judge = user_create("olga"), user_create("jules2")
    finding.challenge.organizers.add(organizer)
    finding.challenge.judges.add(judge)
    return {"organizer": organizer, "judge": judge, "participant": finding.participant}


@pytest.fixture
def reported(finding, capsys):  # noqa: F811
    call_command("model_report", finding.challenge.slug, "--candidate", "spectral-residual@32px", "--json")
    capsys.readouterr()
    return ModelReport.objects.get(challenge=finding.challenge)


def test_the_page_answers_organizers_and_judges_and_not_participants(client, finding, people, reported):  # noqa: F811
    url = reverse("challenge-models", args=[finding.challenge.slug])
    for who, status in (("organizer", 200), ("judge", 200), ("participant", 404)):
        client.force_login(people[who])
        assert client.get(url).status_code == status, who
        linked = url in client.get(reverse("challenge-detail", args=[finding.challenge.slug])).content.decode()
        assert linked == (status == 200), who
    client.force_login(people["organizer"])
    assert url in client.get(reverse("challenge-detail", args=[finding.challenge.slug])).content.decode()
    page = client.get(url).content.decode()
    assert "spectral-residual@32px" in page and "<svg" in page and 'class="report-plot"' in page
    assert reverse("challenge-model-report-csv", args=[finding.challenge.slug, reported.pk]) in page
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_the_csv_holds_one_row_per_finding_test(client, finding, people, reported):  # noqa: F811
    url = reverse("challenge-model-report-csv", args=[finding.challenge.slug, reported.pk])
    client.force_login(people["participant"])
    assert client.get(url).status_code == 404
    client.force_login(people["judge"])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    content = reported.report_json and __import__("json").loads(reported.report_json)
    assert [(int(r["submission"]), r["test"], r["verdict"]) for r in rows] == [
        (f["submission"], f["test"], f["verdict"]) for f in content["findings"]]


def test_the_api_gives_the_same_report(client, finding, people, reported):  # noqa: F811
    url = reverse("api-challenge-models", args=[finding.challenge.slug])
    for who, status in (("organizer", 200), ("participant", 404)):
        token = Token.objects.create(user=people[who])
        response = client.get(url, HTTP_AUTHORIZATION=f"Token {token.key}")
        assert response.status_code == status, who
    body = response_for_organizer = client.get(
        url, HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=people['organizer']).key}").json()
    assert response_for_organizer["model"] == finding.challenge.model_name
    (row,) = body["reports"]
    assert row["status"] == "done" and row["report"] == __import__("json").loads(reported.report_json)


def test_organizers_start_a_report_from_the_page_and_judges_cannot(client, finding, people,  # noqa: F811
                                                                  django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("pipeline.reports.current_app.send_task", lambda name, **kw: sent.append((name, kw)))
    url = reverse("challenge-models", args=[finding.challenge.slug])
    client.force_login(people["judge"])
    assert client.post(url, {"candidate": "u2netp@int8"}).status_code == 404
    client.force_login(people["organizer"])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"candidate": "u2netp@int8"}).status_code == 302
    report = ModelReport.objects.get(candidate="u2netp@int8")
    assert report.status == REPORT_PENDING and report.requested_by == people["organizer"]
    assert sent == [("pipeline.tasks.model_report", {"args": [report.pk], "queue": "bulk"})]
    assert "progress" in client.get(url).content.decode()


def test_the_compression_audit_runs_the_variants_in_order_of_compression():
    from probekit import get_model

    order = audit_variants(model="u2netp")
    assert set(order) == {f"u2netp@{v}" for v in ("fp16", "int8", "prune10", "prune25", "prune50", "prune75",
                                                   "prune90", "prune95")}
    levels = [get_model(name).compression for name in order]
    assert levels == sorted(levels) and order.index("u2netp@fp16") < order.index("u2netp@int8")


def test_the_finding_page_shows_the_latest_reports_verdict(client, finding, reported):  # noqa: F811
    import json
    import re

    content = json.loads(reported.report_json)
    page = client.get(reverse("finding-detail", args=[finding.pk])).content.decode()
    block = re.search(r'id="model-verdicts".*?</div>', page, re.S).group(0)
    line = re.search(r"<li><code>spectral-residual@32px</code>.*?</li>", block, re.S).group(0)
    for row in content["findings"]:
        assert re.search(rf">{row['verdict']}</strong>[^<]*(<code>[^<]*</code>, )*<code>{re.escape(row['test'].replace('>', '&gt;'))}</code>",
                         line)


def test_the_compression_audit_draws_each_findings_curve_and_flags_amplification(client, finding, people,  # noqa: F811
                                                                                 capsys, monkeypatch):
    import json

    from pipeline.reports import audit_curves, report_execute

    sent = []
    monkeypatch.setattr("pipeline.reports.current_app.send_task", lambda name, **kw: sent.append(kw["args"][0]))
    call_command("model_report", finding.challenge.slug, "--audit", "--json")
    queued = json.loads(capsys.readouterr().out)
    variants = audit_variants(model=finding.challenge.model_name)
    assert list(queued["reports"]) == variants
    for report_id in queued["reports"].values():
        assert report_execute(report_id=report_id, split=False) == "done"
    audit = audit_curves(challenge=finding.challenge)
    assert audit["audit"] == queued["audit"] and [r.candidate for r in audit["reports"]] == variants
    assert audit["curves"]
    for curve in audit["curves"]:
        assert [p["model"] for p in curve["points"]] == [finding.challenge.model_name, *variants]
        assert curve["amplified"] == any(p["verdict"] == "worse" for p in curve["points"])
    client.force_login(people["judge"])
    page = client.get(reverse("challenge-models", args=[finding.challenge.slug])).content.decode()
    assert 'id="audit"' in page and page.count('class="audit-curve"') == len(audit["curves"])
