"""The reconciler's two rules against real PostgreSQL and Redis: the age rule, and everything at
once after the broker lost its state (governance/platform/broker_state.py), with the beat's heartbeat."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from governance.ingest import inbox
from governance.moderation.pipeline import Context
from governance.platform import broker_state
from governance.platform.redis_client import redis_from_url
from governance.storage import repository
from governance.storage.tables import Event


@pytest.fixture
def client(broker_url):
    # A database of its own on the session's Redis: the e2e workers' marker is in database 0.
    r = redis_from_url(f"{broker_url}?virtual_host=14")
    r.flushdb()
    yield r
    r.flushdb()


def _mine(keys, tenant):
    return [event_id for t, event_id in keys if t == tenant]


def test_broker_state_loss_re_enqueues_every_pending_event_at_once_and_the_age_rule_stays(db, tenant, settings):
    ctx = Context(settings=settings, embedder=None)
    repository.enter_all_tenants(db)
    repository.record_events(db, [dict(tenant=tenant, event_id=f"e{i}", asset_id=f"a{i}", payload={},
                                       status="decided" if i == 2 else "accepted") for i in range(4)])
    long_ago = datetime.now(timezone.utc) - timedelta(seconds=settings.reconcile_after_s + 60)
    db.execute(update(Event).where(Event.tenant == tenant, Event.event_id == "e3").values(accepted_at=long_ago))

    assert _mine(inbox.stale_events(db, ctx.settings), tenant) == ["e3"]  # only the old one
    assert _mine(inbox.stale_events(db, ctx.settings), tenant) == []  # touched: not again so soon
    assert _mine(inbox.stale_events(db, ctx.settings, broker_lost_state=True), tenant) == ["e3", "e0", "e1"]
    assert _mine(inbox.stale_events(db, ctx.settings), tenant) == []


def test_the_marker_is_claimed_once_per_state_loss(client):
    assert broker_state.claim_lost_state(client) is True  # a broker that never had the marker
    assert broker_state.claim_lost_state(client) is False
    assert broker_state.claim_lost_state(client) is False
    client.flushdb()  # what a memory-only Redis restart does
    assert broker_state.claim_lost_state(client) is True
    broker_state.release_claim(client)
    assert broker_state.claim_lost_state(client) is True


def test_reconciler_liveness_from_the_heartbeat(client):
    assert broker_state.reconciler_liveness(client, 60) == broker_state.Liveness(
        False, None, "no reconciler pass recorded on this broker (is a beat running?)")
    broker_state.record_pass(client)
    live = broker_state.reconciler_liveness(client, 60)
    assert live.alive and live.age_s < 60 and live.detail.startswith("last reconciler pass ")
    seconds, micros = client.time()
    client.set(broker_state.HEARTBEAT_KEY, repr(seconds + micros / 1e6 - 100))
    live = broker_state.reconciler_liveness(client, 60)
    assert (live.alive, live.detail) == (False, "last reconciler pass 100 s ago (stale after 60 s)")
