"""The worker's warm-up (probekit.measurement.warm_up, run before a worker forks its task processes)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from probekit.measurement import warm_up


def test_warm_up_loads_what_a_first_measurement_needs_and_leaves_nothing_behind():
    before = set(Path(tempfile.gettempdir()).glob("probekit-warm-up-*"))
    warm_up()
    assert "matplotlib.backends.backend_agg" in sys.modules  # the plots' renderer and its fonts are loaded
    assert set(Path(tempfile.gettempdir()).glob("probekit-warm-up-*")) == before
