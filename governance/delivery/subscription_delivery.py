"""Deliver what the outbox owes tenant webhook subscriptions, each delivery on its own retry clock.

`repository.enqueue_outbox` writes one `webhook_deliveries` row per (subscription, message). A
pass claims the due rows, sends each subscription's rows in order in its own thread, and backs off
only the rows that failed: one tenant's dead or slow receiver holds one thread, never another
tenant's (nor another subscription's) deliveries. Once a receiver fails in a pass, the rest of its
rows wait for the next try unsent and keep their attempt count. The POST re-resolves and re-judges
the receiver's address every time (a name that was public at subscription may point inward now).
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from governance.delivery import standard_webhooks
from governance.delivery.outbox_relay import RelayResult, backoff_s
from governance.ingest.safe_fetch import post_http
from governance.platform.config import Settings
from governance.storage import repository
from governance.storage.rows import DueDelivery

log = logging.getLogger(__name__)
MAX_PARALLEL_RECEIVERS = 8


@dataclass(frozen=True)
class Outcome:
    delivery: DueDelivery
    error: str | None  # None: delivered
    attempted: bool = True


def send(delivery: DueDelivery, settings: Settings) -> None:
    """POST one delivery, signed; raises unless the receiver answered 2xx."""
    content = standard_webhooks.body(delivery.kind, delivery.created_at, delivery.payload)
    status = post_http(delivery.url, content, standard_webhooks.headers(delivery.secret, delivery.message_id, content),
                       settings, allow_private=settings.webhook_allow_private)
    if not 200 <= status < 300:
        raise RuntimeError(f"status {status}")


def send_in_order(deliveries: list[DueDelivery], settings: Settings) -> list[Outcome]:
    outcomes: list[Outcome] = []
    failed: str | None = None
    for delivery in deliveries:
        if failed is not None:
            outcomes.append(Outcome(delivery, f"deferred: the receiver failed just before ({failed})", False))
            continue
        try:
            send(delivery, settings)
        except Exception as exc:  # noqa: BLE001 - any failure of a receiver means "try again later"
            failed = str(exc)[:400] or type(exc).__name__
            outcomes.append(Outcome(delivery, failed))
        else:
            outcomes.append(Outcome(delivery, None))
    return outcomes


def deliver_due(session: Session, settings: Settings, limit: int = 100) -> RelayResult:
    now = datetime.now(timezone.utc)
    by_subscription: dict[str, list[DueDelivery]] = {}
    for delivery in repository.claim_due_deliveries(session, limit):
        by_subscription.setdefault(delivery.subscription_id, []).append(delivery)
    if not by_subscription:
        return RelayResult()
    workers = min(MAX_PARALLEL_RECEIVERS, len(by_subscription))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
        groups = list(pool.map(lambda rows: send_in_order(rows, settings), by_subscription.values()))
    result = RelayResult()
    for outcome in (o for group in groups for o in group):
        delivery = outcome.delivery
        if outcome.error is None:
            repository.mark_delivered(session, delivery.id)
            result.delivered += 1
            continue
        retry_at = now + timedelta(seconds=backoff_s(delivery.attempts + 1))
        repository.mark_failed(session, delivery.id, outcome.error, retry_at, attempted=outcome.attempted)
        result.failed += 1
        if outcome.attempted:
            log.warning("webhook delivery failed", extra={"tenant": delivery.tenant, "message_id": delivery.message_id,
                                                          "subscription": delivery.subscription_id,
                                                          "error": outcome.error[:200]})
    session.flush()
    return result
