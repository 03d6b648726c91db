"""Tenant webhook subscriptions over HTTP (a real `governance serve`) and through a real worker:
decisions reach a tenant's receiver signed by the Standard Webhooks scheme (verified by
`standardwebhooks`), while another tenant's dead receiver backs off on its own rows."""
import time
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from governance.storage.db import engine_for
from governance.storage.tables import OutboxMessage, WebhookDelivery
from tests.e2e.api_fixtures import api, create_key, start_api  # noqa: F401 - fixtures
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.webhook_receiver import Receiver, refused_url

pytestmark = pytest.mark.e2e
PROBLEMS = "https://governance.dev/problems/"


@pytest.fixture(scope="module")
def local_env(e2e_env) -> dict:
    """Subscriptions may name receivers on this machine, as in local development."""
    return dict(e2e_env, GOVERNANCE_WEBHOOK_ALLOW_PRIVATE="1")


@pytest.fixture(scope="module")
def hooks_api(local_env, tmp_path_factory):
    server = start_api(local_env, tmp_path_factory.mktemp("hooks-api") / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def admin_keys(e2e_env) -> dict[str, dict]:
    """Two tenants' admin keys: {"a": key, "b": key}."""
    return {name: create_key(e2e_env, f"hook-{name}-{uuid.uuid4().hex[:8]}", "admin,read") for name in "ab"}


def test_a_tenant_creates_lists_and_deletes_its_subscriptions_and_sees_no_other_tenants(hooks_api, admin_keys):
    a, b = admin_keys["a"], admin_keys["b"]
    with hooks_api.client(a["key"]) as http_a, hooks_api.client(b["key"]) as http_b:
        made = http_a.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/a", "events": ["decision", "override"]})
        assert made.status_code == 201, made.text
        sub = made.json()
        assert sub["secret"].startswith("whsec_") and sub["tenant"] == a["tenant"]
        assert (sub["url"], sub["events"]) == ("http://127.0.0.1:9/a", ["decision", "override"])
        listed = http_a.get("/v1/webhooks").json()["webhooks"]
        assert listed == [{k: v for k, v in sub.items() if k != "secret"}]  # the secret is shown once
        assert http_b.get("/v1/webhooks").json() == {"webhooks": []}
        other = http_b.delete(f"/v1/webhooks/{sub['id']}")
        assert other.status_code == 404 and other.json()["type"] == PROBLEMS + "not-found"
        assert [s["id"] for s in http_a.get("/v1/webhooks").json()["webhooks"]] == [sub["id"]]
        assert http_a.delete(f"/v1/webhooks/{sub['id']}").status_code == 204
        assert http_a.get("/v1/webhooks").json() == {"webhooks": []}
        assert http_a.delete(f"/v1/webhooks/{sub['id']}").status_code == 404


def test_only_an_admin_key_manages_subscriptions(hooks_api, e2e_env):
    reader = create_key(e2e_env, f"hook-r-{uuid.uuid4().hex[:8]}", "ingest,read,review")
    with hooks_api.client(reader["key"]) as http, hooks_api.client() as anonymous:
        for response in (http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["decision"]}),
                         http.get("/v1/webhooks"), http.delete("/v1/webhooks/wh_x")):
            assert response.status_code == 403 and response.json()["type"] == PROBLEMS + "forbidden"
        assert anonymous.get("/v1/webhooks").status_code == 401


@pytest.mark.parametrize("body, reason", [
    ({"url": "ftp://example.com/hook", "events": ["decision"]}, "unsupported_uri"),
    ({"url": "http://127.0.0.1:9/", "events": ["everything"]}, None),
    ({"url": "http://127.0.0.1:9/", "events": []}, None),
    ({"url": "http://127.0.0.1:9/", "events": ["decision"], "secret": "mine"}, None),
    ({"events": ["decision"]}, None),
])
def test_bad_subscriptions_are_422_problems_and_store_nothing(hooks_api, admin_keys, body, reason):
    with hooks_api.client(admin_keys["a"]["key"]) as http:
        response = http.post("/v1/webhooks", json=body)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == PROBLEMS + "invalid-request"
        if reason:
            assert response.json()["reason"] == reason
        assert http.get("/v1/webhooks").json() == {"webhooks": []}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.0.0.7/hook", "http://[::ffff:127.0.0.1]/hook"])
def test_without_the_operators_setting_inner_receivers_are_refused(api, e2e_env, url):
    key = create_key(e2e_env, f"hook-s-{uuid.uuid4().hex[:8]}", "admin")
    with api.client(key["key"]) as http:
        response = http.post("/v1/webhooks", json={"url": url, "events": ["decision"]})
        assert response.status_code == 422 and response.json()["reason"] == "ssrf_blocked", response.text
        assert http.get("/v1/webhooks").json() == {"webhooks": []}


def delivery_rows(database_url, tenant) -> list[tuple[str, int, bool, str | None]]:
    with Session(engine_for(database_url)) as session:
        return list(session.execute(
            select(OutboxMessage.message_id, WebhookDelivery.attempts, WebhookDelivery.delivered_at.is_not(None),
                   WebhookDelivery.last_error)
            .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.outbox_pk)
            .where(WebhookDelivery.tenant == tenant).order_by(OutboxMessage.message_id)).all())


def test_a_worker_delivers_each_tenants_decisions_to_its_own_receiver(hooks_api, local_env, admin_keys, worker,
                                                                     database_url, tmp_path):
    env = local_env
    dead, alive = admin_keys["a"]["tenant"], admin_keys["b"]["tenant"]
    receiver = Receiver()
    made = {}
    for name, url in (("a", refused_url()), ("b", receiver.url)):
        with hooks_api.client(admin_keys[name]["key"]) as http:
            made[name] = http.post("/v1/webhooks", json={"url": url, "events": ["decision"]}).json()
    receiver.secret = made["b"]["secret"]
    events = [{"asset_id": f"a{i}", "tenant": tenant, "text": f"Heavy rain on the coast, day {i}."}
              for tenant in (dead, alive) for i in range(3)]
    try:
        cli(env, "publish", str(write_jsonl(tmp_path / "events.jsonl", events)))
        worker(env)
        decided = {d["event_id"]: d for d in wait_for_decisions(env, alive, 3)}
        deadline = time.monotonic() + 60
        while len(receiver.received) < 3 or len(delivery_rows(database_url, dead)) < 3:
            assert time.monotonic() < deadline, f"only {len(receiver.received)} deliveries arrived"
            time.sleep(0.3)
        wait_for_decisions(env, dead, 3)
        got = {data["data"]["event_id"]: data for _, data in receiver.received}
        assert got.keys() == decided.keys() and receiver.rejected == 0
        assert all(body["type"] == "decision" and body["data"] == decided[e] for e, body in got.items())
        assert sorted(i for i, _ in receiver.received) == sorted(f"decision:{alive}:{e}" for e in decided)
        # Each of the alive tenant's rows went on its first try; the dead tenant's wait on their own clock.
        assert [(attempts, delivered) for _, attempts, delivered, _ in delivery_rows(database_url, alive)] \
            == [(1, True)] * 3
        dead_rows = delivery_rows(database_url, dead)
        assert not any(delivered for _, _, delivered, _ in dead_rows)
        assert all(error.startswith(("unreachable", "deferred")) for *_, error in dead_rows)
    finally:
        receiver.close()
        for name in "ab":
            cli(env, "webhooks", "delete", made[name]["id"])
        with engine_for(database_url).begin() as connection:
            connection.execute(text("DELETE FROM webhook_deliveries WHERE tenant = ANY(:t)"), {"t": [dead, alive]})
