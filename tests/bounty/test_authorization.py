"""Participant A sees nothing of participant B's submission; anonymous users see only public pages."""
import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from bounty import states
from tests.bounty.conftest import publish
from tests.factories import challenge_create, submission_create, user_create

pytestmark = pytest.mark.django_db


def private_urls(submission_id: int) -> list[str]:
    return [
        reverse("submission-detail", args=[submission_id]),
        reverse("submission-detail", args=[submission_id]) + "?partial=1",
        reverse("submission-status", args=[submission_id]),
        reverse("submission-log", args=[submission_id, "stdout"]),
        reverse("submission-log", args=[submission_id, "stderr"]),
        reverse("submission-artifact", args=[submission_id, "contact_sheet"]),
        reverse("submission-artifact", args=[submission_id, "preference"]),
    ]


def test_the_owner_sees_her_submission_logs_and_images(client, measured, alice):
    client.force_login(alice)
    for url in private_urls(measured.pk):
        assert client.get(url).status_code == 200, url
    image = client.get(reverse("submission-artifact", args=[measured.pk, "contact_sheet"]))
    assert image["Content-Type"] == "image/png" and image["X-Content-Type-Options"] == "nosniff"


def test_another_participant_gets_404_for_the_submission_its_logs_and_images(client, measured, bob):
    client.force_login(bob)
    for url in private_urls(measured.pk):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("submission-cancel", args=[measured.pk])).status_code == 404
    assert client.get(reverse("challenge-submit", args=[measured.challenge.slug]) + f"?from={measured.pk}").status_code == 404


def test_another_participant_gets_404_for_the_api_object(client, measured, bob):
    token = Token.objects.create(user=bob)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get(reverse("api-submission-detail", args=[measured.pk]), **auth).status_code == 404
    assert client.post(reverse("api-submission-cancel", args=[measured.pk]), **auth).status_code == 404


def test_a_judge_of_the_challenge_may_see_the_submission(client, measured):
    judge = user_create("jules")
    measured.challenge.judges.add(judge)
    client.force_login(judge)
    assert client.get(reverse("submission-detail", args=[measured.pk])).status_code == 200


def test_anonymous_users_are_sent_to_log_in_for_private_pages_and_refused_by_the_api(client, measured):
    for url in private_urls(measured.pk)[:5]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    # Images of an unpublished finding are simply not there for the public.
    assert client.get(reverse("submission-artifact", args=[measured.pk, "contact_sheet"])).status_code == 404
    assert client.get(reverse("api-submission-detail", args=[measured.pk])).status_code == 401
    assert client.get(reverse("submission-list")).status_code == 302
    assert client.get(reverse("team-list")).status_code == 302


def test_anonymous_users_see_the_public_pages(client, challenge):
    for url in [reverse("home"), reverse("challenge-detail", args=[challenge.slug]),
                reverse("leaderboard", args=[challenge.slug]), reverse("api-challenge-list"),
                reverse("api-challenge-detail", args=[challenge.slug]), reverse("api-leaderboard", args=[challenge.slug]),
                reverse("signup"), reverse("login"), reverse("password_reset")]:
        assert client.get(url).status_code == 200, url


def test_an_unpublished_submission_has_no_public_finding_page(client, measured):
    assert client.get(reverse("finding-detail", args=[measured.pk])).status_code == 404
    assert client.get(reverse("finding-metrics", args=[measured.pk])).status_code == 404
    assert client.get(reverse("finding-image-set", args=[measured.pk])).status_code == 404


def test_a_published_finding_and_its_images_are_public(client, measured):
    judge = user_create("jules")
    measured.challenge.judges.add(judge)
    publish(measured, judge=judge)
    assert client.get(reverse("finding-detail", args=[measured.pk])).status_code == 200
    assert client.get(reverse("submission-artifact", args=[measured.pk, "contact_sheet"])).status_code == 200
    # The run's logs stay private even once the finding is public.
    assert client.get(reverse("submission-log", args=[measured.pk, "stderr"])).status_code == 302


def test_a_draft_challenge_is_invisible(client, alice):
    draft = challenge_create(slug="secret-draft", state=states.DRAFT)
    client.force_login(alice)
    for url in [reverse("challenge-detail", args=[draft.slug]), reverse("leaderboard", args=[draft.slug]),
                reverse("challenge-submit", args=[draft.slug]), reverse("api-challenge-detail", args=[draft.slug])]:
        assert client.get(url).status_code == 404, url
    assert "secret-draft" not in client.get(reverse("api-challenge-list")).content.decode()


def test_an_artifact_name_outside_the_known_plots_is_404(client, measured, alice):
    client.force_login(alice)
    for name in ["manifest", "..%2Fsecret_key", "contact_sheet.png"]:
        assert client.get(f"/submissions/{measured.pk}/images/{name}.png").status_code == 404, name


def test_participants_list_only_their_own_submissions(client, challenge, alice, bob):
    mine = submission_create(challenge=challenge, participant=alice, title="Alice's finding")
    submission_create(challenge=challenge, participant=bob, title="Bob's finding")
    client.force_login(alice)
    page = client.get(reverse("submission-list")).content.decode()
    assert "Alice&#x27;s finding" in page and "Bob" not in page
    api = client.get(reverse("api-challenge-submissions", args=[challenge.slug])).json()
    assert [row["id"] for row in api] == [mine.pk]
