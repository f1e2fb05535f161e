"""A Python package adds a cropper through the `probekit.models` entry point group, without editing probekit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]

# A non-ONNX cropper: a Gaussian bump at a fixed share of the image (here: 3/4 across, 1/4 down).
PLUGIN = '''
import numpy as np
from probekit.models import ModelCard, TargetModel

CARD = ModelCard(name="quarter", summary="looks at (3/4, 1/4) of every image", paper="none", input_size="any",
                 licence="CC0", limits="ignores the content", smoothing="none")


class Quarter(TargetModel):
    base_name = "quarter"
    card = CARD

    def __init__(self, variant):
        if variant is not None:
            raise ValueError(f"unknown variant {variant!r} of quarter; known variants: none")
        self.variant = None

    @property
    def version(self):
        return "quarter-1"

    def _saliency_small(self, image):
        w, h = image.size
        y, x = np.mgrid[0:h, 0:w]
        return np.exp(-(((x - 3 * w / 4) / (w / 8)) ** 2 + ((y - h / 4) / (h / 8)) ** 2)).astype(np.float32)


def make(variant):
    return Quarter(variant)
'''


def distribution(folder: Path, entry_points: str) -> Path:
    """A tiny installed distribution: a module and its dist-info with entry points, on a path of its own."""
    folder.mkdir()
    (folder / "quarter_cropper.py").write_text(PLUGIN)
    info = folder / "quarter_cropper-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quarter-cropper\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[probekit.models]\n{entry_points}\n")
    return folder


def probekit(folder: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)]),
           "PROBEKIT_MODELS_DIR": str(folder / "no-registered-models")}
    return subprocess.run([sys.executable, "-m", "probekit", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_plug_in_cropper_is_listed_and_crops_like_a_built_in(tmp_path):
    folder = distribution(tmp_path / "site", "quarter = quarter_cropper:make")
    rows = {row["name"]: row for row in json.loads(probekit(folder, "models", "--json").stdout)}
    assert rows["quarter"] == {"name": "quarter", "version": "quarter-1", "description": "looks at (3/4, 1/4) of every image",
                               "variants": []}
    assert {"u2netp", "spectral-residual", "fine-grained", "smartcrop"} <= set(rows)
    Image.new("RGB", (400, 200), (90, 90, 90)).save(tmp_path / "grey.png")
    crop = json.loads(probekit(folder, "crop", str(tmp_path / "grey.png"), "--model", "quarter", "--json").stdout)
    assert crop["model"] == "quarter" and crop["salient_point"] == [300, 50]
    refused = probekit(folder, "crop", str(tmp_path / "grey.png"), "--model", "quarter@int8", "--json")
    assert refused.returncode == 2 and "unknown variant 'int8' of quarter" in refused.stderr


def test_a_broken_plug_in_is_listed_unavailable_and_the_others_still_work(tmp_path):
    folder = distribution(tmp_path / "site", "broken = no_such_module:make")
    rows = {row["name"]: row for row in json.loads(probekit(folder, "models", "--json").stdout)}
    assert rows["broken"]["version"] == "unavailable" and "no_such_module" in rows["broken"]["description"]
    assert rows["spectral-residual"]["version"] != "unavailable"
    Image.new("RGB", (40, 20)).save(tmp_path / "black.png")
    refused = probekit(folder, "crop", str(tmp_path / "black.png"), "--model", "broken", "--json")
    assert refused.returncode == 2 and "plug-in model 'broken' (no_such_module:make) cannot be loaded" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_without_plug_ins_only_the_built_ins_are_listed(tmp_path):
    rows = json.loads(probekit(tmp_path, "models", "--json").stdout)
    assert [row["name"] for row in rows] == ["u2netp", "spectral-residual", "fine-grained", "smartcrop"]
