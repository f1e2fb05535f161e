#!/usr/bin/env bash
# A local Docker-API engine for the `docker` sandbox backend: Podman's compatible service.
#
#   bash scripts/engine.sh [start]   start it (if not running) and print the DOCKER_HOST line
#   bash scripts/engine.sh stop      stop the service this script started
#
# ENGINE_DIR (default var/engine) holds containers.conf, the socket, the pid file and the log.
# The settings are what works on these machines: crun fails in this hybrid cgroup layout
# (runc does not), without default ulimits containers die with "setrlimit: Operation not
# permitted", and without a log size cap a stdout flood once wrote a 2 GB log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${ENGINE_DIR:-$here/../var/engine}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
sock="$dir/podman.sock"
pidfile="$dir/podman.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-start}" in
  stop)
    if running; then
      pid="$(cat "$pidfile")"
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidfile" "$sock"
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

command -v podman >/dev/null || { echo "podman is not installed: bash scripts/install_system.sh podman runc uidmap" >&2; exit 1; }
command -v runc >/dev/null || { echo "runc is not installed: bash scripts/install_system.sh runc" >&2; exit 1; }

cat > "$dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_size_max = 1048576

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
EOF

if ! running; then
  rm -f "$sock"
  # setsid: the service outlives this script and is not hit by the caller's Ctrl-C. It runs in its
  # own directory: the runtime leaves files (an `oom` marker) in its working directory.
  (cd "$dir" && CONTAINERS_CONF="$dir/containers.conf" exec setsid podman system service --time=0 "unix://$sock" \
    >>"$dir/podman.log" 2>&1 < /dev/null) &
  echo $! > "$pidfile"
  for _ in $(seq 1 100); do
    [ -S "$sock" ] && break
    running || { echo "podman system service exited; see $dir/podman.log:" >&2; tail -20 "$dir/podman.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -S "$sock" ] || { echo "podman did not open $sock within 10 s; see $dir/podman.log" >&2; exit 1; }
fi
echo "export DOCKER_HOST=unix://$sock"
