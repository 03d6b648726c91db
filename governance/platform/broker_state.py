"""What the reconciler keeps in the broker's Redis: a marker whose absence means the broker lost its
state, and a heartbeat of its last pass (the beat's liveness, for `governance health` and metrics).

The marker lives beside the queues, so it survives exactly when they do: a memory-only Redis that
restarted, a failover to an empty replica or a FLUSHALL lose both. Redis' `run_id` would also change
on a restart that kept the queues (AOF), and every pending event would be re-enqueued for nothing.
Times are Redis' own clock (`TIME`), so the hosts that write and read the heartbeat need not agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

MARKER_KEY = "governance:broker-marker"
HEARTBEAT_KEY = "governance:reconciler-heartbeat"


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def claim_lost_state(client: redis.Redis) -> bool:
    """True when the marker was missing, i.e. the queues may have lost messages. SET NX makes this
    true for one caller only, so of several reconcilers (one beat per worker) one re-enqueues."""
    return bool(client.set(MARKER_KEY, repr(_server_time(client)), nx=True))


def release_claim(client: redis.Redis) -> None:
    """Undo a claim whose re-enqueue failed, so the next pass tries again."""
    client.delete(MARKER_KEY)


def record_pass(client: redis.Redis) -> None:
    client.set(HEARTBEAT_KEY, repr(_server_time(client)))


def last_pass_age(client: redis.Redis) -> float | None:
    """Seconds since the reconciler's last pass; None when this broker has never seen one."""
    raw = client.get(HEARTBEAT_KEY)
    return None if raw is None else max(0.0, _server_time(client) - float(raw))


@dataclass(frozen=True)
class Liveness:
    alive: bool
    age_s: float | None
    detail: str


def reconciler_liveness(client: redis.Redis, stale_after_s: float) -> Liveness:
    """Is a beat scheduling the reconciler, and a worker running it? Redis errors propagate."""
    age = last_pass_age(client)
    if age is None:
        return Liveness(False, None, "no reconciler pass recorded on this broker (is a beat running?)")
    if age > stale_after_s:
        return Liveness(False, age, f"last reconciler pass {age:.0f} s ago (stale after {stale_after_s:g} s)")
    return Liveness(True, age, f"last reconciler pass {age:.1f} s ago")
