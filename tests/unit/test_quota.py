"""The pure parts of the shared Gemini quota and breaker: GCRA arithmetic, estimates, transitions."""
from __future__ import annotations

import pytest

from governance.embedding.backends.gemini.breaker import BreakerConfig, LocalBreaker
from governance.embedding.backends.gemini.quota import (
    Limit, LocalQuota, estimate_tokens, quota_owner, reserve, settled,
)
from governance.embedding.protocol import EmbeddingError


class Clock:
    """A fake monotonic clock whose sleeps advance it, recording each sleep."""

    def __init__(self, advance: bool = True):
        self.now, self.sleeps, self.advance = 1000.0, [], advance

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds if self.advance else 0


def local(limits, max_wait_s=60.0, advance=True):
    clock = Clock(advance)  # advance=False: every call arrives at the same instant
    return LocalQuota("m:owner", limits, max_wait_s, sleep=clock.sleep, clock=clock), clock


def test_a_full_bucket_admits_its_burst_then_the_rate():
    quota, clock = local([Limit("requests", per_minute=600, burst_s=1.0)])  # 10/s, capacity 10
    for _ in range(10):
        quota.acquire(1, 0)
    assert clock.sleeps == []
    for _ in range(5):
        quota.acquire(1, 0)
    assert clock.sleeps == [0.1] * 5


def test_callers_are_served_in_arrival_order_from_one_reservation_each():
    limit = Limit("requests", per_minute=60, burst_s=1.0)  # 1/s, capacity 1
    tats, waits = [0.0], []
    for _ in range(4):  # four callers arriving at the same instant
        wait, tats = reserve(tats, 10_000.0, [(limit, 1)], max_wait_ms=10_000)
        waits.append(wait)
    assert waits == [0.0, 1000.0, 2000.0, 3000.0]


def test_a_call_larger_than_the_bucket_waits_for_a_full_bucket_and_leaves_a_debt():
    quota, clock = local([Limit("requests", per_minute=3000, burst_s=1.0)])  # 50/s, capacity 50
    quota.acquire(100, 0)  # a full batch on a full bucket
    quota.acquire(100, 0)  # must wait for the 100 to be paid back, and the bucket to refill
    assert clock.sleeps == [2.0]


def test_a_wait_beyond_the_bound_is_a_transient_error_and_reserves_nothing():
    quota, clock = local([Limit("requests", per_minute=60, burst_s=1.0)], max_wait_s=1.5, advance=False)
    quota.acquire(1, 0)
    quota.acquire(1, 0)  # 1 s wait: within the bound
    with pytest.raises(EmbeddingError, match="^quota_wait: ") as raised:
        quota.acquire(1, 0)  # would be 2 s
    assert raised.value.transient
    clock.now += 2.0
    quota.acquire(1, 0)  # the refused call took no slot: the next one is admitted at once
    assert clock.sleeps == [1.0]


def test_tokens_per_minute_limit_calls_that_requests_per_minute_would_admit():
    limits = [Limit("requests", per_minute=6000), Limit("tokens", per_minute=6000)]  # 100/s each
    quota, clock = local(limits)
    quota.acquire(1, 100)
    quota.acquire(1, 100)  # 1 request is nothing, 100 tokens is a full second of the token rate
    assert clock.sleeps == [1.0]


def test_settle_gives_back_over_estimated_tokens_and_charges_under_estimates():
    limit = Limit("tokens", per_minute=6000)  # 100/s, capacity 100
    assert settled(5_000.0, 1_000.0, limit, delta=-200) == 3_000.0  # 200 tokens = 2 s of the rate
    assert settled(5_000.0, 1_000.0, limit, delta=-1_000) == 1_000.0  # never fuller than full
    assert settled(500.0, 1_000.0, limit, delta=100) == 2_000.0

    quota, clock = local([limit])
    quota.acquire(1, 100)
    quota.settle(estimated_tokens=100, actual_tokens=10)
    quota.acquire(1, 90)
    assert clock.sleeps == []


def test_token_estimates_are_conservative_for_text_and_fixed_per_medium():
    english, japanese = "the quick brown fox " * 10, "日本語のテキスト" * 10
    assert estimate_tokens([english], []) >= len(english) / 4
    assert estimate_tokens([japanese], []) >= len(japanese)
    assert estimate_tokens([], ["image/png", "application/pdf", "audio/wav", "video/mp4"]) == 258 + 1548 + 5760 + 8192


def test_the_quota_owner_names_the_model_and_hides_the_key():
    owner = quota_owner("models/gemini-embedding-2", "sk-SECRET-123")
    assert owner.startswith("gemini-embedding-2:") and "SECRET" not in owner
    assert owner == quota_owner("gemini-embedding-2", "sk-SECRET-123") != quota_owner("gemini-embedding-2", "other")


# --- the breaker ---------------------------------------------------------------------------------

def breaker(**config):
    clock = Clock()
    return LocalBreaker("m:owner", BreakerConfig(**config), clock=clock), clock


def verdict(b: LocalBreaker) -> str:
    """What `before_call` said: `through`, or the reason of the error it raised."""
    try:
        b.before_call()
    except EmbeddingError as exc:
        assert exc.transient
        return str(exc).split(":", 1)[0]
    return "through"


def test_the_breaker_opens_after_consecutive_failures_and_fails_fast():
    b, clock = breaker(failures=3, cooldown_s=10)
    for _ in range(2):
        b.before_call()
        b.record_failure()
    b.record_success()  # a success in between: not consecutive
    assert verdict(b) == "through"
    for _ in range(3):
        b.before_call()
        b.record_failure()
    with pytest.raises(EmbeddingError, match="^circuit_open: ") as raised:
        b.before_call()
    assert raised.value.transient


def test_half_open_lets_one_probe_through_and_its_outcome_decides(caplog):
    b, clock = breaker(failures=1, cooldown_s=10, probe_timeout_s=5)
    b.record_failure()
    assert verdict(b) == "circuit_open"
    clock.now += 10
    with caplog.at_level("WARNING", logger="governance.embedding.backends.gemini.breaker"):
        assert [verdict(b), verdict(b)] == ["through", "circuit_open"]  # the probe; everyone else waits for it
    assert [r.getMessage() for r in caplog.records].count("circuit half-open for m:owner: one probe call goes through") == 1
    b.record_failure()  # the probe failed: another full cooldown
    clock.now += 9
    assert verdict(b) == "circuit_open"
    clock.now += 1
    assert verdict(b) == "through"
    b.record_success()
    assert [verdict(b), verdict(b)] == ["through", "through"]  # closed: everyone goes through


def test_a_probe_that_never_reports_back_frees_its_lease():
    b, clock = breaker(failures=1, cooldown_s=1, probe_timeout_s=5)
    b.record_failure()
    clock.now += 1
    assert verdict(b) == "through"  # a probe whose process then died
    clock.now += 4.9
    assert verdict(b) == "circuit_open"  # its lease still holds
    clock.now += 0.1
    assert verdict(b) == "through"  # a new probe


def test_failures_further_apart_than_the_window_are_not_consecutive():
    b, clock = breaker(failures=2, window_s=60)
    b.record_failure()
    clock.now += 61
    b.record_failure()
    assert verdict(b) == "through"
    b.record_failure()  # within the window of the one before: two in a row
    assert verdict(b) == "circuit_open"


def test_a_pause_holds_every_caller_back_then_the_bucket_refills_from_empty():
    quota, clock = local([Limit("requests", per_minute=600, burst_s=1.0)])  # 10/s, capacity 10
    quota.pause(2.0)  # the server said 429, retry in 2 s
    quota.acquire(1, 0)
    assert clock.sleeps == [2.1]
    quota.pause(120.0)
    with pytest.raises(EmbeddingError, match="quota_wait"):
        quota.acquire(1, 0)  # never longer than MAX_PAUSE_S, but longer than the wait bound
