#!/bin/sh
# Redis from Debian's redis-server package (compose.local.yaml): compose.yaml's command, with what
# the official image's entry point adds: data in /data, and no protected mode (the stack's
# network is private; no port of Redis is published).
set -eu
chown redis:redis /data
cd /data
exec runuser -u redis -- "$@" --dir /data --protected-mode no
