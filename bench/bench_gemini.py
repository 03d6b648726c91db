"""Throughput of GeminiEmbedder against the local fake, with simulated network/model latency.

No network and no key needed. `run(quick)` (the suite section) puts a quota in front of the
fake, 3,000 embed requests per minute counted per item as Google counts batch embeds, enforced
by the fake itself (429 RESOURCE_EXHAUSTED with a RetryInfo hint, like the real API), and
compares what the embedder gets through with the most the quota allows in the same time:

* bulk: one `embed()` of N items (what exemplar import and backfills do), the embedder's
  batching and `max_in_flight`, paced by a client-side token bucket on the `before_call` hook;
* bulk, shared Redis bucket: N items split over several OS processes, each its own embedder,
  all paced by the production quota (governance/embedding/backends/gemini/quota.py) in one embedded Redis;
* worker-shaped (informational): 2 processes' worth of callers embedding one item at a time.

    .venv/bin/python -m bench.bench_gemini [--quick]                 # the quota section
    .venv/bin/python -m bench.bench_gemini --sweep --items 1000 --latency 0.3
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

if not __package__:  # run as a script: make `bench` and `governance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_average
from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.protocol import EmbeddingError, Task
from governance.ingest.content import Content
from tests.fakes.fake_gemini import FakeGemini, error_body

LATENCY_S = 0.15
QUOTA_PER_MIN = 3_000
BURST = 100  # one full batch: a smaller bucket could never admit a 100-item call
# The server's bucket is this much deeper than the client's: a request reaches the server a few
# ms after the client's bucket admitted it, and with identical buckets that skew alone draws 429s.
SERVER_SLACK_S = 0.2


class TokenBucket:
    def __init__(self, per_s: float, burst: float):
        self.per_s, self.burst, self.tokens = per_s, burst, burst
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def try_take(self, n: int) -> float:
        """Take n tokens and return 0, or return the seconds until n would be available."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_s)
            self.updated = now
            if self.tokens >= n:
                self.tokens -= n
                return 0.0
            return (n - self.tokens) / self.per_s

    def take(self, n: int) -> None:
        while (wait := self.try_take(n)) > 0:
            time.sleep(wait)


class QuotaFake(FakeGemini):
    """The fake behind a per-item quota: over-quota calls get Google's 429 at once (no latency)."""

    def __init__(self, per_min: float, burst: float, **kwargs):
        super().__init__(**kwargs)
        self.bucket = TokenBucket(per_min / 60.0, burst)
        self.rejected = 0

    def answer(self, method, path, headers, raw):
        try:
            items = len(json.loads(raw).get("requests") or []) or 1
        except (ValueError, AttributeError):
            items = 1
        wait = self.bucket.try_take(items)
        if wait > 0:
            with self._lock:
                self.rejected += 1
            retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait:.3f}s"}]
            return 429, error_body(429, "Resource has been exhausted (e.g. check quota).", retry)
        return super().answer(method, path, headers, raw)


def texts(n: int, tag: str) -> list[Content]:
    return [Content("text", "text/plain", text=f"{tag} user post number {i} about something") for i in range(n)]


def quota_bound(n: int, per_s: float) -> float:
    """The most items/s any client could get for n items: the burst at once, the rest at the
    quota's rate, plus one call's latency at the end."""
    return n / (max(0, n - BURST) / per_s + LATENCY_S)


def bulk(n: int, max_retries: int = 3) -> dict:
    per_s = QUOTA_PER_MIN / 60.0
    with QuotaFake(QUOTA_PER_MIN, BURST + SERVER_SLACK_S * per_s, latency_s=LATENCY_S) as fake:
        # The client bucket matches the server's: it is how a deployment would stay under quota.
        pacer = TokenBucket(per_s, BURST)
        embedder = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, dims=768, max_in_flight=4,
                                  max_retries=max_retries, before_call=pacer.take)
        started, error = time.perf_counter(), None
        try:
            embedder.embed(texts(n, "bulk"), Task.CLASSIFICATION)
        except EmbeddingError as exc:  # gave up after its retries: a result, not a crash
            error = str(exc)[:200]
        seconds = time.perf_counter() - started
        embedder.close()
        done = embedder.usage.items
        return {"items": n, "embedded": done, "seconds": round(seconds, 2),
                "items_per_s": round(done / seconds, 2), "quota_bound_per_s": round(quota_bound(n, per_s), 2),
                "ratio": round(done / seconds / quota_bound(n, per_s), 3), "calls": embedder.usage.calls,
                "retries": embedder.usage.retries, "server_429s": fake.rejected, "error": error}


def _shared_bucket_process(base_url: str, api_key: str, redis_url: str, n: int, tag: str, barrier, out) -> None:
    """One OS process of `bulk_shared`: its own embedder, paced by the quota shared in Redis."""
    import logging

    from governance.embedding.backends.gemini.quota import Limit, SharedQuota, quota_owner
    from governance.platform.redis_client import redis_from_url

    logging.getLogger("governance.embedding.backends.gemini.client").setLevel(logging.ERROR)
    # Bulk work may queue for a while behind the other processes' calls: a generous wait bound.
    quota = SharedQuota(redis_from_url(redis_url), quota_owner("gemini-embedding-2", api_key),
                        [Limit("requests", QUOTA_PER_MIN, burst_s=1.0)], max_wait_s=300)
    embedder = GeminiEmbedder(api_key=api_key, base_url=base_url, dims=768, max_in_flight=4, quota=quota)
    items, error = texts(n, tag), None
    barrier.wait()
    try:
        embedder.embed(items, Task.CLASSIFICATION)
    except EmbeddingError as exc:
        error = str(exc)[:200]
    out.put({"embedded": embedder.usage.items, "calls": embedder.usage.calls, "retries": embedder.usage.retries,
             "finished_at": time.time(), "error": error})
    embedder.close()


def bulk_shared(n: int, processes: int = 3) -> dict:
    import multiprocessing
    import tempfile
    import uuid

    from governance.platform.embedded_servers import ensure_redis, stop_embedded

    per_s = QUOTA_PER_MIN / 60.0
    data_dir = Path(tempfile.mkdtemp(prefix="gov-bench-quota-"))
    ctx = multiprocessing.get_context("spawn")
    try:
        redis_url = ensure_redis(data_dir)
        with QuotaFake(QUOTA_PER_MIN, BURST + SERVER_SLACK_S * per_s, latency_s=LATENCY_S,
                       api_key=f"bench-{uuid.uuid4().hex}") as fake:
            barrier, out = ctx.Barrier(processes + 1), ctx.Queue()
            share = [n // processes + (i < n % processes) for i in range(processes)]
            children = [ctx.Process(target=_shared_bucket_process,
                                    args=(fake.base_url, fake.api_key, redis_url, k, f"p{i}", barrier, out))
                        for i, k in enumerate(share)]
            for child in children:
                child.start()
            barrier.wait(timeout=120)
            started = time.time()
            results = [out.get(timeout=600) for _ in children]
            for child in children:
                child.join(30)
            rejected = fake.rejected
    finally:
        stop_embedded(data_dir)
    seconds = max(r["finished_at"] for r in results) - started
    done = sum(r["embedded"] for r in results)
    bound = quota_bound(n, per_s)
    errors = [r["error"] for r in results if r["error"]]
    return {"items": n, "processes": processes, "embedded": done, "seconds": round(seconds, 2),
            "items_per_s": round(done / seconds, 2), "quota_bound_per_s": round(bound, 2),
            "ratio": round(done / seconds / bound, 3), "calls": sum(r["calls"] for r in results),
            "retries": sum(r["retries"] for r in results), "server_429s": rejected,
            "error": errors[0] if errors else None}


def worker_shaped(seconds: float, processes: int = 2) -> dict:
    """Each prefork child runs one task at a time, and a text task embeds one item per call (twice:
    classification and clustering prefixes), so a worker has `processes` calls in flight."""
    per_s = QUOTA_PER_MIN / 60.0
    with QuotaFake(QUOTA_PER_MIN, BURST, latency_s=LATENCY_S) as fake:
        embedders = [GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, dims=768, max_in_flight=4,
                                    max_retries=3) for _ in range(processes)]
        stop = time.monotonic() + seconds

        def loop(embedder: GeminiEmbedder) -> None:
            i = 0
            while time.monotonic() < stop:
                embedder.embed(texts(1, f"w{id(embedder)}-{i}"), Task.CLASSIFICATION)
                i += 1

        threads = [threading.Thread(target=loop, args=(e,)) for e in embedders]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        done = sum(e.usage.items for e in embedders)
        for e in embedders:
            e.close()
    return {"processes": processes, "seconds": round(elapsed, 2), "items_per_s": round(done / elapsed, 2),
            "quota_per_s": per_s, "ratio": round(done / elapsed / per_s, 3),
            "in_flight_needed": round(per_s * LATENCY_S, 1)}  # Little's law: rate x latency


def run(quick: bool = False) -> dict:
    import logging

    logging.getLogger("governance.embedding.backends.gemini.client").setLevel(logging.ERROR)  # retries are counted below
    n = 600 if quick else 1_500
    return {"latency_s": LATENCY_S, "quota_per_min": QUOTA_PER_MIN, "burst": BURST, "load_average": load_average(),
            "bulk_paced": bulk(n),
            "bulk_shared": bulk_shared(n, processes=3),
            "worker_shaped": worker_shaped(5 if quick else 12), "target_ratio": 0.9}


def sweep(items: int, latency: float, dims: int, in_flight: list[int]) -> None:
    """What batching and max_in_flight buy with no quota, when each call costs `latency`."""
    contents = texts(items, "sweep")
    print(f"{items} text items, {latency:.2f}s per call, dims={dims}")
    print(f"{'in_flight':>9} {'seconds':>8} {'items/s':>9} {'calls':>6} {'peak_conc':>9}")
    for flight in in_flight:
        with FakeGemini(latency_s=latency) as fake:
            embedder = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, dims=dims, max_in_flight=flight)
            started = time.perf_counter()
            embedder.embed(contents, Task.CLASSIFICATION)
            elapsed = time.perf_counter() - started
            embedder.close()
            print(f"{flight:>9} {elapsed:>8.2f} {items / elapsed:>9.0f} {embedder.usage.calls:>6}"
                  f" {fake.max_concurrency:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="the old in-flight sweep, no quota")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per HTTP call")
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    if args.sweep:
        sweep(args.items, args.latency, args.dims, args.in_flight)
    else:
        print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    main()
