#!/usr/bin/env bash
# Debian packages the platform needs; installs only what is missing (root, apt reachable).
set -euo pipefail
need=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "Installing Debian packages: ${need[*]}"
if [ "$(id -u)" != 0 ]; then echo "need root to install ${need[*]}" >&2; exit 1; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
