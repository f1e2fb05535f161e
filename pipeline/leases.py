"""Leases: "a live worker is doing this", renewed while it works.

Runs hold a Redis lease (`Lease`); measurements hold theirs in their own row
(grading.services.measurement_claim / measurement_renew, renewed by `RenewedInBackground`), so a
Redis restart during a long measurement cannot hand it to a second worker.

The Redis lease is built on redis-py's `Lock` (its acquire, extend and release are atomic Lua scripts, so a renewal
never revives a lease another worker took over). A worker that dies stops renewing; the lease
expires after `ttl_s` and reconcile hands the work to the next worker.
"""
from __future__ import annotations

import logging
import threading

import redis
from django.conf import settings
from django.db import connection
from redis.exceptions import LockError

logger = logging.getLogger(__name__)

LEASE_TTL_S = 15
KEY_PREFIX = "cropbias:lease"


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def lease_key(kind: str, ident) -> str:
    return f"{KEY_PREFIX}:{kind}:{ident}"


class Lease:
    """`with Lease("run", run_id) as lease:` — only when `lease.acquired`; renewed in the background."""

    def __init__(self, kind: str, ident, *, ttl_s: float = LEASE_TTL_S):
        self.ttl_s = ttl_s
        self._lock = redis_client().lock(lease_key(kind, ident), timeout=ttl_s, blocking=False, thread_local=False)
        self._renewal: RenewedInBackground | None = None
        self.acquired = False

    def __enter__(self) -> "Lease":
        self.acquired = bool(self._lock.acquire(blocking=False))
        if self.acquired:
            self._renewal = RenewedInBackground(self._renew_once, every_s=self.ttl_s / 3, name=f"lease {self._lock.name}")
            self._renewal.__enter__()
        return self

    def _renew_once(self) -> bool:
        """Extend the lease; False when another worker holds it now."""
        try:
            self._lock.reacquire()
        except LockError:
            # Gone (a Redis restart) or taken over: take it again only if nobody else holds it.
            if not self._lock.acquire(blocking=False):
                return False
            logger.warning("lease %s was gone and is taken again", self._lock.name)
        return True

    def __exit__(self, *exc) -> None:
        if self._renewal is not None:
            self._renewal.__exit__(*exc)
        if self.acquired:
            try:
                self._lock.release()
            except (LockError, redis.RedisError):
                pass  # expired or Redis away: it ends by itself


def lease_held(kind: str, ident) -> bool:
    """True while some live worker holds the lease."""
    return bool(redis_client().exists(lease_key(kind, ident)))


class RenewedInBackground:
    """Call `renew()` every `every_s` seconds in a thread while the block runs (a Redis or a DB lease).

    `renew` returns False once the lease is lost; the thread then stops and sets `lost`. An
    exception (the database or Redis briefly away) is logged and the next beat tries again.
    """

    def __init__(self, renew, *, every_s: float, name: str):
        self._renew_once, self.every_s, self.name = renew, every_s, name
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    if not self._renew_once():
                        logger.warning("%s: the lease was lost", self.name)
                        self.lost.set()
                        return
                except Exception:  # noqa: BLE001 - a database or Redis blip: try again at the next beat
                    logger.warning("%s: could not renew the lease; retrying", self.name, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> "RenewedInBackground":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
