"""Bad input straight on the broker, and secrets in logs and stored text, against a real worker.

Also the structured-log formatter itself (no processes needed for those).
"""
from __future__ import annotations

import io
import json
import logging
import pickle
import time
import uuid

import pytest
from sqlalchemy import text

from governance.platform import logging_setup
from tests.e2e.conftest import cli, write_jsonl
from tests.e2e.test_faults import (
    CountingGemini, Receiver, assert_invariant, db_session, gemini_env, send_task, start_worker, text_events,
    wait_for_outcomes,
)

UPLOADS_QUEUE = "governance.uploads"


class CreatesAFileWhenUnpickled:
    """If a worker ever unpickled this, the file would exist afterwards."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def publish_raw(broker_url: str, body: bytes, content_type: str, task: str = "governance.process_upload") -> str:
    """A protocol-2 task message written with kombu directly, as an attacker on the broker would."""
    from kombu import Connection

    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "parent_id": None,
               "group": None, "retries": 0, "eta": None, "expires": None, "argsrepr": "()", "kwargsrepr": "{}",
               "origin": "attacker"}
    with Connection(broker_url) as connection:
        connection.Producer().publish(body, exchange="", routing_key=UPLOADS_QUEUE, content_type=content_type,
                                      content_encoding="binary", headers=headers, delivery_mode=2)
    return task_id


def queued_messages(broker_url: str) -> list[str]:
    """Raw bodies still waiting in the uploads queue or held unacknowledged."""
    import redis

    socket_path = broker_url.split("://", 1)[1]
    r = redis.Redis(unix_socket_path=socket_path)
    return ([m.decode(errors="replace") for m in r.lrange(UPLOADS_QUEUE, 0, -1)]
            + [m.decode(errors="replace") for m in r.hvals("unacked")])


def decoded_queued_messages(broker_url: str) -> list[str]:
    """Each message waiting in the uploads queue as kombu stored it (headers, properties), with its
    base64 body decoded: what a reader of the broker sees of it."""
    import base64

    texts = []
    for raw in queued_messages(broker_url):
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body).decode(errors="replace")
        texts.append(json.dumps({**envelope, "body": body}))
    return texts


@pytest.mark.e2e
def test_pickle_and_malformed_messages_on_the_broker_are_refused_and_the_worker_stays_up(
        e2e_env, database_url, broker_url, worker, tmp_path):
    marker = tmp_path / "unpickled"
    w = worker()
    payload = pickle.dumps(((CreatesAFileWhenUnpickled(str(marker)),), {}, {}))
    pickle_id = publish_raw(broker_url, payload, "application/x-python-serialize")
    yaml_id = publish_raw(broker_url, b"!!python/object/apply:os.system ['true']", "application/x-yaml")
    # JSON, but nothing the task can use: wrong types, missing arguments, a task nobody registered.
    tenant = f"sec-{uuid.uuid4().hex[:8]}"
    send_task(broker_url, {"not": "a tenant"}, ["nor", "an", "event id"])
    send_task(broker_url, tenant, "no-such-event")
    publish_raw(broker_url, json.dumps([[], {}, {}]).encode(), "application/json")  # no arguments at all
    publish_raw(broker_url, json.dumps([["x"], {}, {}]).encode(), "application/json", task="os.system")

    # A normal event after all that is still decided by the same worker.
    events = text_events(tenant, "after-attack", 2)
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "e.jsonl", events)))
    ids = [e["event_id"] for e in events]
    wait_for_outcomes(database_url, tenant, ids, workers=(w,))
    assert_invariant(database_url, tenant, ids)
    deadline = time.monotonic() + 10
    while any(pickle_id in m or yaml_id in m for m in queued_messages(broker_url)):
        assert time.monotonic() < deadline, "the refused messages are stuck in the queue"
        time.sleep(0.2)
    log = w.log()
    assert not marker.exists(), "the worker unpickled a message"
    assert log.count("ContentDisallowed") >= 2 or log.count("Refusing to deserialize") >= 2, log[-3000:]
    assert "unregistered task" in log.lower()
    assert w.alive()


SECRET_KEY = "AIzaSy-LEAKCHECK-" + uuid.uuid4().hex
SECRET_HOOK = "whsec-LEAKCHECK-" + uuid.uuid4().hex


@pytest.mark.e2e
def test_no_secret_reaches_the_logs_the_database_or_the_broker(e2e_env, database_url, broker_url, tmp_path):
    receiver = Receiver("a-different-secret")  # refuses every signature: deliveries keep failing
    with CountingGemini(api_key=SECRET_KEY) as fake:
        # A misbehaving upstream that echoes the key back in its errors, transient and permanent.
        fake.fail_next(2, status=503, message=f"backend unavailable for key {SECRET_KEY}")
        fake.fail_next(1, status=429, message=f"quota exhausted for {SECRET_KEY}", retry_delay="1s")
        fake.fail_next(1, status=400, message=f"request rejected, key={SECRET_KEY}")
        # One event per batch, so that the permanent 400 is one event's own answer: its reject reason.
        env = gemini_env(e2e_env, fake, GOVERNANCE_WEBHOOK_URL=receiver.url, GOVERNANCE_WEBHOOK_SECRET=SECRET_HOOK,
                         GOVERNANCE_HTTP_TIMEOUT_S="1", GOVERNANCE_GEMINI_TIMEOUT_S="2", GOVERNANCE_UPLOAD_BATCH_SIZE="1")
        tenant = f"leak-{uuid.uuid4().hex[:8]}"
        events = text_events(tenant, "leak", 3)
        ids = [e["event_id"] for e in events]
        # Published with no worker running, so the messages are read while they wait on the broker.
        cli(env, "publish", str(write_jsonl(tmp_path / "e.jsonl", events)))
        queued = [m for m in decoded_queued_messages(broker_url) if tenant in m]
        assert sorted(i for i in ids if any(i in m for m in queued)) == sorted(ids)  # one message per event
        assert len(queued) == len(ids)
        assert not any(SECRET_KEY in m or SECRET_HOOK in m for m in queued)
        w = start_worker(env, tmp_path / "worker.log", concurrency=2)
        try:
            wait_for_outcomes(database_url, tenant, ids, workers=(w,), timeout_s=90)
            time.sleep(6)  # at least one beat-driven relay run against the refusing receiver
        finally:
            w.stop()
            receiver.server.shutdown()
    assert_invariant(database_url, tenant, ids)
    assert any(mode and ok is False for _, mode, ok in receiver.posts), "the webhook path was never exercised"
    log = w.log()
    assert "gemini_http_503" in log and "gemini_http_429" in log  # the failing paths were logged ...
    for secret in (SECRET_KEY, SECRET_HOOK):
        assert secret not in log  # ... without the secrets
    with db_session(database_url) as s:
        stored = " ".join(str(v) for v in s.execute(text("""
            SELECT d.reason FROM decisions d WHERE d.tenant = :t
            UNION ALL SELECT coalesce(o.last_error, '') || o.payload::text FROM outbox o WHERE o.tenant = :t
            UNION ALL SELECT reason FROM dead_letters WHERE tenant = :t
            UNION ALL SELECT payload::text FROM events WHERE tenant = :t
        """), {"t": tenant}).scalars())
    assert "gemini_http_400" in stored and "***" in stored  # the permanent error became a reject reason
    assert SECRET_KEY not in stored and SECRET_HOOK not in stored


# --- the log formatter ---------------------------------------------------------------------------

def _capture(fmt: str = "json", secrets=()):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = logging_setup.JsonFormatter if fmt == "json" else logging_setup.TextFormatter
    handler.setFormatter(formatter(secrets))
    handler.addFilter(logging_setup.ContextFilter())
    logger = logging.getLogger(f"test-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_the_task_context_and_explicit_extras():
    logger, stream = _capture()
    logging_setup.bind(task_id="t-1", task_name="governance.process_upload", tenant="acme", event_id="e-1")
    try:
        logger.warning("retrying %s", "soon", extra={"attempt": 2})
        logger.info("explicit ids win", extra={"tenant": "other"})
    finally:
        logging_setup.clear()
    logger.info("after the task")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "retrying soon" and first["level"] == "WARNING" and first["attempt"] == 2
    assert (first["tenant"], first["event_id"], first["task_id"]) == ("acme", "e-1", "t-1")
    assert second["tenant"] == "other"
    assert "tenant" not in third and "task_id" not in third


def test_known_secrets_are_masked_in_messages_extras_and_tracebacks():
    secret = "sk-" + uuid.uuid4().hex
    for fmt in ("json", "text"):
        logger, stream = _capture(fmt, secrets=[secret, None, "abc"])
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            logger.exception("failed with %s", secret, extra={"url": f"https://x/?key={secret}"})
        out = stream.getvalue()
        assert secret not in out and "***" in out
