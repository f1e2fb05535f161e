"""A challenge may target a registered model; opening it freezes the model's name, version and weights sha256."""
from __future__ import annotations

import hashlib

import pytest

from bounty import errors, services, states
from bounty.errors import BountyError
from bounty.models import Challenge
from probekit.models import REGISTRY, get_model
from probekit.models.registered import register_model
from probekit.models.u2net import weights_path
from tests.bounty.test_admin_forms import change_data, change_url
from tests.factories import challenge_create
from tests.onnx_models import TINY_CARD, tiny_conv, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def organizer_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "models"))
    return register_model(write(tmp_path / "m.onnx", tiny_conv()), name="organizer-net",
                          card_path=write(tmp_path / "m.json", TINY_CARD), builtins=REGISTRY)


def admin_post(admin_client, challenge, **changes):
    return admin_client.post(change_url(challenge), change_data(challenge, **changes))


def test_the_admin_offers_registered_models_and_opening_freezes_version_and_sha256(admin_client, organizer_model):
    assert 'value="organizer-net"' in admin_client.get("/admin/bounty/challenge/add/").content.decode()
    challenge = challenge_create(slug="organizer", state=states.DRAFT, model_version="")
    response = admin_post(admin_client, challenge, model_name="organizer-net",
                          model_variants=["organizer-net@int8", "organizer-net@prune50"])
    assert response.status_code == 302, response.content.decode()[:2000]
    challenge.refresh_from_db()
    # a draft freezes nothing
    assert (challenge.model_name, challenge.model_version, challenge.model_sha256) == ("organizer-net", "", "")
    assert admin_post(admin_client, challenge, state=states.OPEN).status_code == 302
    challenge.refresh_from_db()
    assert challenge.model_name == "organizer-net"
    assert challenge.model_version == get_model("organizer-net").version == organizer_model["version"]
    assert challenge.model_sha256 == organizer_model["sha256"]


def test_an_open_challenges_target_cannot_change(admin_client, organizer_model):
    challenge = challenge_create(slug="frozen", model_name="organizer-net")
    response = admin_post(admin_client, challenge, model_name="u2netp")
    message = errors.CHALLENGE_MODEL_FROZEN.format(name="organizer-net", version=challenge.model_version)
    assert response.status_code == 200 and message.replace("'", "&#x27;") in response.content.decode()
    assert Challenge.objects.get(pk=challenge.pk).model_name == "organizer-net"
    with pytest.raises(BountyError, match="frozen"):
        services.check_challenge_model(challenge=challenge, model_name="u2netp", variants=[], state=states.OPEN)
    # The compressed versions measured beside the target may still change: they are not the target.
    assert services.check_challenge_model(challenge=challenge, model_name="organizer-net",
                                          variants=["organizer-net@int8"], state=states.OPEN) == {}


def test_opening_on_the_built_in_u2netp_freezes_its_weights_hash_and_a_numerical_model_has_none():
    draft = Challenge(slug="new", title="New", state=states.DRAFT)
    frozen = services.check_challenge_model(challenge=draft, model_name="u2netp", variants=[], state=states.OPEN)
    assert frozen == {"model_version": get_model("u2netp").version,
                      "model_sha256": "sha256:" + hashlib.sha256(weights_path().read_bytes()).hexdigest()}
    frozen = services.check_challenge_model(challenge=draft, model_name="spectral-residual", variants=[],
                                            state=states.OPEN)
    assert frozen == {"model_version": get_model("spectral-residual").version, "model_sha256": ""}
    assert services.check_challenge_model(challenge=draft, model_name="u2netp", variants=[], state=states.DRAFT) == {}


@pytest.mark.parametrize(("model", "variants"), [("nobody", []), ("u2netp", ["u2netp@int4"])])
def test_a_model_this_installation_cannot_run_is_refused(model, variants):
    draft = Challenge(slug="new", title="New", state=states.DRAFT)
    with pytest.raises(BountyError) as error:
        services.check_challenge_model(challenge=draft, model_name=model, variants=variants, state=states.OPEN)
    assert error.value.field == "model_name"
    assert error.value.message.startswith("This installation cannot run the target model: unknown ")
