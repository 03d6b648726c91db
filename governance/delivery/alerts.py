"""Anomaly alerts through the outbox: grouped per tenant and window, and rate-limited.

A beat task calls `run_alerts` every minute. Time is cut into fixed windows (`window_s`, aligned
to the epoch). Each tenant has a cursor (`alert_state`): the start of what has not been alerted
yet. When a window has closed (plus `settle_s`, so that decisions still committing land in it),
the anomaly-flagged decisions from the cursor to the window's end become ONE outbox message
(kind `alert`, id `alert:{tenant}:anomaly:{start}/{end}`) with counts by action and label and
the `top` most anomalous examples, and the cursor moves on. A span with nothing flagged moves the
cursor without an alert.

Rate limit: while the tenant's last alert is younger than `min_interval_s`, the cursor stays put,
so the flagged decisions accumulate and go out later as one alert covering several windows: at
most one alert per tenant per `min_interval_s`, and nothing is lost. The cursor row is locked,
and message ids are stable, so concurrent beats cannot send an alert twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from governance.platform.config import Settings
from governance.storage import repository

KIND = "anomaly"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class AlertConfig:
    window_s: int = 300
    min_interval_s: int = 900
    settle_s: int = 30
    top: int = 5
    lookback_s: int = 86_400  # how far back a lagging cursor may reach

    @classmethod
    def from_settings(cls, settings: Settings) -> "AlertConfig":
        return cls(window_s=settings.alert_window_s, min_interval_s=settings.alert_min_interval_s,
                   settle_s=settings.alert_settle_s, top=settings.alert_top)


def window_floor(moment: datetime, window_s: int) -> datetime:
    seconds = int((moment - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % window_s)


def run_alerts(session: Session, config: AlertConfig | None = None, now: datetime | None = None) -> list[dict]:
    """Enqueue the alerts that are due for every tenant; returns their payloads."""
    config = config or AlertConfig()
    now = now or datetime.now(timezone.utc)
    boundary = window_floor(now - timedelta(seconds=config.settle_s), config.window_s)
    alerts = []
    for tenant in repository.tenants_with_flagged_decisions(session, boundary - timedelta(seconds=config.lookback_s)):
        alert = tenant_alert(session, tenant, config, now, boundary)
        if alert is not None:
            alerts.append(alert)
    return alerts


def alert_now(session: Session, tenant: str, config: AlertConfig | None = None,
              now: datetime | None = None) -> dict | None:
    """The tenant's anomaly alert for everything flagged since its cursor, without waiting for a window
    to close; None when nothing new was flagged.

    `governance demo` calls it so that one run shows the alert the beat would send minutes later. It
    moves the beat's cursor and builds the same message ids, so no flagged decision is alerted twice;
    a tenant the beat has not seen yet starts `lookback_s` back. Asked for explicitly, so not rate-limited.
    """
    config = config or AlertConfig()
    now = now or datetime.now(timezone.utc)
    return tenant_alert(session, tenant, config, now, now,
                        initial_cursor=now - timedelta(seconds=config.lookback_s), rate_limited=False)


def tenant_alert(session: Session, tenant: str, config: AlertConfig, now: datetime, boundary: datetime, *,
                 initial_cursor: datetime | None = None, rate_limited: bool = True) -> dict | None:
    if initial_cursor is None:
        initial_cursor = boundary - timedelta(seconds=config.window_s)
    state = repository.lock_alert_state(session, tenant, KIND, initial_cursor)
    start = max(state.cursor_at, boundary - timedelta(seconds=config.lookback_s))
    if start >= boundary:
        return None  # the current window has not closed yet
    if (rate_limited and state.last_alert_at is not None
            and now - state.last_alert_at < timedelta(seconds=config.min_interval_s)):
        return None  # rate-limited: the span keeps growing and goes out as one alert later
    summary = repository.flagged_summary(session, tenant, start, boundary, config.top)
    state.cursor_at = boundary
    if summary["flagged"] == 0:
        session.flush()
        return None
    state.last_alert_at = now
    message_id = f"alert:{tenant}:{KIND}:{start.isoformat()}/{boundary.isoformat()}"
    payload = {"alert": KIND, "tenant": tenant, "message_id": message_id,
               "window": {"start": start.isoformat(), "end": boundary.isoformat(),
                          "seconds": int((boundary - start).total_seconds())},
               **summary, "generated_at": now.isoformat()}
    repository.enqueue_outbox(session, [dict(tenant=tenant, kind="alert", message_id=message_id, payload=payload)])
    session.flush()
    return payload
