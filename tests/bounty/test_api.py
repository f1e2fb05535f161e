"""The REST API: token auth, submit, poll, errors in one shape, the OpenAPI schema."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import errors, states
from bounty.models import Submission
from sandbox.probe_files import ZIP_NO_PROBE
from tests.factories import EXAMPLE_PROBE, challenge_create, submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth(alice):
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=alice).key}"}


def submit(client, challenge, auth, **fields):
    data = {"title": "Contrast wins", "harm_type": "under-representation",
            "probe": SimpleUploadedFile("probe.py", EXAMPLE_PROBE.read_bytes()), **fields}
    return client.post(reverse("api-challenge-submissions", args=[challenge.slug]), data, **auth)


def test_a_token_is_obtained_with_username_and_password(client, alice):
    response = client.post(reverse("api-token"), {"username": "alice", "password": "pw-for-tests-1"})
    assert response.status_code == 200 and response.json()["token"] == Token.objects.get(user=alice).key


def test_a_wrong_password_gets_no_token(client, alice):
    response = client.post(reverse("api-token"), {"username": "alice", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["error"] == "Unable to log in with provided credentials."


def test_challenges_are_listed_with_their_target_model(client, challenge):
    body = client.get(reverse("api-challenge-list")).json()
    assert [(c["slug"], c["model_name"], c["state"]) for c in body] == [("faces", "spectral-residual", "open")]
    detail = client.get(reverse("api-challenge-detail", args=["faces"])).json()
    assert "under-representation" in detail["harm_types"] and detail["limits"]["wall_s"] == 60


def test_submitting_with_a_token_queues_the_probe(client, challenge, alice, auth):
    response = submit(client, challenge, auth, writeup="Because.", self_ratings='{"clarity": "adequate"}')
    assert response.status_code == 201, response.content
    body = response.json()
    submission = Submission.objects.get(pk=body["id"])
    assert submission.participant == alice and body["state"] == states.QUEUED and body["queue_position"] == 1
    assert submission.self_assessment["ratings"] == {"clarity": "adequate"}
    assert response["Location"].endswith(reverse("api-submission-detail", args=[submission.pk]))


def test_submitting_without_a_token_is_refused(client, challenge):
    assert submit(client, challenge, {}).status_code == 401
    assert not Submission.objects.exists()


def test_an_unknown_harm_type_is_a_field_error(client, challenge, auth):
    body = submit(client, challenge, auth, harm_type="boredom").json()
    assert body["field"] == "harm_type" and body["error"].startswith("Unknown harm type 'boredom'")
    assert not Submission.objects.exists()


def test_a_zip_without_probe_py_is_refused_before_anything_is_stored(client, challenge, auth):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("main.py", "print('hi')")
    response = submit(client, challenge, auth, probe=SimpleUploadedFile("probe.zip", buffer.getvalue()))
    assert response.status_code == 400
    assert response.json() == {"error": ZIP_NO_PROBE, "code": "probe_rejected", "field": "probe", "extra": {}}
    assert not Submission.objects.exists()


def test_the_daily_limit_is_a_400_with_the_exact_message(client, alice, auth):
    limited = challenge_create(slug="limited", daily_limit=1)
    submission_create(challenge=limited, participant=alice)
    response = submit(client, limited, auth)
    assert response.status_code == 400
    quota = {"total": 1, "total_limit": 100, "today": 1, "daily_limit": 1, "left": 0}
    assert response.json() == {"error": errors.DAILY_LIMIT_REACHED.format(limit=1), "code": "daily_limit_reached",
                               "field": None, "extra": {"quota": quota}}


def test_a_closed_challenge_refuses_submissions(client, auth):
    closed = challenge_create(slug="closed-one", state=states.CLOSED)
    body = submit(client, closed, auth).json()
    assert body["error"] == errors.CHALLENGE_NOT_OPEN.format(state="closed")
    assert body["code"] == "challenge_not_open"


def test_every_api_error_carries_a_stable_code(client, challenge, auth):
    """Clients match `code`, never the English text: field errors, 404, 401, 405 and unparsable bodies too."""
    assert submit(client, challenge, auth, harm_type="boredom").json()["code"] == "invalid_input"
    missing = client.get(reverse("api-submission-detail", args=[999999]), **auth)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found" and missing.json()["error"]
    anonymous = client.post(reverse("api-submission-cancel", args=[1]))
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    wrong_method = client.delete(reverse("api-challenge-list"))
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    broken = client.post(reverse("api-token"), "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["code"] == "parse_error"


def test_the_error_codes_are_listed_in_the_api_description(client):
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    description = schema["info"]["description"]
    for code in errors.API_CODES:
        assert f"`{code}`" in description, code
    assert "daily_limit_reached" in errors.API_CODES and "parse_error" in description


def test_polling_a_measured_submission_returns_run_tails_and_the_metrics_document(client, measured, auth):
    body = client.get(reverse("api-submission-detail", args=[measured.pk]), **auth).json()
    assert body["state"] == states.IN_REVIEW and body["finished"] is False
    assert body["run"]["status"] == "ok" and "wrote 24 composites" in body["run"]["stdout_tail"]
    assert body["metrics"]["schema"] == 1 and any(t["kind"] == "preference" for t in body["metrics"]["tests"])
    assert set(body["images"]) >= {"contact_sheet", "preference"}
    assert body["provisional_score"] == measured.provisional_score and body["final_score"] is None


def test_polling_a_queued_submission_has_no_metrics_yet(client, challenge, alice, auth):
    submission = submission_create(challenge=challenge, participant=alice)
    body = client.get(reverse("api-submission-detail", args=[submission.pk]), **auth).json()
    assert body["state"] == states.QUEUED and body["metrics"] is None and body["run"]["status"] == "queued"


def test_cancelling_through_the_api(client, challenge, alice, auth):
    submission = submission_create(challenge=challenge, participant=alice)
    body = client.post(reverse("api-submission-cancel", args=[submission.pk]), **auth).json()
    assert body["state"] == states.CANCELLED
    again = client.post(reverse("api-submission-cancel", args=[submission.pk]), **auth)
    assert again.status_code == 400 and again.json()["error"] == errors.CANNOT_CANCEL.format(state="cancelled")


def test_the_openapi_schema_describes_every_operation(client):
    response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/challenges/", "/api/challenges/{slug}/", "/api/challenges/{slug}/submissions/",
                 "/api/challenges/{slug}/leaderboard/", "/api/submissions/{submission_id}/", "/api/token/"]:
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/challenges/{slug}/submissions/"]["post"]["requestBody"]["content"]
