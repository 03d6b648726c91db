"""The outbox relay against a real local webhook receiver and a real PostgreSQL."""
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from governance.delivery import outbox_relay, webhooks
from governance.storage import repository
from governance.storage.tables import OutboxMessage

SECRET = "whsec-test"


class Receiver:
    """A webhook receiver that verifies signatures and can be switched down."""

    def __init__(self):
        self.up = True
        self.received: list[tuple[str, dict]] = []
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.up:
                    self.send_response(503)
                elif not webhooks.verify(SECRET, body, self.headers.get(webhooks.SIGNATURE_HEADER, "")):
                    receiver.rejected += 1
                    self.send_response(400)
                else:
                    receiver.received.append((self.headers[webhooks.MESSAGE_ID_HEADER], json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def webhook_sink(url, secret=SECRET):
    return lambda m: webhooks.post(url, secret, m.message_id, m.payload, 2.0)


def make_due(db, tenant):
    # The database's clock, as the relay's claim reads it: now() is the test transaction's start, so a
    # time from this process's clock would be in the future of it once the test has run a second.
    db.execute(update(OutboxMessage).where(OutboxMessage.tenant == tenant)
               .values(available_at=func.now() - timedelta(seconds=1)))


def test_receiver_down_then_up_gets_every_message_once(db, tenant, receiver):
    for i in range(5):
        repository.enqueue_outbox(db, [dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:e{i}",
                                  payload={"event_id": f"e{i}"})])
    receiver.up = False
    for _ in range(3):  # the receiver stays down across several relay runs
        make_due(db, tenant)
        result = outbox_relay.relay(db, [webhook_sink(receiver.url)])
        assert result.delivered == 0
    pending = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant)).all()
    assert all(m.attempts == 3 and m.delivered_at is None and "503" in m.last_error for m in pending)

    receiver.up = True
    make_due(db, tenant)
    assert outbox_relay.relay(db, [webhook_sink(receiver.url)]).delivered == 5
    make_due(db, tenant)
    assert outbox_relay.relay(db, [webhook_sink(receiver.url)]).delivered == 0  # never sent twice
    ids = [message_id for message_id, _ in receiver.received]
    assert sorted(ids) == sorted(f"decision:{tenant}:e{i}" for i in range(5))


def test_a_failed_delivery_waits_for_its_backoff(db, tenant, receiver):
    repository.enqueue_outbox(db, [dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:x", payload={})])
    receiver.up = False
    before = datetime.now(timezone.utc)
    assert outbox_relay.relay(db, [webhook_sink(receiver.url)]).failed == 1
    after = datetime.now(timezone.utc)
    receiver.up = True
    [message] = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant)).all()
    # First retry: equal jitter over a step of 2 x base, so between one and two base steps after
    # the attempt, whenever within [before, after] the attempt ran, however slow the machine.
    step = outbox_relay.BACKOFF_BASE_S * 2
    assert before + timedelta(seconds=step / 2) <= message.available_at <= after + timedelta(seconds=step)
    assert outbox_relay.relay(db, [webhook_sink(receiver.url)]).delivered == 0  # not due yet
    make_due(db, tenant)
    assert outbox_relay.relay(db, [webhook_sink(receiver.url)]).delivered == 1


def test_wrong_secret_is_refused_by_the_receiver(db, tenant, receiver):
    repository.enqueue_outbox(db, [dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:y", payload={})])
    result = outbox_relay.relay(db, [webhook_sink(receiver.url, secret="forged")])
    assert result.failed == 1 and receiver.rejected == 1 and receiver.received == []


def test_concurrent_relays_never_claim_the_same_message(database_url, tenant):
    from governance.storage.db import session_factory, transaction

    factory = session_factory(database_url)
    with transaction(factory) as session:
        for i in range(40):
            repository.enqueue_outbox(session, [dict(tenant=tenant, kind="decision", message_id=f"m{i}", payload={})])
    seen, lock, barrier = [], threading.Lock(), threading.Barrier(3)

    def sink(message):
        if message.tenant == tenant:
            with lock:
                seen.append(message.message_id)

    def run():
        barrier.wait()
        while True:
            with transaction(factory) as session:
                if outbox_relay.relay(session, [sink], limit=5).delivered == 0:
                    return

    threads = [threading.Thread(target=run) for _ in range(3)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert sorted(seen) == sorted(f"m{i}" for i in range(40))


# --- the delivery log (outbox_deliveries) -------------------------------------------------------------

def test_decisions_survive_minutes_of_receiver_downtime_and_arrive_once_each(db, tenant, receiver, settings):
    from governance.embedding.backends.hashing import HashingEmbedder
    from governance.moderation.pipeline import Context
    from governance.ingest.inbox import accept_events
    from governance.moderation.batch_pipeline import process_upload

    ctx = Context(settings=settings, embedder=HashingEmbedder(768))
    texts = ["Knead the dough", "Bond yields fell", "A photo of a cat", "Quarterly earnings"]
    events = accept_events(db, list(enumerate({"asset_id": f"u{i}", "tenant": tenant, "text": t}
                                              for i, t in enumerate(texts)))).new
    decided = [process_upload(db, ctx, tenant, event_id) for _, event_id in events]
    expected = sorted(f"decision:{tenant}:{d['event_id']}" for d in decided)

    receiver.up = False
    for _ in range(6):  # each run stands for a backoff step elapsing while the receiver is down
        make_due(db, tenant)
        outbox_relay.relay(db, [webhook_sink(receiver.url)], limit=10_000)
    receiver.up = True
    make_due(db, tenant)
    outbox_relay.relay(db, [webhook_sink(receiver.url)], limit=10_000)
    make_due(db, tenant)
    outbox_relay.relay(db, [webhook_sink(receiver.url)], limit=10_000)  # nothing is sent twice

    mine = sorted(message_id for message_id, _ in receiver.received if message_id.startswith(f"decision:{tenant}:"))
    assert mine == expected
    assert {body["event_id"] for message_id, body in receiver.received if message_id in expected} == \
        {d["event_id"] for d in decided}
    log = repository.deliveries(db, tenant)
    for message_id in expected:
        attempts = [(d.status, d.sink) for d in log if d.message_id == message_id]
        assert attempts == [("failed", "<lambda>")] * 6 + [("delivered", "<lambda>")]
    assert all("503" in d.error for d in log if d.status == "failed")


def test_a_sink_that_took_a_message_does_not_get_it_again_when_another_sink_fails(db, tenant):
    repository.enqueue_outbox(db, [dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:z", payload={})])
    got = {"queue": [], "webhook": []}
    failures = {"left": 2}

    def queue(message):
        if message.tenant == tenant:
            got["queue"].append(message.message_id)

    def webhook(message):
        if message.tenant == tenant:
            if failures["left"]:
                failures["left"] -= 1
                raise webhooks.WebhookError("status 502")
            got["webhook"].append(message.message_id)

    for _ in range(3):
        make_due(db, tenant)
        outbox_relay.relay(db, [queue, webhook], limit=10_000)
    assert got == {"queue": [f"decision:{tenant}:z"], "webhook": [f"decision:{tenant}:z"]}
    log = [(d.sink, d.status) for d in repository.deliveries(db, tenant, f"decision:{tenant}:z")]
    assert log == [("queue", "delivered"), ("webhook", "failed"), ("webhook", "failed"), ("webhook", "delivered")]
    [message] = db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant)).all()
    assert message.delivered_at is not None and message.attempts == 3
