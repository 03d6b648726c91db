"""Tenant webhook subscriptions through the real CLI and a real worker: decisions reach a tenant's
receiver signed by the Standard Webhooks scheme (verified by `standardwebhooks`), while another
tenant's dead receiver backs off on its own rows."""
import json
import time
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from governance.storage.db import engine_for
from governance.storage.tables import OutboxMessage, WebhookDelivery
from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.webhook_receiver import Receiver, refused_url

pytestmark = pytest.mark.e2e


def delivery_rows(database_url, tenant) -> list[tuple[str, int, bool, str | None]]:
    with Session(engine_for(database_url)) as session:
        return list(session.execute(
            select(OutboxMessage.message_id, WebhookDelivery.attempts, WebhookDelivery.delivered_at.is_not(None),
                   WebhookDelivery.last_error)
            .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.outbox_pk)
            .where(WebhookDelivery.tenant == tenant).order_by(OutboxMessage.message_id)).all())


def test_a_worker_delivers_each_tenants_decisions_to_its_own_receiver(e2e_env, worker, database_url, tmp_path):
    env = dict(e2e_env, GOVERNANCE_WEBHOOK_ALLOW_PRIVATE="1")
    dead, alive = f"hook-dead-{uuid.uuid4().hex[:8]}", f"hook-alive-{uuid.uuid4().hex[:8]}"
    receiver = Receiver()
    made = {}
    for tenant, url in ((dead, refused_url()), (alive, receiver.url)):
        made[tenant] = json.loads(cli(env, "webhooks", "create", "--tenant", tenant, "--url", url,
                                      "--events", "decision", "--json").stdout)
    receiver.secret = made[alive]["secret"]
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
        for tenant in (dead, alive):
            cli(env, "webhooks", "delete", made[tenant]["id"])
        with engine_for(database_url).begin() as connection:
            connection.execute(text("DELETE FROM webhook_deliveries WHERE tenant = ANY(:t)"), {"t": [dead, alive]})
