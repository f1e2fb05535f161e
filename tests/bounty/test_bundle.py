"""The reproducibility bundle of a published finding, and `probekit verify` on it (match, mismatch, hostile zips)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile

import pytest
from django.conf import settings
from django.urls import reverse
from PIL import Image

from bounty.selectors import challenge_measurement_settings
from grading.models import Measurement, Replication
from pipeline.models import ImageSet, ProbeRun
from probekit.__main__ import main as probekit_main
from probekit.bundle import BundleError, compare_documents, verify_bundle
from probekit.replication import compare
from tests.bounty.conftest import publish
from tests.factories import user_create
from tests.grading.test_judge_console import _example_image_set, _measure

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(measured):
    publish(measured, judge=user_create("jules"))
    return measured


@pytest.fixture
def bundle_bytes(client, published) -> bytes:
    response = client.get(reverse("finding-bundle", args=[published.pk]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def _rewrite(bundle: bytes, path, *, change=None, add=()) -> None:
    """A copy of `bundle` at `path` with members changed by `change(name, data)` and extra members."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, change(info.filename, data) if change else data)
        for info, data in add:
            target.writestr(info, data)


def test_the_bundle_holds_probe_manifest_images_document_and_settings(client, published, bundle_bytes):
    response = client.get(reverse("finding-bundle", args=[published.pk]))
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="finding-{published.pk}-faces-bundle.zip"'
    measurement = Measurement.objects.get(submission=published)
    archive = zipfile.ZipFile(io.BytesIO(bundle_bytes))
    names = set(archive.namelist())
    assert archive.read("metrics.json").decode() == measurement.document_json  # byte for byte as stored
    published.probe.open("rb")
    assert archive.read(f"probe/{published.probe_name}") == published.probe.read()
    manifest = json.loads(archive.read("imageset/manifest.json"))
    assert {f"imageset/{item['image']}" for item in manifest["items"]} <= names and len(manifest["items"]) == 24
    meta = json.loads(archive.read("bundle.json"))
    document = json.loads(measurement.document_json)
    assert meta["document"]["sha256"] == measurement.document_sha256
    assert meta["model"]["name"] == "spectral-residual" and meta["model"]["version"] == document["model_version"]
    assert meta["model"]["weights_sha256"] is None  # a numerical model has no weights file
    assert meta["model"]["card"]["name"] == "spectral-residual"
    assert meta["versions"] == document["versions"] and set(meta["versions"]) >= {"numpy", "scipy", "onnxruntime"}
    assert meta["seed"] == measurement.seed
    assert meta["settings"] == challenge_measurement_settings(challenge=published.challenge)
    assert meta["probe"]["sha256"] == published.probe_sha256
    assert meta["finding"]["identifier"] == published.finding_identifier


def test_a_u2netp_bundle_names_the_sha256_of_its_weights():
    from probekit.bundle import model_facts
    from probekit.models.u2net import weights_path

    facts = model_facts("u2netp")
    assert facts["weights_sha256"] == "sha256:" + hashlib.sha256(weights_path().read_bytes()).hexdigest()


def test_only_published_findings_have_a_bundle(client, measured):
    assert client.get(reverse("finding-bundle", args=[measured.pk])).status_code == 404
    assert client.get(reverse("finding-bundle", args=[999_999])).status_code == 404


def test_the_finding_judge_page_and_api_link_the_bundle(client, published):
    page = client.get(reverse("finding-detail", args=[published.pk])).content.decode()
    measurement = Measurement.objects.get(submission=published)
    assert reverse("finding-bundle", args=[published.pk]) in page
    assert f"probekit verify finding-{published.pk}-faces-bundle.zip" in page
    assert measurement.document_sha256 in page and len(measurement.document_sha256) == 71  # the full hash
    assert "python manage.py measure IMAGE_SET_DIR --challenge faces" in page  # the re-measure line stays
    judge = published.challenge.judges.first()
    client.force_login(judge)
    judge_page = client.get(reverse("judge-submission", args=[published.pk])).content.decode()
    assert reverse("finding-bundle", args=[published.pk]) in judge_page
    client.force_login(published.participant)
    api = client.get(reverse("api-submission-detail", args=[published.pk])).json()
    assert api["bundle_url"] == "http://testserver" + reverse("finding-bundle", args=[published.pk])


def test_verify_matches_the_published_document(tmp_path, published, bundle_bytes, capsys):
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle_bytes)
    measurement = Measurement.objects.get(submission=published)
    report = verify_bundle(path)
    assert report == {"match": True, "published_sha256": measurement.document_sha256,
                      "recomputed_sha256": measurement.document_sha256, "differences": []}
    assert probekit_main(["verify", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"match {measurement.document_sha256}"


def test_verify_names_the_altered_image_and_the_tests_that_moved(tmp_path, bundle_bytes, capsys):
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(bundle_bytes)).read("imageset/manifest.json"))
    item = manifest["items"][3]

    def mirror(name, data):
        if name != f"imageset/{item['image']}":
            return data
        out = io.BytesIO()  # the subjects painted over: the crop cannot prefer either any more
        Image.new("RGB", Image.open(io.BytesIO(data)).size, (128, 128, 128)).save(out, "PNG")
        return out.getvalue()

    altered = tmp_path / "altered.zip"
    _rewrite(bundle_bytes, altered, change=mirror)
    report = verify_bundle(altered)
    assert report["match"] is False and report["published_sha256"] != report["recomputed_sha256"]
    images = [d for d in report["differences"] if d["what"] == "image"]
    assert [d["name"] for d in images] == [item["id"]]
    assert any(d["what"] == "test" and "moved" in d["message"] for d in report["differences"])
    assert probekit_main(["verify", str(altered), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["match"] is False and set(printed) == {"match", "published_sha256", "recomputed_sha256", "differences"}


def test_verify_says_when_metrics_json_is_not_the_document_the_bundle_names(tmp_path, bundle_bytes):
    def edit(name, data):
        return data.replace(b'"seed":0', b'"seed":0 ') if name == "metrics.json" else data

    edited = tmp_path / "edited.zip"
    _rewrite(bundle_bytes, edited, change=edit)
    report = verify_bundle(edited)
    assert report["match"] is False
    assert report["differences"][0]["what"] == "document"


def test_compare_documents_names_a_library_version_and_a_model_version():
    published = {"versions": {"numpy": "2.4.6"}, "model": "u2netp", "model_version": "a", "hashes": {}, "tests": []}
    recomputed = {"versions": {"numpy": "2.3.0"}, "model": "u2netp", "model_version": "b", "hashes": {}, "tests": []}
    messages = [d["message"] for d in compare_documents(published, recomputed)]
    assert messages == ["numpy 2.4.6 was published, 2.3.0 is installed here",
                        "model u2netp version a was published, b runs here"]


def _link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member, message", [
    (zipfile.ZipInfo("../escape.txt"), "unsafe entry '../escape.txt'"),
    (zipfile.ZipInfo("/etc/cron.d/x"), "unsafe entry '/etc/cron.d/x'"),
    (zipfile.ZipInfo("imageset/../../x"), "unsafe entry"),
    (zipfile.ZipInfo("elsewhere.txt"), "unsafe entry 'elsewhere.txt'"),
    (_link("imageset/images/link.png"), "unsafe entry 'imageset/images/link.png'"),
])
def test_verify_refuses_unsafe_entries_by_name(tmp_path, bundle_bytes, member, message):
    hostile = tmp_path / "hostile.zip"
    _rewrite(bundle_bytes, hostile, add=[(member, b"/etc/passwd")])
    with pytest.raises(BundleError, match=message.replace("(", r"\(").replace(".", r"\.")):
        verify_bundle(hostile)
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("name, message", [
    ("imageset/images/D:/x.png", "unsafe entry"),
    ("imageset/images/CON.png", "reserved Windows device name 'CON'"),
    ("imageset/images/x.png.", "ending in a dot or a space"),
    ("imageset/MANIFEST.JSON", "twice (case and Unicode normalisation aside)"),
])
def test_verify_refuses_entries_that_are_not_portable_with_exit_2_and_one_line(tmp_path, bundle_bytes, name, message,
                                                                                 capsys):
    hostile = tmp_path / "hostile.zip"
    _rewrite(bundle_bytes, hostile, add=[(zipfile.ZipInfo(name), b"x")])
    with pytest.raises(BundleError, match=re.escape(message)):
        verify_bundle(hostile)
    assert probekit_main(["verify", str(hostile)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err


@pytest.mark.parametrize("change", [
    lambda name, data: b"[1, 2" if name == "metrics.json" else data,  # not JSON
    lambda name, data: b"[]" if name == "metrics.json" else data,  # JSON, not a document
    lambda name, data: b"[" * 100_000 if name == "bundle.json" else data,
    lambda name, data: b"\xff\xfe" if name == "imageset/manifest.json" else data,
])
def test_a_malformed_bundle_is_exit_2_with_one_line_never_a_traceback(tmp_path, bundle_bytes, change, capsys):
    broken = tmp_path / "broken.zip"
    _rewrite(bundle_bytes, broken, change=change)
    assert probekit_main(["verify", str(broken)]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("probekit verify: ")


def test_a_differing_bundle_is_exit_1_with_one_line(tmp_path, bundle_bytes, capsys):
    def edit(name, data):
        return data.replace(b'"seed":0', b'"seed":0 ') if name == "metrics.json" else data

    edited = tmp_path / "edited.zip"
    _rewrite(bundle_bytes, edited, change=edit)
    assert probekit_main(["verify", str(edited)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("differs: published sha256:")


def test_verify_refuses_a_zip_bomb(tmp_path, bundle_bytes):
    bomb = zipfile.ZipInfo("imageset/images/bomb.png")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    hostile = tmp_path / "bomb.zip"
    _rewrite(bundle_bytes, hostile, add=[(bomb, b"\0" * (64 * 2**20))])
    with pytest.raises(BundleError, match="zip bomb"):
        verify_bundle(hostile)


@pytest.mark.parametrize("edit, message", [
    (lambda meta: {**meta, "format": 7}, "format 7"),
    (lambda meta: {**meta, "settings": {**meta["settings"], "max_images": "all"}}, "'max_images' has the wrong type"),
    (lambda meta: {**meta, "settings": {**meta["settings"], "artifacts_dir": "/tmp"}}, "'artifacts_dir' is not a measurement setting"),
    (lambda meta: {**meta, "settings": {**meta["settings"], "model": "no-such-model"}}, "cannot be measured here: unknown model"),
])
def test_verify_names_what_is_wrong_with_bundle_json(tmp_path, bundle_bytes, edit, message, capsys):
    def change(name, data):
        return json.dumps(edit(json.loads(data))).encode() if name == "bundle.json" else data

    broken = tmp_path / "broken.zip"
    _rewrite(bundle_bytes, broken, change=change)
    with pytest.raises(BundleError, match=message):
        verify_bundle(broken)
    assert probekit_main(["verify", str(broken)]) == 2
    assert message.split(":")[0] in capsys.readouterr().err


def test_verify_of_something_that_is_not_a_zip_says_so(tmp_path, capsys):
    junk = tmp_path / "junk.zip"
    junk.write_text("not a zip")
    assert probekit_main(["verify", str(junk)]) == 2
    assert "is not a zip archive" in capsys.readouterr().err


def test_a_replicated_finding_bundles_both_documents_and_verify_checks_both(client, published, tmp_path, monkeypatch,
                                                                           capsys):
    first = Measurement.objects.get(submission=published)
    monkeypatch.setenv("PROBE_SEED", "99")  # the confirmatory draw: the example probe on a fresh seed
    set_dir = _example_image_set()
    run = ProbeRun.objects.create(submission=published, backend="bwrap", status="ok",
                                  details={"rerun_of": first.pk, "replication": True})
    image_set = ImageSet.objects.create(run=run, path=str(set_dir.resolve().relative_to(settings.VAR_DIR)), n_images=24,
                                        manifest_sha256="sha256:" + hashlib.sha256((set_dir / "manifest.json")
                                                                                   .read_bytes()).hexdigest())
    second = Measurement.objects.create(submission=published, image_set=image_set, model_name=first.model_name,
                                        rerun_of=first, probe_sha256=published.probe_sha256)
    text = _measure(set_dir, challenge=published.challenge, measurement_id=second.pk,
                    probe_sha256=published.probe_sha256)
    digest = "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    Measurement.objects.filter(pk=second.pk).update(status="done", document_json=text, document_sha256=digest)
    status, tests = compare(json.loads(first.document_json), json.loads(text))
    assert status == "replicated"
    Replication.objects.create(submission=published, measurement=first, confirmatory=second, status=status,
                               seed=99, tests=tests, document_sha256=digest)

    response = client.get(reverse("finding-bundle", args=[published.pk]))
    bundle = b"".join(response.streaming_content)
    archive = zipfile.ZipFile(io.BytesIO(bundle))
    meta = json.loads(archive.read("bundle.json"))
    assert meta["replication"] == {"status": "replicated", "probe_seed": 99, "image_set": "replication/imageset",
                                   "document": {"path": "replication/metrics.json", "sha256": digest}}
    assert archive.read("replication/metrics.json").decode() == text
    assert "replication/imageset/manifest.json" in archive.namelist()
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle)
    result = verify_bundle(path)
    assert result["match"] is True and result["replication"]["match"] is True
    assert result["replication"]["status"] == "replicated" and result["replication"]["recomputed_sha256"] == digest
    assert probekit_main(["verify", str(path)]) == 0
    assert f"; replication replicated {digest}" in capsys.readouterr().out

    tampered = tmp_path / "tampered.zip"
    _rewrite(bundle, tampered, change=lambda name, data: data.replace(b'"replicated"', b'"same_draw"')
             if name == "bundle.json" else data)
    result = verify_bundle(tampered)
    assert result["match"] is False and result["replication"]["differences"][0]["what"] == "replication"
    assert probekit_main(["verify", str(tampered)]) == 1
    assert "the replication recomputed is replicated, the bundle says same_draw" in capsys.readouterr().out
