"""The shared Gemini quota and circuit breaker on a real Redis, across real OS processes."""
from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
import uuid

import pytest

from governance.embedding.backends.gemini.breaker import BreakerConfig, SharedBreaker
from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.backends.gemini.quota import LocalQuota, Limit, SharedQuota, gemini_guards, quota_owner
from governance.embedding.protocol import EmbeddingError, Task
from governance.ingest.content import Content
from governance.platform.config import Settings
from governance.platform.redis_client import redis_from_url
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.timeout(120)
SECRET = "sk-quota-SECRET-5f3a9c"


@pytest.fixture
def owner() -> str:
    return quota_owner("gemini-embedding-2", f"{SECRET}-{uuid.uuid4().hex}")


class Waits(list):
    """Stands in for `time.sleep`: records the wait each admission was given and does not sleep,
    so a sequence of calls is simulated at the rate the quota grants, not the machine runs."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def slots(waits: list[float], slot_s: float) -> list[int]:
    """Each wait in whole slots. Only Redis TIME passes between the calls, a few ms of it, so with
    slots of a minute the rounding is exact however slow the machine is."""
    return [round(w / slot_s) for w in waits]


def until_refused(quota: SharedQuota, requests: int, tokens: int, at_most: int = 100) -> int:
    """Acquire until the quota refuses (quota_wait); the number of calls it admitted."""
    for admitted in range(at_most):
        try:
            quota.acquire(requests, tokens)
        except EmbeddingError as exc:
            assert str(exc).startswith("quota_wait: ") and exc.transient
            return admitted
    raise AssertionError(f"the quota admitted {at_most} calls and refused none")


def _admit_for(url: str, owner: str, calls: int, ready, out) -> None:
    """One OS process: `calls` acquires of one request each; reports the waits it was given, or
    None for a refused call."""
    waits = Waits()
    quota = SharedQuota(redis_from_url(url), owner, [Limit("requests", 1)], max_wait_s=630, sleep=waits)
    ready.wait()  # every process starts at once, however long its interpreter took to start
    given = []
    for _ in range(calls):
        try:
            quota.acquire(1, 0)
            given.append(waits[-1] if waits else 0.0)
            waits.clear()
        except EmbeddingError:
            given.append(None)
    out.put(given)


def test_three_processes_together_get_the_configured_rate_and_no_more(broker_url, owner):
    # One request a minute, a burst of one, waits of up to 10.5 minutes: the shared budget admits
    # the burst and ten more slots, a minute apart, however the three processes interleave.
    processes, calls = 3, 6
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=_admit_for, args=(broker_url, owner, calls, ready, out)) for _ in range(processes)]
    for w in workers:
        w.start()
    ready.wait(timeout=60)
    results = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    granted = [w for r in results for w in r if w is not None]
    assert len(granted) == 11 and sum(w is None for r in results for w in r) == processes * calls - 11
    assert sorted(slots(granted, 60)) == list(range(11))  # one each, none shared, no gap
    # Every process waited in its own turn: its slots rise in the order it asked for them.
    for r in results:
        mine = slots([w for w in r if w is not None], 60)
        assert mine == sorted(mine)


def test_tokens_per_minute_are_enforced_separately_from_requests(broker_url, owner):
    r = redis_from_url(broker_url)
    # 50 tokens a call against 50 a minute: one call a minute, where the request limit admits a
    # thousand at once.
    waits = Waits()
    tokens_bound = SharedQuota(r, owner, [Limit("requests", 60_000), Limit("tokens", 50)], max_wait_s=630,
                               sleep=waits)
    assert until_refused(tokens_bound, 1, 50) == 11
    assert slots(waits, 60) == list(range(1, 11))

    waits = Waits()
    requests_bound = SharedQuota(r, f"{owner}-b", [Limit("requests", 1), Limit("tokens", 6_000_000)],
                                 max_wait_s=630, sleep=waits)
    assert until_refused(requests_bound, 1, 50) == 11
    assert slots(waits, 60) == list(range(1, 11))


def test_a_wait_past_the_bound_raises_quota_wait_without_taking_a_slot(broker_url, owner):
    client, waits = redis_from_url(broker_url), Waits()
    quota = SharedQuota(client, owner, [Limit("requests", 1)], max_wait_s=90, sleep=waits)  # a slot a minute
    quota.acquire(1, 0)
    quota.acquire(1, 0)  # the next slot, a minute away
    for _ in range(3):
        with pytest.raises(EmbeddingError, match="^quota_wait: ") as raised:
            quota.acquire(1, 0)  # two minutes away: past the bound
        assert raised.value.transient and owner in str(raised.value)
    # A caller that may wait longer gets the slot after the admitted two: the refused calls took none.
    patient = SharedQuota(client, owner, [Limit("requests", 1)], max_wait_s=600, sleep=waits)
    patient.acquire(1, 0)
    assert slots(waits, 60) == [1, 2]


def test_settle_returns_unused_tokens_to_the_shared_budget(broker_url, owner):
    waits = Waits()
    quota = SharedQuota(redis_from_url(broker_url), owner, [Limit("tokens", 100, burst_s=60)], max_wait_s=5,
                        sleep=waits)  # 100 a minute, all of it at once
    quota.acquire(1, 100)
    with pytest.raises(EmbeddingError, match="quota_wait"):
        quota.acquire(1, 90)  # 54 s away
    quota.settle(estimated_tokens=100, actual_tokens=5)
    quota.acquire(1, 90)  # what the first call did not use is available again, at once
    assert waits == []


def test_a_429_pauses_every_process_sharing_the_quota(broker_url, owner):
    with FakeGemini(api_key=SECRET) as fake:
        limits = [Limit("requests", 6_000)]  # 100/s: the bucket alone would never make anyone wait
        waits = Waits()
        first = embedder(fake, quota=SharedQuota(redis_from_url(broker_url), owner, limits, max_wait_s=60))
        second = embedder(fake, quota=SharedQuota(redis_from_url(broker_url), owner, limits, max_wait_s=60,
                                                  sleep=waits))
        fake.fail_next(1, status=429, retry_delay="40s")
        with pytest.raises(EmbeddingError, match="gemini_http_429"):
            first.embed([text("x")], Task.CLUSTERING)
        second.embed([text("y")], Task.CLUSTERING)  # another worker's embedder waits out the hint
    # The hint and one slot of the rate (10 ms), less the few ms of Redis TIME between the calls.
    [wait] = waits
    assert 39.0 < wait <= 40.011


# --- the breaker against the wire-level fake ------------------------------------------------------

def text(value: str) -> Content:
    return Content("text", "text/plain", text=value)


def embedder(fake: FakeGemini, breaker=None, quota=None) -> GeminiEmbedder:
    return GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, timeout_s=5, max_retries=0,
                          breaker=breaker, quota=quota)


def test_a_503_storm_opens_the_shared_circuit_and_the_server_stops_hearing_from_us(broker_url, owner):
    config = BreakerConfig(failures=3, cooldown_s=1.5, probe_timeout_s=5)
    with FakeGemini(api_key=SECRET) as fake:
        # Two workers' embedders, each with its own Redis connection, one shared circuit.
        first, second = (embedder(fake, SharedBreaker(redis_from_url(broker_url), owner, config)) for _ in range(2))
        fake.fail_next(1000, status=503)
        for model in (first, second, first):
            with pytest.raises(EmbeddingError, match="gemini_http_503"):
                model.embed([text("x")], Task.CLUSTERING)
        for model in (second, first, second, first):
            with pytest.raises(EmbeddingError, match="^circuit_open: ") as raised:
                model.embed([text("x")], Task.CLUSTERING)
            assert raised.value.transient
        assert len(fake.embed_calls) == 3  # fail fast: nothing reached the network

        time.sleep(1.6)  # half-open; the server is still down: the one probe fails, it opens again
        with pytest.raises(EmbeddingError, match="gemini_http_503"):
            second.embed([text("probe")], Task.CLUSTERING)
        with pytest.raises(EmbeddingError, match="circuit_open"):
            first.embed([text("x")], Task.CLUSTERING)
        assert len(fake.embed_calls) == 4

        fake.clear_faults()  # the server recovers
        fake.latency_s = 3.0  # a slow probe (within the 5 s client timeout): a second caller arrives while it is out
        time.sleep(1.6)  # a cooldown at least: sleeping longer only makes it more certain
        answered = []
        probe = threading.Thread(target=lambda: answered.append(first.embed([text("probe 2")], Task.CLUSTERING)))
        probe.start()
        deadline = time.monotonic() + 30
        while len(fake.embed_calls) < 5:  # the probe is at the server, so it holds the lease
            assert time.monotonic() < deadline, "the probe never reached the server"
            time.sleep(0.02)
        with pytest.raises(EmbeddingError, match="circuit_open"):
            second.embed([text("while the probe is out")], Task.CLUSTERING)
        probe.join()
        assert [v.shape for v in answered] == [(1, 768)]  # the probe succeeded, which closed the circuit
        fake.latency_s = 0.0
        assert second.embed([text("closed again")], Task.CLUSTERING).shape == (1, 768)
        assert first.embed([text("closed again 2")], Task.CLUSTERING).shape == (1, 768)
        assert len(fake.embed_calls) == 4 + 3


def test_429s_neither_open_nor_reset_the_circuit(broker_url, owner):
    config = BreakerConfig(failures=2, cooldown_s=30)
    with FakeGemini(api_key=SECRET) as fake:
        model = embedder(fake, SharedBreaker(redis_from_url(broker_url), owner, config))
        fake.fail_next(1, status=503)
        fake.fail_next(5, status=429)
        fake.fail_next(1, status=503)
        for _ in range(7):
            with pytest.raises(EmbeddingError, match="gemini_http_(503|429)"):
                model.embed([text("x")], Task.CLUSTERING)
        with pytest.raises(EmbeddingError, match="circuit_open"):
            model.embed([text("x")], Task.CLUSTERING)


def test_the_embedder_paces_itself_by_the_shared_quota_and_corrects_tokens(broker_url, owner):
    client, waits = redis_from_url(broker_url), Waits()
    with FakeGemini(api_key=SECRET) as fake:
        # 10 items a minute, all ten at once: one call of 10 per minute.
        quota = SharedQuota(client, owner, [Limit("requests", 10, burst_s=60)], max_wait_s=330, sleep=waits)
        model = embedder(fake, quota=quota)
        model.max_batch = 10
        model.embed([text(f"item {i}") for i in range(60)], Task.CLUSTERING)  # 6 calls of 10
    assert len(fake.embed_calls) == 6
    # The first call on the full bucket, then one a minute (the calls run in parallel threads).
    assert sorted(slots(waits, 60)) == [1, 2, 3, 4, 5]


def test_the_api_key_never_reaches_redis(broker_url, owner):
    client = redis_from_url(broker_url)
    test_the_embedder_paces_itself_by_the_shared_quota_and_corrects_tokens(broker_url, owner)
    SharedBreaker(client, owner, BreakerConfig(failures=5)).record_failure()
    ours = [k for k in client.scan_iter("governance:gemini:*")]
    assert any(owner.encode() in k for k in ours), "the test wrote nothing it could check"
    for key in client.scan_iter("*"):
        assert SECRET.encode() not in key
        kind = client.type(key)
        values = {b"string": lambda: [client.get(key)], b"hash": lambda: [*client.hgetall(key).items()],
                  b"list": lambda: client.lrange(key, 0, -1), b"set": lambda: client.smembers(key),
                  b"zset": lambda: client.zrange(key, 0, -1)}.get(kind, lambda: [])()
        assert SECRET.encode() not in repr(values).encode()


def test_guards_are_shared_with_a_redis_url_and_per_process_without(broker_url, data_dir, tmp_path, caplog):
    base = dataclasses.replace(Settings.from_env(), gemini_rpm=3000, gemini_tpm=0, gemini_breaker_failures=4,
                               gemini_api_key=SECRET, data_dir=tmp_path)
    quota, breaker = gemini_guards(dataclasses.replace(base, quota_redis_url=broker_url))
    assert isinstance(quota, SharedQuota) and isinstance(breaker, SharedBreaker)
    assert [limit.name for limit in quota.limits] == ["requests"] and breaker.config.failures == 4
    # No URL, but the embedded Redis of this data folder is running (a CLI next to its workers).
    quota, _ = gemini_guards(dataclasses.replace(base, quota_redis_url=None, data_dir=data_dir))
    assert isinstance(quota, SharedQuota)
    quota, _ = gemini_guards(dataclasses.replace(base, quota_redis_url=None))
    assert isinstance(quota, LocalQuota) and "count this process only" in caplog.text
    assert gemini_guards(dataclasses.replace(base, gemini_rpm=0, gemini_breaker_failures=0)) == (None, None)
