"""`alert_now`: the anomaly alert at once (as `governance demo` raises it), sharing the beat's cursor."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from governance.delivery import alerts
from governance.storage.tables import OutboxMessage
from tests.integration.helpers import flagged_decision

CONFIG = alerts.AlertConfig(window_s=300, min_interval_s=900, settle_s=30, top=5)


def alert_messages(db, tenant) -> list[str]:
    return list(db.scalars(select(OutboxMessage.message_id).where(
        OutboxMessage.tenant == tenant, OutboxMessage.kind == "alert").order_by(OutboxMessage.id)))


def test_alert_now_covers_what_no_window_has_closed_on_and_the_beat_does_not_send_it_again(db, tenant):
    now = datetime.now(timezone.utc)
    flagged_decision(db, tenant, 0, now - timedelta(hours=2), 0.7)  # the beat has never seen this tenant
    flagged_decision(db, tenant, 1, now - timedelta(seconds=5), 0.9)  # its window is still open
    first = alerts.alert_now(db, tenant, CONFIG, now=now)
    assert first["flagged"] == 2 and [e["asset_id"] for e in first["examples"]] == ["a1", "a0"]
    assert first["window"]["end"] == now.isoformat() and first["window"]["seconds"] == CONFIG.lookback_s
    assert alert_messages(db, tenant) == [first["message_id"]]

    assert alerts.alert_now(db, tenant, CONFIG, now=now + timedelta(seconds=1)) is None  # nothing new flagged

    flagged_decision(db, tenant, 2, now + timedelta(seconds=10), 0.8)
    again = alerts.alert_now(db, tenant, CONFIG, now=now + timedelta(seconds=20))  # not rate-limited: asked for
    assert again["flagged"] == 1 and [e["asset_id"] for e in again["examples"]] == ["a2"]
    assert again["window"]["start"] == (now + timedelta(seconds=1)).isoformat()

    later = now + timedelta(seconds=CONFIG.min_interval_s + CONFIG.window_s + CONFIG.settle_s)
    assert [a for a in alerts.run_alerts(db, CONFIG, now=later) if a["tenant"] == tenant] == []  # not sent twice
    assert alert_messages(db, tenant) == [first["message_id"], again["message_id"]]
