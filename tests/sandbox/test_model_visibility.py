"""A challenge's registered model in the sandbox: public ones are mounted read-only and run; private ones show only the card."""
from __future__ import annotations

import json
import secrets

import pytest

from probekit.models import REGISTRY
from probekit.models.registered import register_model
from sandbox.limits import Limits
from sandbox.runner import TargetModelView, run_probe
from tests.onnx_models import TINY_CARD, tiny_conv, write
from tests.sandbox.test_attacks import _leftovers, _make_backend

LIMITS = Limits(wall_s=120, cpu_s=60, memory_bytes=2 * 1024**3)

PROBE = '''
import json, os
from pathlib import Path
report = {"env": os.environ.get("PROBEKIT_MODELS_DIR")}
root = Path("/models/organizer-net")
report["files"] = sorted(p.name for p in root.iterdir()) if root.is_dir() else None
report["card"] = json.loads((root / "card.json").read_text())["summary"] if (root / "card.json").exists() else None
try:
    (root / "model.onnx").write_bytes(b"overwritten")
    report["write"] = "LEAK: wrote the model"
except OSError as exc:
    report["write"] = type(exc).__name__
try:
    from PIL import Image
    from probekit.models import get_model
    result = get_model("organizer-net").analyze(Image.new("RGB", (64, 48), (200, 30, 30)))
    report["ran"] = result.model_version
except Exception as exc:
    report["ran"] = "refused: " + str(exc)[:200]
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(params=["bwrap", "docker"])
def backend(request):
    return _make_backend(request.param, request)


@pytest.fixture
def organizer_net(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBEKIT_MODELS_DIR", str(tmp_path / "models"))
    report = register_model(write(tmp_path / "m.onnx", tiny_conv()), name="organizer-net",
                            card_path=write(tmp_path / "m.json", TINY_CARD), builtins=REGISTRY)
    return tmp_path / "models" / "organizer-net", report


def run_report(backend, tmp_path, target) -> dict:
    probe = write(tmp_path / "probe.py", PROBE.encode())
    run_id = f"models-{secrets.token_hex(6)}"
    result = run_probe(probe, backend=backend, limits=LIMITS, out_dir=tmp_path / "set", run_id=run_id,
                       target_model=target)
    assert result.status != "platform_error", result.error
    assert _leftovers(backend, run_id) == []
    line = [x for x in result.stdout_tail.splitlines() if x.startswith("REPORT ")]
    assert line, (result.stdout_tail[-2000:], result.stderr_tail[-2000:])
    return json.loads(line[-1].removeprefix("REPORT "))


def test_a_public_model_is_mounted_read_only_and_runs_in_the_sandbox(backend, tmp_path, organizer_net):
    directory, registered = organizer_net
    report = run_report(backend, tmp_path, TargetModelView("organizer-net", directory, public=True))
    assert report["env"] == "/models" and report["files"] == ["card.json", "model.onnx"]
    assert report["card"] == TINY_CARD["summary"]
    assert report["write"] in ("OSError", "PermissionError")  # read-only (EROFS or EACCES)
    assert report["ran"] == registered["version"]
    assert (directory / "model.onnx").read_bytes() == tiny_conv()


def test_a_private_model_shows_its_card_but_not_its_weights(backend, tmp_path, organizer_net):
    directory, _registered = organizer_net
    report = run_report(backend, tmp_path, TargetModelView("organizer-net", directory, public=False))
    assert report["files"] == ["card.json"] and report["card"] == TINY_CARD["summary"]
    assert report["ran"].startswith("refused: unknown model 'organizer-net'")


def test_without_a_registered_target_the_sandbox_has_no_models_mount(backend, tmp_path):
    report = run_report(backend, tmp_path, None)
    assert report["env"] is None and report["files"] is None


CONFIRMATORY_PROBE = '''
import json, os
from pathlib import Path
report = {"seed": os.environ.get("PROBE_SEED"), "models_env": os.environ.get("PROBEKIT_MODELS_DIR"),
          "models_dir": Path("/models").exists()}
weights = Path("/opt/probekit/models/weights")
report["weights"] = sorted(p.name for p in weights.iterdir()) if weights.is_dir() else []
import probekit
report["probekit_seed"] = probekit.seed()
for name, call in (("get_model", lambda: probekit.get_model("spectral-residual")),
                   ("crop_window", lambda: probekit.crop_window(100, 100, 5, 5, 1.0))):
    try:
        call()
        report[name] = "LEAK: ran"
    except Exception as exc:
        report[name] = str(exc)[:120]
print("REPORT " + json.dumps(report))
'''


def test_a_confirmatory_run_has_its_seed_and_no_target_model(backend, tmp_path, organizer_net):
    """Replication: PROBE_SEED set, no /models even for a public model, no weights, crop helpers refused."""
    directory, _registered = organizer_net
    probe = write(tmp_path / "probe.py", CONFIRMATORY_PROBE.encode())
    run_id = f"confirm-{secrets.token_hex(6)}"
    result = run_probe(probe, backend=backend, limits=LIMITS, out_dir=tmp_path / "set", run_id=run_id,
                       target_model=TargetModelView("organizer-net", directory, public=True), seed=987654321)
    assert _leftovers(backend, run_id) == []
    line = [x for x in result.stdout_tail.splitlines() if x.startswith("REPORT ")]
    assert line, (result.stdout_tail[-2000:], result.stderr_tail[-2000:])
    report = json.loads(line[-1].removeprefix("REPORT "))
    assert report["seed"] == "987654321" and report["probekit_seed"] == 987654321
    assert report["models_env"] is None and report["models_dir"] is False
    assert report["weights"] == []
    assert report["get_model"].startswith("no target model in the confirmatory run: get_model")
    assert report["crop_window"].startswith("no target model in the confirmatory run: crop_window")
