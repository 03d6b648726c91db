"""Tenant webhook subscriptions and the deliveries owed to them (migration 0006)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from governance.storage.rows import DueDelivery
from governance.storage.tables import OutboxMessage, WebhookDelivery, WebhookSubscription


def insert_subscription(session: Session, *, id: str, tenant: str, url: str, events: list[str],
                        secret: str) -> WebhookSubscription:
    row = WebhookSubscription(id=id, tenant=tenant, url=url, events=events, secret=secret,
                              created_at=func.clock_timestamp())  # ordered within a transaction too
    session.add(row)
    session.flush()
    session.refresh(row, ["created_at"])
    return row


def live_subscriptions(session: Session, tenant: str | None = None) -> list[WebhookSubscription]:
    """Subscriptions not deleted, oldest first: the tenant's, or every one the scope shows when None."""
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))
    if tenant is not None:
        query = query.where(WebhookSubscription.tenant == tenant)
    return list(session.scalars(query.order_by(WebhookSubscription.created_at, WebhookSubscription.id)))


def soft_delete_subscription(session: Session, subscription_id: str, tenant: str | None = None) -> bool:
    """Mark a live subscription deleted (its pending deliveries stop with it); False when none is visible."""
    query = (update(WebhookSubscription)
             .where(WebhookSubscription.id == subscription_id, WebhookSubscription.deleted_at.is_(None))
             .values(deleted_at=func.now()))
    if tenant is not None:
        query = query.where(WebhookSubscription.tenant == tenant)
    return session.execute(query).rowcount == 1


def fan_out_to_subscriptions(session: Session, message_ids_by_tenant: dict[str, list[str]]) -> None:
    """One delivery row for each live subscription of the message's tenant whose events include the
    message's kind. Written with the message, in its transaction: a subscription receives what was
    enqueued after it was created, and a re-run adds nothing (one row per subscription and message)."""
    for tenant, message_ids in message_ids_by_tenant.items():
        session.execute(text("""
            INSERT INTO webhook_deliveries (tenant, subscription_id, outbox_pk, attempts, available_at)
            SELECT o.tenant, s.id, o.id, 0, now()
            FROM outbox o JOIN webhook_subscriptions s
              ON s.tenant = o.tenant AND s.deleted_at IS NULL AND s.events @> jsonb_build_array(o.kind)
            WHERE o.tenant = :tenant AND o.message_id = ANY(:ids)
            ON CONFLICT (subscription_id, outbox_pk) DO NOTHING"""), {"tenant": tenant, "ids": message_ids})


def claim_due_deliveries(session: Session, limit: int) -> list[DueDelivery]:
    """Due, undelivered rows of live subscriptions, oldest first, locked so that concurrent relays
    never send the same one (`SKIP LOCKED`: a relay busy with a slow receiver holds only its rows)."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.tenant, WebhookDelivery.subscription_id, WebhookSubscription.url,
               WebhookSubscription.secret, WebhookDelivery.attempts, OutboxMessage.message_id, OutboxMessage.kind,
               OutboxMessage.payload, OutboxMessage.created_at)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(OutboxMessage, OutboxMessage.id == WebhookDelivery.outbox_pk)
        .where(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.available_at <= func.now(),
               WebhookSubscription.deleted_at.is_(None))
        .order_by(WebhookDelivery.available_at, WebhookDelivery.id).limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True))
    return [DueDelivery(*row) for row in rows]


def mark_delivered(session: Session, delivery_id: int) -> None:
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
        attempts=WebhookDelivery.attempts + 1, delivered_at=func.clock_timestamp(), last_error=None))


def mark_failed(session: Session, delivery_id: int, error: str, retry_at: datetime, *, attempted: bool) -> None:
    """Back a delivery off until `retry_at`; `attempted` False: it was not sent (its receiver had just
    failed in this pass), so it keeps its attempt count."""
    values = dict(available_at=retry_at, last_error=error[:500])
    if attempted:
        values["attempts"] = WebhookDelivery.attempts + 1
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))


def subscription_deliveries(session: Session, subscription_id: str) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                                .order_by(WebhookDelivery.id)))
