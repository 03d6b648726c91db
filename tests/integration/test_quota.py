"""The shared Gemini quota and circuit breaker on a real Redis, across real OS processes."""
from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
import uuid

import pytest

from governance.breaker import BreakerConfig, SharedBreaker
from governance.config import Settings
from governance.embedders.base import Content, EmbeddingError, Task
from governance.embedders.gemini import GeminiEmbedder
from governance.quota import LocalQuota, Limit, SharedQuota, gemini_guards, quota_owner
from governance.redis_client import redis_from_url
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.timeout(120)
SECRET = "sk-quota-SECRET-5f3a9c"


@pytest.fixture
def owner() -> str:
    return quota_owner("gemini-embedding-2", f"{SECRET}-{uuid.uuid4().hex}")


def _admit_for(url: str, owner: str, per_minute: int, seconds: float, ready, out) -> None:
    """One OS process: take one request at a time for `seconds`; report admission times."""
    quota = SharedQuota(redis_from_url(url), owner, [Limit("requests", per_minute, burst_s=1.0)], max_wait_s=30)
    ready.wait()  # every process starts at once, however long its interpreter took to start
    stop_at, admitted = time.time() + seconds, []
    while time.time() < stop_at:
        quota.acquire(1, 0)
        admitted.append(time.time())
    out.put(admitted)


def test_three_processes_together_get_the_configured_rate_and_no_more(broker_url, owner):
    per_minute, seconds, processes = 600, 4.0, 3  # 10 requests/s, a burst of 10
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=_admit_for, args=(broker_url, owner, per_minute, seconds, ready, out))
               for _ in range(processes)]
    for w in workers:
        w.start()
    ready.wait(timeout=60)
    start_at = time.time()
    results = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    times = sorted(t for r in results for t in r if t <= start_at + seconds)
    allowed = 10 + 10 * seconds  # the burst plus the rate
    assert len(times) <= allowed + 1
    assert len(times) >= 0.85 * allowed, "the processes did not get the rate they were allowed"
    assert all(len(r) >= 5 for r in results), "every process gets its share"
    for i, t in enumerate(times):  # no second holds more than the burst plus one second's rate
        assert sum(1 for u in times[i:] if u - t < 1.0) <= 20 + 1


def test_tokens_per_minute_are_enforced_separately_from_requests(broker_url, owner):
    r = redis_from_url(broker_url)
    tokens_bound = SharedQuota(r, owner, [Limit("requests", 60_000), Limit("tokens", 6_000)], max_wait_s=30)
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < 2.0:
        tokens_bound.acquire(1, 50)  # 50 tokens of a 100/s budget
        calls += 1
    assert 4 <= calls <= (100 + 100 * 2) / 50 + 1  # not the thousand requests/s the other limit allows

    requests_bound = SharedQuota(r, f"{owner}-b", [Limit("requests", 600), Limit("tokens", 6_000_000)], max_wait_s=30)
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < 1.0:
        requests_bound.acquire(1, 50)
        calls += 1
    assert 10 <= calls <= 10 + 10 + 1


def test_a_wait_past_the_bound_raises_quota_wait_without_taking_a_slot(broker_url, owner):
    quota = SharedQuota(redis_from_url(broker_url), owner, [Limit("requests", 60)], max_wait_s=0.5)
    quota.acquire(1, 0)
    with pytest.raises(EmbeddingError, match="^quota_wait: ") as raised:
        quota.acquire(1, 0)
    assert raised.value.transient and owner in str(raised.value)
    time.sleep(1.05)
    started = time.monotonic()
    quota.acquire(1, 0)  # the refused call reserved nothing
    assert time.monotonic() - started < 0.2


def test_settle_returns_unused_tokens_to_the_shared_budget(broker_url, owner):
    quota = SharedQuota(redis_from_url(broker_url), owner, [Limit("tokens", 6_000)], max_wait_s=0.5)  # 100/s
    quota.acquire(1, 100)
    with pytest.raises(EmbeddingError, match="quota_wait"):
        quota.acquire(1, 100)
    quota.settle(estimated_tokens=100, actual_tokens=5)
    quota.acquire(1, 90)  # what the first call did not use is available again


def test_a_429_pauses_every_process_sharing_the_quota(broker_url, owner):
    with FakeGemini(api_key=SECRET) as fake:
        limits = [Limit("requests", 6_000)]  # 100/s: the bucket alone would never make anyone wait
        first, second = (embedder(fake, quota=SharedQuota(redis_from_url(broker_url), owner, limits, max_wait_s=10))
                          for _ in range(2))
        fake.fail_next(1, status=429, retry_delay="1.5s")
        with pytest.raises(EmbeddingError, match="gemini_http_429"):
            first.embed([text("x")], Task.CLUSTERING)
        started = time.monotonic()
        second.embed([text("y")], Task.CLUSTERING)  # another worker's embedder waits out the hint
        assert 1.3 <= time.monotonic() - started <= 3.0


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
        fake.latency_s = 1.0  # a slow probe, so that a second caller arrives while it is out
        time.sleep(1.6)
        probe = threading.Thread(target=first.embed, args=([text("probe 2")], Task.CLUSTERING))
        probe.start()
        time.sleep(0.4)
        with pytest.raises(EmbeddingError, match="circuit_open"):
            second.embed([text("while the probe is out")], Task.CLUSTERING)
        probe.join()
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
    client = redis_from_url(broker_url)
    with FakeGemini(api_key=SECRET) as fake:
        model = embedder(fake, quota=SharedQuota(client, owner, [Limit("requests", 1_200)], max_wait_s=30))  # 20/s
        model.max_batch = 10
        started = time.monotonic()
        model.embed([text(f"item {i}") for i in range(60)], Task.CLUSTERING)  # 6 calls of 10
        elapsed = time.monotonic() - started
    # A burst of 20, then 40 more at 20/s: the last call goes out at about 1.5 s.
    assert len(fake.embed_calls) == 6 and 1.3 <= elapsed <= 4.0


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
