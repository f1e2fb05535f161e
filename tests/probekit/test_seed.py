"""probekit.seed(): the run's PROBE_SEED, 0 when unset; the reference probe draws from it."""
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import probekit

ROOT = Path(__file__).resolve().parents[2]


def test_seed_reads_the_integer_and_defaults_to_zero(monkeypatch):
    monkeypatch.delenv("PROBE_SEED", raising=False)
    assert probekit.seed() == 0
    monkeypatch.setenv("PROBE_SEED", "")
    assert probekit.seed() == 0
    monkeypatch.setenv("PROBE_SEED", " 123456789012 ")
    assert probekit.seed() == 123456789012
    monkeypatch.setenv("PROBE_SEED", "abc")
    with pytest.raises(ValueError, match="PROBE_SEED must be an integer"):
        probekit.seed()


def _images_digest(tmp_path: Path, seed: str | None) -> str:
    out = tmp_path / f"out-{seed}"
    env = {k: v for k, v in os.environ.items() if k != "PROBE_SEED"}
    env.update(PROBE_OUTPUT_DIR=str(out), **({"PROBE_SEED": seed} if seed is not None else {}))
    subprocess.run([sys.executable, str(ROOT / "examples/probes/contrast_composites.py")], env=env, check=True,
                   cwd=tmp_path)
    digest = hashlib.sha256()
    for path in sorted((out / "images").iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_reference_probe_draws_new_subjects_on_a_new_seed(tmp_path):
    unset, again, fresh = _images_digest(tmp_path, None), _images_digest(tmp_path, "0"), _images_digest(tmp_path, "91")
    assert unset == again  # unchanged when run by hand
    assert fresh != unset
