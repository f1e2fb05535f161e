"""The model report: a challenge's findings re-measured on a candidate model (docs/statistics.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from onnx import TensorProto, helper

from grading.models import REPORT_DONE, REPORT_FAILED, ModelReport
from grading.selectors import document_of, measurement_of_record
from probekit.compare import covers_parity, verdict
from tests.bounty.conftest import publish
from tests.factories import ROOT, challenge_create, user_create
from tests.grading.test_judge_console import measured_submission_create
from tests.onnx_models import TINY_CARD, _model, write

pytestmark = pytest.mark.django_db
FINDING_KEYS = {"submission", "test", "before", "after", "abs_disparity_change", "verdict"}


@pytest.fixture
def finding(monkeypatch):
    """A published finding on the fast model, measured by the platform's own code."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    challenge = challenge_create(slug="regress", aspect_ratios=[1.0, 2.0])
    submission = measured_submission_create(challenge=challenge, participant=user_create("alice"))
    publish(submission, judge=user_create("jules"))
    return submission


def _report(capsys, slug: str, candidate: str) -> dict:
    capsys.readouterr()
    call_command("model_report", slug, "--candidate", candidate, "--json")
    return json.loads(capsys.readouterr().out)


def _check_contract(report: dict, finding) -> None:
    document = document_of(measurement_of_record(submission=finding))
    published = {t["id"]: t for t in document["tests"]}
    assert set(report) == {"challenge", "model", "candidate", "findings"}
    assert report["challenge"] == finding.challenge.slug and report["model"] == finding.challenge.model_name
    assert report["findings"], "the significant tests of the finding are listed"
    for row in report["findings"]:
        assert set(row) == FINDING_KEYS and row["submission"] == finding.pk
        before = published[row["test"]]
        assert row["before"] == {"estimate": before["estimate"], "ci": before["ci"], "p_holm": before["p_holm"]}
        for side in ("after", "abs_disparity_change"):
            low, high = row[side]["ci"]
            assert low <= row[side]["estimate"] <= high
        kind = before["kind"]
        assert row["verdict"] == verdict(kind=kind, before=row["before"], after=row["after"],
                                         change_ci=row["abs_disparity_change"]["ci"])
        low, high = row["abs_disparity_change"]["ci"]
        if row["verdict"] == "worse":
            assert low > 0
        elif row["verdict"] in ("fixed", "improved"):
            assert high < 0
        elif row["verdict"] == "unchanged":
            assert low <= 0 <= high


@pytest.mark.parametrize("candidate", ["spectral-residual@32px", "smartcrop"])
def test_the_report_lists_each_finding_with_before_after_and_change(finding, capsys, candidate):
    report = _report(capsys, finding.challenge.slug, candidate)
    assert report["candidate"] == candidate
    _check_contract(report, finding)
    stored = ModelReport.objects.get(challenge=finding.challenge, candidate=candidate)
    assert stored.status == REPORT_DONE and json.loads(stored.report_json) == report


def test_the_same_model_as_candidate_changes_nothing_and_the_interval_is_paired(finding, capsys):
    """Both measurements share the units: on the same model every resample's change is exactly 0."""
    report = _report(capsys, finding.challenge.slug, finding.challenge.model_name)
    _check_contract(report, finding)
    for row in report["findings"]:
        assert row["abs_disparity_change"] == {"estimate": 0.0, "ci": [0.0, 0.0]}
        assert row["after"]["estimate"] == row["before"]["estimate"]
        assert row["verdict"] == "unchanged"
    again = _report(capsys, finding.challenge.slug, finding.challenge.model_name)
    assert again == report  # seeded: the same report twice


def _nan_model() -> bytes:
    """A valid graph whose every output is NaN: sqrt(−(|x| + 1))."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "h", "w"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Abs", ["m"], ["a"]), helper.make_node("Add", ["a", "one"], ["b"]),
             helper.make_node("Neg", ["b"], ["c"]), helper.make_node("Sqrt", ["c"], ["y"])]
    return _model(nodes, [x], [y], [one, axes])


@pytest.mark.parametrize("candidate, says", [
    ("no-such-model", "cannot be loaded or run"),
    ("broken-nan", "NaN"),
])
def test_a_broken_candidate_fails_in_one_line_and_writes_no_report(finding, tmp_path, monkeypatch, candidate, says):
    folder = tmp_path / "models"
    (folder / "broken-nan").mkdir(parents=True)
    write(folder / "broken-nan" / "model.onnx", _nan_model())
    write(folder / "broken-nan" / "card.json", TINY_CARD)
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(folder))
    with pytest.raises(CommandError) as failure:
        call_command("model_report", finding.challenge.slug, "--candidate", candidate, "--json")
    message = str(failure.value)
    assert says in message and candidate in message and "\n" not in message
    stored = ModelReport.objects.get(candidate=candidate)
    assert stored.status == REPORT_FAILED and stored.report_json == "" and stored.error == message


def test_an_unknown_challenge_is_one_line():
    with pytest.raises(CommandError, match="no challenge"):
        call_command("model_report", "nope", "--candidate", "u2netp@int8")


# --- verdicts read intervals ------------------------------------------------------------------------

SIGNIFICANT = {"estimate": 0.9, "ci": [0.75, 0.97], "p_holm": 0.001}
PARITY_AFTER = {"estimate": 0.55, "ci": [0.4, 0.7], "p_holm": 0.6}


@pytest.mark.parametrize("after, change_ci, expected", [
    (PARITY_AFTER, [-0.5, -0.1], "fixed"),
    ({"estimate": 0.75, "ci": [0.6, 0.85], "p_holm": 0.01}, [-0.3, -0.05], "improved"),
    (PARITY_AFTER, [-0.5, 0.02], "unchanged"),  # the point moved to parity, the interval did not exclude 0
    ({"estimate": 0.97, "ci": [0.9, 1.0], "p_holm": 0.0001}, [0.01, 0.1], "worse"),
    ({"estimate": 0.1, "ci": [0.03, 0.25], "p_holm": 0.001}, [-0.05, 0.05], "new"),  # the other way round
])
def test_verdicts_come_from_the_intervals(after, change_ci, expected):
    assert verdict(kind="preference", before=SIGNIFICANT, after=after, change_ci=change_ci) == expected


def test_a_test_significant_only_on_the_candidate_is_new():
    before = {"estimate": 0.02, "ci": [-0.05, 0.09], "p_holm": 0.8}
    after = {"estimate": 0.3, "ci": [0.2, 0.4], "p_holm": 0.001}
    assert verdict(kind="group_rate", before=before, after=after, change_ci=[0.2, 0.35]) == "new"
    assert covers_parity("group_rate", before["ci"]) and not covers_parity("group_rate", after["ci"])
    assert np.isfinite(after["estimate"])


def test_a_report_whose_worker_was_lost_is_taken_over_and_a_live_one_is_left_alone(finding, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from pipeline.reports import REPORT_TASK, report_create, report_execute

    sent = []
    monkeypatch.setattr("pipeline.reports.current_app.send_task", lambda name, **kw: sent.append((name, kw)))
    report = report_create(challenge=finding.challenge, candidate="spectral-residual@32px")
    ModelReport.objects.filter(pk=report.pk).update(status="running", lease_holder="gone",
                                                    lease_until=timezone.now() + timedelta(seconds=60))
    assert report_execute(report_id=report.pk, split=False) == "held by another worker; looked at again later"
    assert sent == [(REPORT_TASK, {"args": [report.pk], "countdown": 120, "queue": "bulk"})]
    ModelReport.objects.filter(pk=report.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert report_execute(report_id=report.pk, split=False) == REPORT_DONE
    report.refresh_from_db()
    assert report.status == REPORT_DONE and report.lease_holder != "gone" and report.report_json
    assert report_execute(report_id=report.pk, split=False) == "nothing to do (finished)"


def test_a_published_document_the_model_no_longer_reproduces_is_reported_with_a_warning(finding, capsys):
    from grading.models import Measurement

    measurement = measurement_of_record(submission=finding)
    document = document_of(measurement)
    chosen = next(t for t in document["tests"] if t["variant"] is None and t["kind"] == "preference")
    chosen["estimate"] = 0.75  # as if an older model version had measured it
    Measurement.objects.filter(pk=measurement.pk).update(document_json=json.dumps(document))
    report = _report(capsys, finding.challenge.slug, "spectral-residual@32px")
    row = next(r for r in report["findings"] if r["test"] == chosen["id"])
    assert row["before"]["estimate"] == 0.75  # the published value, as it stands
    stored = ModelReport.objects.get(candidate="spectral-residual@32px")
    assert any("no longer gives the published estimates" in w for w in stored.warnings)
