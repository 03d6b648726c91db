"""Two real worker processes share one Gemini quota in Redis; a burst of 429s only delays the work."""
import uuid

import pytest

from tests.e2e.test_faults import assert_invariant, event_rows, publish, start_worker, text_events, wait_for_outcomes
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e
RPM = 120  # 2 requests/s, a burst of 2 (GOVERNANCE_GEMINI_QUOTA_BURST_S=1)


def server_rate_excess(times: list[float], window_s: float, per_s: float, burst: float) -> float:
    """How far the busiest window of `window_s` went beyond what the bucket allows in it."""
    times = sorted(times)
    worst = 0.0
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u - t < window_s)
        worst = max(worst, in_window - (burst + per_s * window_s))
    return worst


def test_a_burst_of_429s_with_two_workers_sharing_the_bucket_delays_but_loses_nothing(
        e2e_env, database_url, tmp_path):
    key = f"quota-e2e-{uuid.uuid4().hex[:8]}"  # a fresh key: a fresh shared bucket
    with FakeGemini(api_key=key) as fake:
        env = dict(e2e_env, GOVERNANCE_EMBEDDER="gemini", GEMINI_API_KEY=key, GOOGLE_GEMINI_BASE_URL=fake.base_url,
                   GOVERNANCE_GEMINI_MAX_RETRIES="1", GOVERNANCE_GEMINI_RPM=str(RPM),
                   GOVERNANCE_UPLOAD_BATCH_SIZE="2")  # 8 messages, so both workers draw on the bucket
        workers = (start_worker(env, tmp_path / "a.log", concurrency=2),
                   start_worker(env, tmp_path / "b.log", concurrency=2, beat=False))
        try:
            tenant = f"quota-{uuid.uuid4().hex[:8]}"
            fake.fail_next(8, status=429, retry_delay="1s")
            ids = publish(env, tmp_path / "e.jsonl", text_events(tenant, "q", 16))
            wait_for_outcomes(database_url, tenant, ids, workers=workers, timeout_s=240)
        finally:
            for w in workers:
                w.stop()
        assert_invariant(database_url, tenant, ids)
        rows = event_rows(database_url, tenant)
        assert all(rows[i].status == "decided" for i in ids)
        logs = "".join(w.log() for w in workers)
        calls = fake.embed_calls
        # 16 texts x (classification + clustering), plus at least one item in each call that drew a 429.
        assert sum(len(c.body["requests"]) for c in calls) >= 32 + 8
        assert all(any(i in w.log() for i in ids) for w in workers), "both workers took work"
        assert "gemini_http_429" in logs
        items = [c.received_at for c in calls for _ in c.body["requests"]]
        # The server saw no more than the bucket admits, over any 5 s; one request of slack for
        # the few ms between admission in Redis and arrival at the server.
        assert server_rate_excess(items, 5.0, RPM / 60, burst=2) <= 1, sorted(items)
        assert key not in logs
