"""The GCRA token bucket: one number per limit (the time at which the bucket is full again, `tat`).

Shared by the Gemini quota (governance/embedding/backends/gemini/quota.py) and the HTTP API's
per-key rate limit (governance/access/rate_limit.py). `reserve` is the pure step; `RESERVE_LUA`
is its twin that runs atomically in Redis on the server's clock, so every process shares one
budget whatever their own clocks say.
"""
from __future__ import annotations

from dataclasses import dataclass

from governance.platform.redis_client import LUA_NOW_MS


@dataclass(frozen=True)
class Limit:
    name: str  # "requests" | "tokens"
    per_minute: int
    burst_s: float = 1.0  # how much of the rate may arrive at once

    @property
    def per_ms(self) -> float:
        return self.per_minute / 60_000

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60 * self.burst_s)


def reserve(tats: list[float], now_ms: float, demands: list[tuple[Limit, float]],
            max_wait_ms: float) -> tuple[float, list[float] | None]:
    """The GCRA step (the Lua script below is its twin): (wait, new tats), or (wait, None) when
    the wait exceeds `max_wait_ms` and nothing is reserved."""
    start, current = now_ms, [max(t, now_ms) for t in tats]
    for tat, (limit, amount) in zip(current, demands):
        start = max(start, tat - max(0.0, limit.capacity - amount) / limit.per_ms)
    wait = start - now_ms
    if wait > max_wait_ms:
        return wait, None
    return wait, [max(tat, start) + amount / limit.per_ms for tat, (limit, amount) in zip(current, demands)]


def settled(tat: float, now_ms: float, limit: Limit, delta: float) -> float:
    """The tat after `delta` more (or, negative, fewer) units than reserved were used."""
    return max(now_ms, max(tat, now_ms) + delta / limit.per_ms)


def paused(tat: float, now_ms: float, limit: Limit, seconds: float) -> float:
    """The tat after an empty bucket for `seconds`: the next caller waits that long at least."""
    return max(tat, now_ms + seconds * 1000 + limit.capacity / limit.per_ms)


RESERVE_LUA = LUA_NOW_MS + """
local start, tats = now, {}
for i, key in ipairs(KEYS) do
  local amount, per_ms, capacity = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  tats[i] = math.max(tonumber(redis.call('GET', key) or '0'), now)
  start = math.max(start, tats[i] - math.max(0, capacity - amount) / per_ms)
end
local wait = start - now
if wait > tonumber(ARGV[1]) then return {0, tostring(wait)} end
for i, key in ipairs(KEYS) do
  local tat = math.max(tats[i], start) + tonumber(ARGV[3*i-1]) / tonumber(ARGV[3*i])
  redis.call('SET', key, string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 60000)
end
return {1, tostring(wait)}
"""
