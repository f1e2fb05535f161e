"""The admin registers an organizer's model from an upload and a card, with the checks of `add_model`."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.models import RegisteredModel
from probekit.models import get_model
from tests.onnx_models import U2NETP_CARD, card, u2netp_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def upload(admin_client, data: bytes, card_json, name="admin-u2netp"):
    return admin_client.post("/admin/grading/registeredmodel/add/", {
        "name": name, "card": json.dumps(card_json),
        "model_file": SimpleUploadedFile("model.onnx", data, content_type="application/octet-stream")})


def test_an_upload_with_its_card_registers_the_model_and_records_who(admin_client, admin_user, models_dir):
    response = upload(admin_client, u2netp_bytes(), U2NETP_CARD)
    assert response.status_code == 302, response.content.decode()[:2000]
    row = RegisteredModel.objects.get(name="admin-u2netp")
    assert row.registered_by == admin_user and row.version == get_model("admin-u2netp").version
    assert (models_dir / "admin-u2netp" / "model.onnx").read_bytes() == u2netp_bytes()
    assert "admin-u2netp" in admin_client.get("/admin/grading/registeredmodel/").content.decode()


@pytest.mark.parametrize(("data", "card_json", "message"), [
    (b"not a model", U2NETP_CARD, "not an ONNX model"),
    (u2netp_bytes(), card(U2NETP_CARD, input__mean=None), "card: input.mean is missing"),
])
def test_a_bad_upload_shows_the_one_line_and_registers_nothing(admin_client, models_dir, data, card_json, message):
    response = upload(admin_client, data, card_json)
    assert response.status_code == 200 and message in response.content.decode()
    assert not RegisteredModel.objects.exists() and not (models_dir / "admin-u2netp").exists()
