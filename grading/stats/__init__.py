"""The statistics live in probekit.stats, so anyone can re-check a finding with the same code."""
from probekit.stats import *  # noqa: F403 - the whole public surface, named by probekit.stats.__all__
from probekit.stats import __all__  # noqa: F401
