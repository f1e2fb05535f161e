"""probekit as its own distribution: `pip install ./probekit` into a plain virtualenv, used outside the checkout.

The venv gets only probekit and its declared dependencies (no Django); the platform's document
must be re-measured there byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from probekit.bundle import write_bundle
from probekit.measurement import document_dumps, measure_image_set
from probekit.models import get_model
from probekit.synthetic import contrast_composites

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(model="spectral-residual", variants=["spectral-residual@32px"], ratios=None, compose_options=None,
                generalization=False, max_images=5_000, max_pixels=25_000_000)

pytestmark = pytest.mark.slow


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("probekit-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "./probekit"], cwd=ROOT,
                   env=_clean_env(), check=True, capture_output=True, timeout=900)
    return venv


@pytest.fixture()
def outside(tmp_path) -> Path:
    """A working directory with nothing of the checkout in it."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


def _run(venv: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "probekit"), *args], cwd=cwd, env=_clean_env(), capture_output=True,
                          text=True, timeout=600)


def test_the_venv_has_probekit_and_no_django(fresh_venv, outside):
    code = ("import importlib.util, probekit; "
            "print(importlib.util.find_spec('django') is None, probekit.__file__)")
    out = subprocess.run([str(fresh_venv / "bin" / "python"), "-c", code], cwd=outside, env=_clean_env(),
                         capture_output=True, text=True, check=True)
    no_django, location = out.stdout.split()
    assert no_django == "True"
    assert str(fresh_venv) in location and str(ROOT) not in location


def test_models_lists_a_working_u2netp_with_the_platforms_version(fresh_venv, outside):
    result = _run(fresh_venv, "models", "--json", cwd=outside)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"u2netp", "spectral-residual", "fine-grained", "smartcrop"}
    assert rows["u2netp"]["version"] == get_model("u2netp").version


def test_run_measures_a_probe_outside_the_checkout(fresh_venv, outside):
    probe = outside / "probe.py"
    probe.write_text(textwrap.dedent("""
        from PIL import Image, ImageDraw
        from probekit import ImageSetWriter

        with ImageSetWriter(groups=["dark", "light"], title="Dark vs light square") as writer:
            for k in range(4):
                image = Image.new("RGB", (240, 120), (128, 128, 128))
                draw = ImageDraw.Draw(image)
                left, right = ((20, 140) if k % 2 else (140, 20))
                draw.rectangle([left, 20, left + 80, 100], fill=(10, 10, 10))
                draw.rectangle([right, 20, right + 80, 100], fill=(250, 250, 250))
                writer.add(image, id=f"i{k}", regions=[("dark", (left, 20, 80, 80)), ("light", (right, 20, 80, 80))])
    """))
    result = _run(fresh_venv, "run", "probe.py", "--out", "out", "--measure", cwd=outside)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_images"] == 4 and report["groups"] == ["dark", "light"]
    assert report["measurement"]  # measured on the default model, u2netp, from the shipped weights
    assert (outside / "out" / "manifest.json").is_file()


@pytest.fixture(scope="module")
def platform_bundle(tmp_path_factory) -> tuple[Path, str]:
    """A bundle written with the platform's interpreter, its document measured there."""
    base = tmp_path_factory.mktemp("bundle")
    image_set = contrast_composites(base / "set", n=8)
    probe = b"print('the probe as submitted')\n"
    document = measure_image_set(image_set, seed=3, probe_sha256="sha256:" + hashlib.sha256(probe).hexdigest(),
                                 **SETTINGS)
    text = document_dumps(document)
    write_bundle(base / "bundle.zip", document_text=text, image_set_dir=image_set, settings=SETTINGS, seed=3,
                 probe_name="probe.py", probe_bytes=probe)
    return base / "bundle.zip", "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_verify_in_the_fresh_venv_matches_the_platforms_document(fresh_venv, outside, platform_bundle):
    bundle, published = platform_bundle
    result = _run(fresh_venv, "verify", str(bundle), cwd=outside)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"match {published}"


def test_verify_in_the_fresh_venv_names_an_altered_image(fresh_venv, outside, platform_bundle):
    bundle, published = platform_bundle
    altered = outside / "altered.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(altered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "imageset/images/c002.png":
                from PIL import Image

                image_path = outside / "c002.png"
                image_path.write_bytes(data)
                Image.open(image_path).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(image_path)
                data = image_path.read_bytes()
            target.writestr(info, data)
    result = _run(fresh_venv, "verify", str(altered), "--json", cwd=outside)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["match"] is False and report["published_sha256"] == published
    assert report["recomputed_sha256"] != published
    assert [d["name"] for d in report["differences"] if d["what"] == "image"] == ["c002"]
