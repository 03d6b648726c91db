"""A circuit breaker for Gemini calls, shared by every worker through Redis.

After `failures` consecutive transient failures (5xx, 408, timeouts, refused connections; a 429
is the quota's business, see governance/embedding/backends/gemini/quota.py, and neither counts nor resets) the circuit
opens for `cooldown_s`: calls fail fast with a transient `circuit_open` error without touching
the network, so the tasks retry later and nothing is dead-lettered. After the cooldown it is
half-open: one caller gets a probe lease (`probe_timeout_s`, so a probe whose process died
does not block the circuit for good) and every other caller still fails fast. A success closes
the circuit; a failed probe opens it for another cooldown. Failures further apart than
`window_s` are not consecutive. State transitions are atomic (one Lua script, Redis server time).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import redis

from governance.embedding.protocol import EmbeddingError
from governance.platform.redis_client import LUA_NOW_MS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    cooldown_s: float = 30.0
    probe_timeout_s: float = 30.0
    window_s: float = 60.0


@dataclass
class BreakerState:
    failures: int = 0
    open_until: float = 0.0  # ms; 0 = closed
    probe_until: float = field(default=0.0)


def check(state: BreakerState, now_ms: float, config: BreakerConfig) -> tuple[str, float]:
    """`closed`, `probe` (this caller is the half-open probe) or `open` with ms left. The Lua
    script below is its twin; this one mutates `state` like the script mutates the hash."""
    if not state.open_until:
        return "closed", 0.0
    if now_ms < state.open_until:
        return "open", state.open_until - now_ms
    if now_ms < state.probe_until:
        return "open", state.probe_until - now_ms
    state.probe_until = now_ms + config.probe_timeout_s * 1000
    return "probe", 0.0


def failed(state: BreakerState, now_ms: float, config: BreakerConfig) -> str:
    """Record a transient failure; returns `opened` when this failure opened the circuit."""
    if state.open_until:
        if now_ms >= state.open_until:  # the half-open probe failed
            state.open_until, state.probe_until = now_ms + config.cooldown_s * 1000, 0.0
            return "opened"
        return "open"  # a call that was already in flight when it opened
    state.failures += 1
    if state.failures >= config.failures:
        state.open_until = now_ms + config.cooldown_s * 1000
        return "opened"
    return "closed"


_BREAKER_LUA = LUA_NOW_MS + """
local key, op = KEYS[1], ARGV[1]
local threshold, cooldown, probe_ttl, window = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local open_until = tonumber(redis.call('HGET', key, 'open_until') or '0')
local keep = math.ceil(cooldown + probe_ttl + window)
if op == 'success' then
  redis.call('DEL', key)
  if open_until > 0 then return {'closed_again', '0'} end
  return {'closed', '0'}
elseif op == 'check' then
  if open_until == 0 then return {'closed', '0'} end
  if now < open_until then return {'open', tostring(open_until - now)} end
  local probe_until = tonumber(redis.call('HGET', key, 'probe_until') or '0')
  if now < probe_until then return {'open', tostring(probe_until - now)} end
  redis.call('HSET', key, 'probe_until', string.format('%.3f', now + probe_ttl))
  redis.call('PEXPIRE', key, keep)
  return {'probe', '0'}
end
if open_until > 0 then
  if now >= open_until then
    redis.call('HSET', key, 'open_until', string.format('%.3f', now + cooldown))
    redis.call('HDEL', key, 'probe_until')
    redis.call('PEXPIRE', key, keep)
    return {'opened', tostring(cooldown)}
  end
  return {'open', tostring(open_until - now)}
end
local failures = redis.call('HINCRBY', key, 'failures', 1)
if failures >= threshold then
  redis.call('HSET', key, 'open_until', string.format('%.3f', now + cooldown))
  redis.call('PEXPIRE', key, keep)
  return {'opened', tostring(cooldown)}
end
redis.call('PEXPIRE', key, math.ceil(window))
return {'closed', '0'}
"""


class Breaker(Protocol):
    def before_call(self) -> None:
        """Return if a call may go out; raise a transient EmbeddingError (`circuit_open`) if not."""

    def record_success(self) -> None: ...

    def record_failure(self) -> None: ...


class _Reporting:
    def __init__(self, owner: str, config: BreakerConfig):
        if config.failures < 1:
            raise ValueError("a breaker needs failures >= 1")
        self.owner, self.config = owner, config

    def _verdict(self, verdict: str, left_ms: float) -> None:
        if verdict == "open":
            raise EmbeddingError(f"circuit_open: Gemini calls for {self.owner} fail fast for another"
                                 f" {left_ms / 1000:.1f}s after repeated failures", transient=True)
        if verdict == "probe":
            log.warning("circuit half-open for %s: one probe call goes through", self.owner)

    def _transition(self, transition: str) -> None:
        if transition == "opened":
            log.error("circuit opened for %s: %d consecutive transient failures; calls fail fast for %gs",
                      self.owner, self.config.failures, self.config.cooldown_s)
        elif transition == "closed_again":
            log.warning("circuit closed for %s: a call succeeded", self.owner)


class SharedBreaker(_Reporting):
    def __init__(self, client, owner: str, config: BreakerConfig = BreakerConfig()):
        super().__init__(owner, config)
        self.key = f"governance:gemini:{owner}:breaker"
        self._script = client.register_script(_BREAKER_LUA)

    def _run(self, op: str) -> tuple[str, float]:
        c = self.config
        verdict, left = self._script(keys=[self.key], args=[op, c.failures, c.cooldown_s * 1000,
                                                             c.probe_timeout_s * 1000, c.window_s * 1000])
        return (verdict.decode() if isinstance(verdict, bytes) else verdict), float(left)

    def before_call(self) -> None:
        try:
            verdict, left = self._run("check")
        except (redis.RedisError, OSError) as exc:
            raise EmbeddingError(f"breaker_unavailable: {type(exc).__name__}", transient=True) from None
        self._verdict(verdict, left)

    def _record(self, op: str) -> None:
        try:
            self._transition(self._run(op)[0])
        except (redis.RedisError, OSError) as exc:  # the call itself is over: never lose its result
            log.warning("could not record a Gemini call outcome in the breaker: %s", type(exc).__name__)

    def record_success(self) -> None:
        self._record("success")

    def record_failure(self) -> None:
        self._record("failure")


class LocalBreaker(_Reporting):
    """The same breaker for this process only: for a CLI with no Redis."""

    def __init__(self, owner: str, config: BreakerConfig = BreakerConfig(),
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(owner, config)
        self._clock, self._state, self._lock = clock, BreakerState(), threading.Lock()
        self._last_failure = float("-inf")

    def before_call(self) -> None:
        with self._lock:
            verdict, left = check(self._state, self._clock() * 1000, self.config)
        self._verdict(verdict, left)

    def record_success(self) -> None:
        with self._lock:
            was_open, self._state = bool(self._state.open_until), BreakerState()
        self._transition("closed_again" if was_open else "closed")

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock() * 1000
            if not self._state.open_until and now - self._last_failure > self.config.window_s * 1000:
                self._state.failures = 0  # the earlier failures were not consecutive
            self._last_failure = now
            transition = failed(self._state, now, self.config)
        self._transition(transition)
