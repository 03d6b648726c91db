"""Tenant webhook subscriptions against real HTTP receivers that verify every delivery with the
`standardwebhooks` package (the reference implementation, not ours), on the real PostgreSQL."""
import json
import uuid

import pytest
from sqlalchemy import func, select, update

from governance.delivery import standard_webhooks, subscription_delivery, subscriptions
from governance.delivery.subscriptions import SubscriptionNotFound, SubscriptionRefused
from governance.platform.config import Settings
from governance.storage import repository
from governance.storage.tables import WebhookDelivery, WebhookSubscription
from tests.webhook_receiver import Receiver, refused_url


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]
    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def local(settings, monkeypatch) -> Settings:
    """Settings that let subscriptions name local receivers, as tests and local development do."""
    monkeypatch.setenv("GOVERNANCE_WEBHOOK_ALLOW_PRIVATE", "1")
    return Settings.from_env()


def subscribe(db, settings, tenant, receiver: Receiver | str, events=("decision",)):
    url = receiver if isinstance(receiver, str) else receiver.url
    created = subscriptions.create(db, settings, tenant, url, events)
    if not isinstance(receiver, str):
        receiver.secret = created.secret
    return created


def decision(tenant, event_id):
    return dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:{event_id}",
                payload={"event_id": event_id, "tenant": tenant, "action": "allow"})


def rows(db, subscription_id) -> list[WebhookDelivery]:
    db.expire_all()
    return repository.subscription_deliveries(db, subscription_id)


def make_due(db, *subscription_ids):
    db.execute(update(WebhookDelivery).where(WebhookDelivery.subscription_id.in_(subscription_ids))
               .values(available_at=func.now()))


def test_a_subscription_gets_its_kinds_signed_the_standard_way_and_once(db, local, tenant, receivers):
    receiver = receivers()
    created = subscribe(db, local, tenant, receiver, ["decision", "override"])
    assert created.secret.startswith("whsec_") and created.subscription.events == ["decision", "override"]
    repository.enqueue_outbox(db, [decision(tenant, "e1")])
    repository.enqueue_outbox(db, [dict(tenant=tenant, kind="alert", message_id=f"alert:{tenant}:x", payload={})])
    repository.enqueue_outbox(db, [dict(tenant=tenant, kind="override", message_id=f"override:{tenant}:e1:7",
                                        payload={"event_id": "e1", "action": "block"})])
    repository.enqueue_outbox(db, [decision(tenant, "e1")])  # a re-run enqueues nothing twice

    result = subscription_delivery.deliver_due(db, local)

    assert (result.delivered, result.failed, receiver.rejected) == (2, 0, 0)
    by_id = dict(receiver.received)
    assert set(by_id) == {f"decision:{tenant}:e1", f"override:{tenant}:e1:7"}  # the alert was not subscribed
    assert by_id[f"decision:{tenant}:e1"]["type"] == "decision"
    assert by_id[f"decision:{tenant}:e1"]["data"] == decision(tenant, "e1")["payload"]
    assert by_id[f"override:{tenant}:e1:7"]["type"] == "override"
    assert [(r.attempts, r.delivered_at is not None, r.last_error) for r in rows(db, created.subscription.id)] \
        == [(1, True, None), (1, True, None)]
    make_due(db, created.subscription.id)
    assert subscription_delivery.deliver_due(db, local).delivered == 0  # delivered rows are never sent again
    assert len(receiver.received) == 2


def test_a_receiver_holding_another_secret_refuses_the_delivery_and_it_backs_off(db, local, tenant, receivers):
    receiver = receivers()
    created = subscribe(db, local, tenant, receiver)
    receiver.secret = standard_webhooks.new_secret()  # not the subscription's: verification must fail
    repository.enqueue_outbox(db, [decision(tenant, "e1")])
    assert subscription_delivery.deliver_due(db, local).failed == 1
    [row] = rows(db, created.subscription.id)
    assert (receiver.rejected, receiver.received) == (1, [])
    assert row.attempts == 1 and row.delivered_at is None and row.last_error == "status 400"
    assert subscription_delivery.deliver_due(db, local).failed == 0  # backing off: not due yet


def test_a_dead_receiver_of_one_tenant_delays_neither_another_tenant_nor_its_other_subscription(
        db, local, receivers):
    a, b = f"wh-a-{uuid.uuid4().hex[:8]}", f"wh-b-{uuid.uuid4().hex[:8]}"
    refused = subscribe(db, local, a, refused_url()).subscription.id
    failing = receivers()
    failing.status = 500
    erroring = subscribe(db, local, a, failing).subscription.id
    a_good, b_good = receivers(), receivers()
    a_ok = subscribe(db, local, a, a_good).subscription.id
    b_ok = subscribe(db, local, b, b_good).subscription.id
    for tenant in (a, b):
        repository.enqueue_outbox(db, [decision(tenant, "e1"), decision(tenant, "e2")])

    result = subscription_delivery.deliver_due(db, local)  # one pass

    assert sorted(i for i, _ in b_good.received) == [f"decision:{b}:e1", f"decision:{b}:e2"]
    assert sorted(i for i, _ in a_good.received) == [f"decision:{a}:e1", f"decision:{a}:e2"]
    assert (result.delivered, result.failed) == (4, 4)
    for dead, error in ((refused, "unreachable"), (erroring, "status 500")):
        first, second = rows(db, dead)
        # The first row was tried and backs off; the second was not sent after its receiver failed.
        assert (first.attempts, first.delivered_at) == (1, None) and first.last_error.startswith(error)
        assert (second.attempts, second.delivered_at) == (0, None) and second.last_error.startswith("deferred")
    assert [r.attempts for r in rows(db, b_ok) + rows(db, a_ok)] == [1, 1, 1, 1]

    assert subscription_delivery.deliver_due(db, local).failed == 0  # the dead ones back off
    failing.status = 200
    make_due(db, erroring)
    assert subscription_delivery.deliver_due(db, local).delivered == 2
    assert [(r.attempts, r.delivered_at is not None) for r in rows(db, erroring)] == [(2, True), (1, True)]
    assert len(b_good.received) == 2  # nothing sent twice


def test_a_deleted_subscription_gets_nothing_more(db, local, tenant, receivers):
    receiver = receivers()
    created = subscribe(db, local, tenant, receiver)
    repository.enqueue_outbox(db, [decision(tenant, "before")])
    subscriptions.delete(db, created.subscription.id, tenant)
    repository.enqueue_outbox(db, [decision(tenant, "after")])
    assert subscription_delivery.deliver_due(db, local).delivered == 0
    assert receiver.received == [] and len(rows(db, created.subscription.id)) == 1  # only the one from before
    assert subscriptions.list_subscriptions(db, tenant) == []
    deleted_at = db.scalar(select(WebhookSubscription.deleted_at).where(WebhookSubscription.id == created.subscription.id))
    assert deleted_at is not None  # soft: the row stays
    with pytest.raises(SubscriptionNotFound):
        subscriptions.delete(db, created.subscription.id, tenant)


def test_list_shows_a_tenants_subscriptions_without_secrets(db, local, tenant, receivers):
    first = subscribe(db, local, tenant, receivers(), ["decision"]).subscription
    second = subscribe(db, local, tenant, receivers(), ["alert", "cluster", "alert"]).subscription
    listed = subscriptions.list_subscriptions(db, tenant)
    assert [s.id for s in listed] == [first.id, second.id] and listed[1].events == ["alert", "cluster"]
    assert all("secret" not in s.to_json() for s in listed)
    assert subscriptions.list_subscriptions(db, tenant + "-other") == []
    with pytest.raises(SubscriptionNotFound):
        subscriptions.delete(db, first.id, tenant + "-other")  # another tenant's id is not found
    assert [s.id for s in subscriptions.list_subscriptions(db, tenant)] == [first.id, second.id]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.1.2.3/hook", "http://[::ffff:127.0.0.1]:8080/hook",
                                 "http://localhost:8080/hook", "http://[::1]/hook"])
def test_private_loopback_and_metadata_receivers_are_refused_without_the_setting(db, settings, tenant, url):
    assert settings.webhook_allow_private is False
    with pytest.raises(SubscriptionRefused, match="^ssrf_blocked"):
        subscriptions.create(db, settings, tenant, url, ["decision"])
    assert subscriptions.list_subscriptions(db, tenant) == []


@pytest.mark.parametrize("url, events, reason", [
    ("ftp://example.com/hook", ["decision"], "unsupported_uri"),
    ("http://user:pw@example.com/", ["decision"], "unsupported_uri"),
    ("http://example.com/" + "x" * 2048, ["decision"], "invalid_uri"),
    ("http://127.0.0.1:8080/", ["decision", "everything"], "unknown_event"),
    ("http://127.0.0.1:8080/", [], "no_events"),
])
def test_bad_urls_and_events_are_refused(db, local, tenant, url, events, reason):
    with pytest.raises(SubscriptionRefused, match=f"^{reason}"):
        subscriptions.create(db, local, tenant, url, events)


def test_a_name_that_does_not_resolve_is_refused_without_the_setting_and_looked_up_at_send_time_with_it(
        db, local, settings, tenant):
    with pytest.raises(SubscriptionRefused, match="^dns_failed"):
        subscriptions.create(db, settings, tenant, "http://no-such-host.invalid/hook", ["decision"])
    created = subscriptions.create(db, local, tenant, "http://no-such-host.invalid/hook", ["decision"])
    repository.enqueue_outbox(db, [decision(tenant, "e1")])
    assert subscription_delivery.deliver_due(db, local).failed == 1
    [row] = rows(db, created.subscription.id)
    assert row.attempts == 1 and row.last_error.startswith("dns_failed")


def test_the_address_is_judged_again_at_send_time(db, local, settings, tenant, receivers):
    """A receiver allowed when it was subscribed is refused at send time once it is not (as when a
    name is re-pointed at an inner address): nothing is sent, and the row says why."""
    receiver = receivers()
    created = subscribe(db, local, tenant, receiver)
    repository.enqueue_outbox(db, [decision(tenant, "e1")])
    assert subscription_delivery.deliver_due(db, settings).failed == 1  # settings: private not allowed
    [row] = rows(db, created.subscription.id)
    assert receiver.received == [] and row.attempts == 1 and row.last_error.startswith("ssrf_blocked")


def test_the_cli_shaped_payload_of_a_created_subscription_names_its_secret_once(db, local, tenant, receivers):
    created = subscribe(db, local, tenant, receivers(), "decision, cluster")
    shown = created.to_json()
    assert shown["secret"] == created.secret and shown["events"] == ["decision", "cluster"]
    assert json.loads(json.dumps(shown))["tenant"] == tenant
    stored = db.scalar(select(WebhookSubscription.secret).where(WebhookSubscription.id == created.subscription.id))
    assert stored == created.secret  # kept to sign with (the scheme is symmetric), never listed


def test_a_cluster_reports_alerts_go_to_cluster_subscriptions_as_kind_cluster(db, local, tenant, receivers, tmp_path):
    from governance.clustering import stored_reports
    from governance.embedding.backends.hashing import HashingEmbedder
    from governance.ingest.inbox import accept_events
    from governance.moderation.batch_pipeline import process_upload
    from governance.moderation.pipeline import Context
    from governance.storage.tables import OutboxMessage

    ctx = Context(settings=local, embedder=HashingEmbedder(768))
    cluster_hook, decision_hook = receivers(), receivers()
    clusters = subscribe(db, local, tenant, cluster_hook, ["cluster"]).subscription.id
    subscribe(db, local, tenant, decision_hook, ["decision"])
    wave = [f"Cheap watches for sale, limited offer number {i}, click the link now" for i in range(14)]
    other = [f"{word} notes on topic {i}" for i, word in enumerate(["Gardening", "Astronomy", "Cooking", "Chess",
                                                                    "Sailing", "Pottery", "Hiking", "Baking"])]
    events = [{"asset_id": f"p{i}", "tenant": tenant, "text": t} for i, t in enumerate(wave + other)]
    for _, event_id in accept_events(db, list(enumerate(events))).new:
        process_upload(db, ctx, tenant, event_id)
    stored_reports.build_and_store(db, ctx, tenant, out_dir=tmp_path)

    kinds = {m.kind for m in db.scalars(select(OutboxMessage).where(OutboxMessage.tenant == tenant))}
    assert kinds == {"decision", "cluster"}
    subscription_delivery.deliver_due(db, local)
    assert [body["type"] for _, body in cluster_hook.received] == ["cluster"] * len(rows(db, clusters))
    assert cluster_hook.received and cluster_hook.received[0][1]["data"]["kind"] == "emerging_cluster"
    assert {body["type"] for _, body in decision_hook.received} == {"decision"}
    assert len(decision_hook.received) == len(events)
