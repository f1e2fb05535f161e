#!/usr/bin/env bash
# The Debian base image for a deployment without a container registry (make deploy-check).
#
#   bash scripts/deploy_base.sh [TAG]     default TAG: localhost/cropbias-base:bookworm
#
# mmdebstrap builds a Debian bookworm root from Debian's own packages (deb.debian.org, the same
# archive apt uses on the host) and `podman import` turns it into an image: no registry is asked.
# It holds everything the stack runs: Python 3.11 and bubblewrap for the app and its sandbox
# (the same packages as Makefile's DEB_RUNTIME), PostgreSQL, Redis and Prometheus. Rebuilt only
# when this script changes (the image carries the script's hash as a label); FORCE=1 rebuilds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tag="${1:-localhost/cropbias-base:bookworm}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
packages=(
  # the app and its sandbox (Makefile: DEB_RUNTIME)
  python3.11 python3.11-venv bubblewrap fonts-noto-color-emoji fonts-noto-core libraqm0 fontconfig
  ca-certificates
  # health checks: wget, as in the registry images of Prometheus (busybox)
  wget
  # the stack's services
  postgresql-15 postgresql-client-15 redis-server prometheus
  # a zombie-reaping init for every container
  catatonit
)
stamp="$(sha256sum "$here/deploy_base.sh" | cut -c1-16)"
if [ "${FORCE:-0}" != 1 ] && [ "$(podman image inspect --format '{{index .Labels "cropbias.base"}}' "$tag" 2>/dev/null)" = "$stamp" ]; then
  echo "$tag is up to date"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed: bash scripts/install_system.sh mmdebstrap" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
IFS=,
# Documentation, manuals and translations are left out (dpkg path-exclude), and apt's lists removed.
# The cluster the postgresql package creates is dropped: the stack makes its own in its volume
# (deploy/local/postgres.sh), and a leftover one would steer pg_isready to its port.
mmdebstrap --variant=apt --include="${packages[*]}" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='chroot "$1" pg_dropcluster 15 main' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  "$suite" "$work/root.tar" \
  "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"
unset IFS
old="$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL cropbias.base=$stamp" \
  --change 'CMD ["/bin/bash"]' \
  "$work/root.tar" "$tag" >/dev/null
# The image this one replaces is removed, not left untagged.
if [ -n "$old" ] && [ "$old" != "$(podman image inspect --format '{{.Id}}' "$tag")" ]; then
  podman rmi "$old" >/dev/null 2>&1 || true
fi
echo "$tag built ($(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
