"""Per-key request rate limit: the GCRA token bucket of governance/platform/token_bucket.py, in
Redis (shared by every API process), keyed by the key's public id, never its secret."""
from __future__ import annotations

import logging

import redis

from governance.platform.token_bucket import RESERVE_LUA, Limit

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, client, per_minute: int, burst_s: float):
        self._limit = Limit("requests", per_minute, burst_s)
        self._reserve = client.register_script(RESERVE_LUA)

    def admit(self, key_id: str) -> float | None:
        """None when the request may go ahead (and it is counted), else the seconds to wait.

        A Redis outage admits the request: the limit protects the service, and refusing every
        request because the limiter is away would be the outage it guards against."""
        limit = self._limit
        try:
            admitted, wait_ms = self._reserve(keys=[f"governance:api:{key_id}:requests"],
                                              args=[0, 1, limit.per_ms, limit.capacity])
        except (redis.RedisError, OSError) as exc:
            log.warning("rate limiter unavailable, admitting: %s", type(exc).__name__)
            return None
        return None if int(admitted) else float(wait_ms) / 1000
