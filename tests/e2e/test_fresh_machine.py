"""A fresh production machine (issue 12, items 1 and 2): external PostgreSQL and a memory-only Redis
named by URL, a HOME with no data folder yet, so nothing the embedded servers would have created
exists. The worker's beat must create its own folder or refuse to run, report its liveness, and the
reconciler must notice at once when the broker lost its state.
"""
from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.e2e.conftest import Worker, cli, write_jsonl
from tests.e2e.test_faults import assert_invariant, outcome_count, publish, text_events, wait_for_outcomes
from tests.e2e.volatile_redis import VolatileRedis

pytestmark = pytest.mark.e2e


@pytest.fixture
def memory_redis(tmp_path):
    folder = tmp_path / "redis"
    folder.mkdir()
    server = VolatileRedis(folder, tcp=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_env(e2e_env, database_url, memory_redis, tmp_path) -> dict:
    """External servers by URL; HOME does not exist yet, so the data folder is HOME's default."""
    env = dict(e2e_env, DATABASE_URL=database_url, CELERY_BROKER_URL=memory_redis.url,
               HOME=str(tmp_path / "home"))
    for name in ("GOVERNANCE_DATA_DIR", "XDG_DATA_HOME"):
        env.pop(name, None)
    assert not (tmp_path / "home").exists()
    return env


def test_fresh_machine_redis_restart_and_sigkill_every_event_decided_once(fresh_env, memory_redis, database_url,
                                                                          tmp_path):
    # The age rule is out of reach: only the broker-loss check can bring back the lost messages.
    env = dict(fresh_env, GOVERNANCE_RECONCILE_AFTER_S="3600", GOVERNANCE_UPLOAD_BATCH_SIZE="10")
    tenant = f"fresh-{uuid.uuid4().hex[:8]}"
    first = Worker(env, tmp_path / "w1.log")
    second = None
    try:
        ids = publish(env, tmp_path / "a.jsonl", text_events(tenant, "a", 100))
        wait_for_outcomes(database_url, tenant, ids, workers=(first,), at_least=10)
        os.killpg(first.process.pid, signal.SIGKILL)  # its unacked messages wait for the visibility timeout
        first.process.wait(10)
        second = Worker(env, tmp_path / "w2.log")
        ids += publish(env, tmp_path / "b.jsonl", text_events(tenant, "b", 100))
        memory_redis.stop()
        # Accepted while the broker is down: committed, never enqueued.
        stranded = text_events(tenant, "stranded", 50)
        assert cli(env, "publish", str(write_jsonl(tmp_path / "s.jsonl", stranded)), check=False).returncode != 0
        ids += [e["event_id"] for e in stranded]
        assert outcome_count(database_url, tenant, ids) < len(ids)
        memory_redis.start()  # empty: every queued and unacked message is gone
        ids += publish(env, tmp_path / "c.jsonl", text_events(tenant, "c", 50))
        wait_for_outcomes(database_url, tenant, ids, workers=(second,), timeout_s=120)
        assert_invariant(database_url, tenant, ids)
        assert "the broker lost its state" in second.log()
        assert list((tmp_path / "home" / ".local" / "share" / "governance").glob("celerybeat-schedule*"))
    finally:
        for w in (first, second):
            if w is not None:
                w.stop()


def test_a_beat_that_cannot_keep_its_schedule_stops_the_worker_with_the_reason(fresh_env, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    env = dict(fresh_env, GOVERNANCE_DATA_DIR=str(tmp_path / "a-file" / "data"))
    result = cli(env, "worker", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: the beat cannot keep its schedule in {tmp_path / 'a-file' / 'data'}: [Errno 20] Not a directory: "
        f"'{tmp_path / 'a-file' / 'data'}'; not starting a worker without its beat (--no-beat runs one on purpose)")


def test_an_embedded_beat_that_dies_stops_the_worker_non_zero(fresh_env, tmp_path):
    data = tmp_path / "data"
    (data / "celerybeat-schedule.dat").mkdir(parents=True)  # the folder is writable, the schedule is not
    env = dict(fresh_env, GOVERNANCE_DATA_DIR=str(data))
    result = cli(env, "worker", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: the embedded beat stopped (exit code 1)")


def health(env: dict) -> tuple[int, str]:
    result = cli(env, "health", check=False)
    beat = [line for line in result.stdout.splitlines() if line.startswith("beat ")]
    return result.returncode, beat[0] if beat else result.stdout


def wait_for_health(env: dict, code: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        found, line = health(env)
        if found == code:
            return line
        assert time.monotonic() < deadline, f"health never exited {code}; last: {line}"
        time.sleep(0.5)


def test_health_reports_the_beats_liveness_from_its_heartbeat(fresh_env, tmp_path):
    env = dict(fresh_env, GOVERNANCE_DATA_DIR=str(tmp_path / "not-yet" / "data"), GOVERNANCE_BEAT_STALE_S="3")
    assert health(env) == (1, "beat      FAIL: no reconciler pass recorded on this broker (is a beat running?)")
    w = Worker(env, tmp_path / "worker.log")
    try:
        assert wait_for_health(env, 0, 60).startswith("beat      ok (last reconciler pass ")
    finally:
        w.stop()
    assert wait_for_health(env, 1, 60).startswith("beat      FAIL: last reconciler pass ")
