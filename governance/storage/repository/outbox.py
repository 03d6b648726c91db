"""The outbox and its delivery log."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.repository.webhooks import fan_out_to_subscriptions
from governance.storage.tables import OutboxDelivery, OutboxMessage


def claim_outbox(session: Session, limit: int) -> list[OutboxMessage]:
    """Due, undelivered messages, locked so that concurrent relays never take the same one."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= func.now())
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)
    ))


def insert_delivery(session: Session, *, tenant: str, message_id: str, sink: str, status: str,
                    error: str | None = None) -> None:
    session.add(OutboxDelivery(tenant=tenant, message_id=message_id, sink=sink, status=status, error=error,
                               at=func.clock_timestamp()))


def delivered_sinks(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str, str]]:
    """(tenant, message_id, sink) already delivered, for the given (tenant, message_id) pairs."""
    found: set[tuple[str, str, str]] = set()
    by_tenant: dict[str, list[str]] = {}
    for tenant, message_id in keys:
        by_tenant.setdefault(tenant, []).append(message_id)
    for tenant, ids in by_tenant.items():
        rows = session.execute(select(OutboxDelivery.message_id, OutboxDelivery.sink).where(
            OutboxDelivery.tenant == tenant, OutboxDelivery.message_id.in_(ids),
            OutboxDelivery.status == "delivered"))
        found.update((tenant, message_id, sink) for message_id, sink in rows)
    return found


def deliveries(session: Session, tenant: str, message_id: str | None = None) -> list[OutboxDelivery]:
    query = select(OutboxDelivery).where(OutboxDelivery.tenant == tenant)
    if message_id is not None:
        query = query.where(OutboxDelivery.message_id == message_id)
    return list(session.scalars(query.order_by(OutboxDelivery.id)))


def enqueue_outbox(session: Session, rows: list[dict]) -> None:
    """Queue messages (rows carry tenant, kind, message_id, payload); a message id already queued is
    left alone, so a re-run enqueues nothing twice. Each is owed to the tenant's webhook
    subscriptions of its kind (webhooks.py) from the same transaction."""
    if rows:
        stmt = insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["tenant", "message_id"])
        session.execute(stmt, rows)
        by_tenant: dict[str, list[str]] = {}
        for row in rows:
            by_tenant.setdefault(row["tenant"], []).append(row["message_id"])
        fan_out_to_subscriptions(session, by_tenant)
