"""Client-side Gemini quota, shared by every process of every worker: requests and tokens per minute.

Google's quotas belong to the Cloud project, so a per-process limit (Celery's `rate_limit`) does
not respect them. The budget lives in Redis, keyed by the quota owner: the model and a hash of
the API key (never the key itself), so every process using the same key shares one budget.

Each limit is a token bucket in GCRA form: Redis keeps one number per limit, the server time at
which the bucket is full again (`tat`). An acquire reserves its slot at once and atomically (one
Lua script, Redis server time, so the workers' clocks do not matter): callers are served in
arrival order and sleep until their own slot. A call whose slot is further away than
`max_wait_s` reserves nothing and fails with a transient `quota_wait` error, so the Celery task
retries later: work waits, nothing is lost. A request larger than the bucket is admitted when
the bucket is full and leaves a debt, so the long-run rate is the limit whatever the batch size.

Tokens are estimated before a call (`estimate_tokens`) and corrected from `usageMetadata`
afterwards (`settle`). A 429 from the server means someone else spends the project's quota too:
`pause` holds every caller of the owner back for the server's RetryInfo delay. Without a Redis
URL, `LocalQuota` gives the same behaviour per process.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

import redis

from governance.embedding.protocol import EmbeddingError
from governance.embedding.window_planning import estimate_tokens as text_tokens
from governance.platform.config import Settings
from governance.platform.redis_client import LUA_NOW_MS
from governance.platform.token_bucket import RESERVE_LUA as _RESERVE_LUA, Limit, paused, reserve, settled  # noqa: F401 - Limit and reserve are re-exported

if TYPE_CHECKING:
    from governance.embedding.backends.gemini.breaker import Breaker

log = logging.getLogger(__name__)

# Text: English runs about 4 characters per token, CJK about 1 character (3 UTF-8 bytes), so
# UTF-8 bytes / 3 over-estimates both. Media: Google's documented rates at the request limits
# (258 tokens per image tile; a 6-page PDF at 258 per page; 180 s of audio at 32 per second;
# video at the 8,192-token request limit). Over-estimates are given back by `settle`.
TEXT_OVERHEAD_TOKENS = 4  # per text part, on top of windowing.estimate_tokens
MEDIA_TOKENS = {"image": 258, "application/pdf": 6 * 258, "audio": 180 * 32, "video": 8192}
UNKNOWN_MEDIA_TOKENS = 8192
MAX_PAUSE_S = 60.0  # a RetryInfo hint longer than this is not trusted to hold every worker back


def estimate_tokens(texts: Iterable[str], media_mime_types: Iterable[str]) -> int:
    tokens = sum(text_tokens(t) + TEXT_OVERHEAD_TOKENS for t in texts)
    for mime in media_mime_types:
        kind = mime if mime in MEDIA_TOKENS else mime.split("/")[0]
        tokens += MEDIA_TOKENS.get(kind, UNKNOWN_MEDIA_TOKENS)
    return tokens


def quota_owner(model: str, api_key: str | None) -> str:
    """Who a quota belongs to, safe to store and log: the model and a one-way hash of the key."""
    digest = hashlib.sha256(b"governance-quota\0" + (api_key or "").encode()).hexdigest()[:16]
    return f"{model.rsplit('/', 1)[-1]}:{digest}"


# ARGV: units (settle: tat += units / rate) or, with ARGV[3], pause ms (tat >= now + pause + full).
_SETTLE_LUA = LUA_NOW_MS + """
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if ARGV[3] then
  tat = math.max(tat, now + tonumber(ARGV[3]) + tonumber(ARGV[1]) / tonumber(ARGV[2]))
else
  tat = math.max(now, tat + tonumber(ARGV[1]) / tonumber(ARGV[2]))
end
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 60000)
return 1
"""


class Quota(Protocol):
    def acquire(self, requests: int, tokens: int) -> None:
        """Block until the call may go out, or raise a transient EmbeddingError (`quota_wait`)."""

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token budget once the real count is known."""

    def pause(self, seconds: float) -> None:
        """Admit nothing for `seconds` (the server answered 429)."""


class _Bucket:
    """What both quotas share: the limits, the wait bound, and turning a verdict into a sleep."""

    def __init__(self, owner: str, limits: list[Limit], max_wait_s: float, sleep: Callable[[float], None]):
        if not limits:
            raise ValueError("a quota needs at least one limit")
        self.owner, self.limits, self.max_wait_s, self._sleep = owner, limits, max_wait_s, sleep
        self._tokens = next((limit for limit in limits if limit.name == "tokens"), None)

    def _demands(self, requests: int, tokens: int) -> list[tuple[Limit, float]]:
        return [(limit, requests if limit.name == "requests" else tokens) for limit in self.limits]

    def _admitted_after(self, wait_ms: float, reserved: bool) -> None:
        if not reserved:
            raise EmbeddingError(f"quota_wait: the Gemini quota of {self.owner} admits this call in"
                                 f" {wait_ms / 1000:.1f}s, more than the {self.max_wait_s:g}s allowed;"
                                 " retrying later", transient=True)
        if wait_ms > 0:
            self._sleep(wait_ms / 1000)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self._tokens is not None and actual_tokens != estimated_tokens:
            self._adjust(self._tokens, actual_tokens - estimated_tokens)

    def pause(self, seconds: float) -> None:
        for limit in self.limits:
            self._hold(limit, min(seconds, MAX_PAUSE_S))

    def _adjust(self, limit: Limit, delta: float) -> None:
        raise NotImplementedError

    def _hold(self, limit: Limit, seconds: float) -> None:
        raise NotImplementedError


class SharedQuota(_Bucket):
    """The budget in Redis, shared by every process that uses the same owner."""

    def __init__(self, client, owner: str, limits: list[Limit], max_wait_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(owner, limits, max_wait_s, sleep)
        self._client = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def key(self, limit: Limit) -> str:
        return f"governance:gemini:{self.owner}:{limit.name}"

    def acquire(self, requests: int, tokens: int) -> None:
        args: list[float] = [self.max_wait_s * 1000]
        for limit, amount in self._demands(requests, tokens):
            args += [amount, limit.per_ms, limit.capacity]
        try:
            admitted, wait = self._reserve(keys=[self.key(limit) for limit in self.limits], args=args)
        except (redis.RedisError, OSError) as exc:
            raise EmbeddingError(f"quota_unavailable: {type(exc).__name__}", transient=True) from None
        self._admitted_after(float(wait), bool(int(admitted)))

    def _adjust(self, limit: Limit, delta: float) -> None:
        self._run_settle(limit, [delta, limit.per_ms])

    def _hold(self, limit: Limit, seconds: float) -> None:
        self._run_settle(limit, [limit.capacity, limit.per_ms, seconds * 1000])

    def _run_settle(self, limit: Limit, args: list[float]) -> None:
        try:
            self._settle(keys=[self.key(limit)], args=args)
        except (redis.RedisError, OSError) as exc:  # the call itself is over: never fail it here
            log.warning("could not update the shared Gemini budget: %s", type(exc).__name__)


class LocalQuota(_Bucket):
    """The same budget for this process only: for a CLI with no Redis."""

    def __init__(self, owner: str, limits: list[Limit], max_wait_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        super().__init__(owner, limits, max_wait_s, sleep)
        self._clock = clock
        self._tats = [0.0] * len(limits)
        self._lock = threading.Lock()

    def acquire(self, requests: int, tokens: int) -> None:
        with self._lock:
            wait, tats = reserve(self._tats, self._clock() * 1000, self._demands(requests, tokens),
                                 self.max_wait_s * 1000)
            if tats is not None:
                self._tats = tats
        self._admitted_after(wait, tats is not None)

    def _adjust(self, limit: Limit, delta: float) -> None:
        i = self.limits.index(limit)
        with self._lock:
            self._tats[i] = settled(self._tats[i], self._clock() * 1000, limit, delta)

    def _hold(self, limit: Limit, seconds: float) -> None:
        i = self.limits.index(limit)
        with self._lock:
            self._tats[i] = paused(self._tats[i], self._clock() * 1000, limit, seconds)



def gemini_guards(settings: Settings, model: str | None = None) -> tuple[Quota | None, Breaker | None]:
    """(quota, breaker) for a Gemini embedder of `model` (default GOVERNANCE_GEMINI_MODEL): in Redis
    when a URL is known or the embedded Redis runs, else per process.

    The quota is None when neither GOVERNANCE_GEMINI_RPM nor GOVERNANCE_GEMINI_TPM is set, the
    breaker when GOVERNANCE_GEMINI_BREAKER_FAILURES is 0.
    """
    from governance.embedding.backends.gemini.breaker import BreakerConfig, LocalBreaker, SharedBreaker

    owner = quota_owner(model or settings.gemini_model, settings.gemini_api_key)
    limits = [Limit(name, per_minute, settings.gemini_quota_burst_s)
              for name, per_minute in (("requests", settings.gemini_rpm), ("tokens", settings.gemini_tpm))
              if per_minute > 0]
    config = BreakerConfig(failures=settings.gemini_breaker_failures, cooldown_s=settings.gemini_breaker_cooldown_s,
                           probe_timeout_s=settings.gemini_timeout_s + 5)
    wait = settings.gemini_quota_max_wait_s
    if settings.quota_redis_url:
        url = settings.quota_redis_url
    else:  # a CLI run on embedded defaults shares the budget with the workers if their Redis is up
        from governance.platform.embedded_servers import running_redis_url

        url = running_redis_url(settings.data_dir)
    if url:
        from governance.platform.redis_client import redis_from_url

        client = redis_from_url(url)
        quota = SharedQuota(client, owner, limits, wait) if limits else None
        breaker = SharedBreaker(client, owner, config) if config.failures else None
    else:
        quota = LocalQuota(owner, limits, wait) if limits else None
        breaker = LocalBreaker(owner, config) if config.failures else None
        if quota is not None or breaker is not None:
            log.warning("no Redis (CELERY_BROKER_URL / GOVERNANCE_QUOTA_REDIS_URL unset, no embedded Redis"
                        " running): the Gemini quota and circuit breaker of %s count this process only", owner)
    return quota, breaker
