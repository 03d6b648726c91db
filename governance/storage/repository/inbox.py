"""The events inbox: recording, locking and counting deliveries, statuses, stale events."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.tables import DeadLetter, Event, OutboxMessage


def record_events(session: Session, rows: list[dict]) -> list[tuple[str, str]]:
    """Insert accepted events; return the (tenant, event_id) pairs that were new."""
    if not rows:
        return []
    # Core executemany ("insertmanyvalues", which batches under the bind-parameter limit itself):
    # compiled once and cached, where .values([...]) was compiled anew for every call, which
    # dominated a request of 100 events through the HTTP API.
    table = Event.__table__
    stmt = insert(table).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
    return [tuple(r) for r in session.execute(stmt.returning(table.c.tenant, table.c.event_id), rows)]


def event_payloads(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The stored payload of each (tenant, event_id) that exists."""
    found = {}
    keys = list(keys)
    for start in range(0, len(keys), 5000):
        chunk = keys[start:start + 5000]
        rows = session.execute(select(Event.tenant, Event.event_id, Event.payload)
                               .where(tuple_(Event.tenant, Event.event_id).in_(chunk)))
        found.update({(tenant, event_id): payload for tenant, event_id, payload in rows})
    return found


def count_attempt(session: Session, tenant: str, event_id: str) -> int | None:
    """Count one delivery attempt; the broker keeps no such count, so Postgres does."""
    return session.scalar(
        update(Event).where(Event.tenant == tenant, Event.event_id == event_id)
        .values(attempts=Event.attempts + 1, last_attempt_at=func.now()).returning(Event.attempts)
    )


def set_event_status(session: Session, tenant: str, event_id: str, status: str) -> None:
    session.execute(update(Event).where(Event.tenant == tenant, Event.event_id == event_id).values(status=status))


def event_status(session: Session, tenant: str, event_id: str) -> str | None:
    return session.scalar(select(Event.status).where(Event.tenant == tenant, Event.event_id == event_id))


def operational_counts(session: Session) -> dict[str, int]:
    """Across all tenants, for the metrics endpoint: outbox backlog, dead letters, pending events."""
    session.execute(text("SET LOCAL statement_timeout = '2s'"))
    return {
        "outbox_backlog": session.scalar(select(func.count()).select_from(OutboxMessage)
                                         .where(OutboxMessage.delivered_at.is_(None))),
        "dead_letters": session.scalar(select(func.count()).select_from(DeadLetter)),
        "pending_events": session.scalar(select(func.count()).select_from(Event).where(Event.status == "accepted")),
    }


def stale_events(session: Session, older_than_s: int, limit: int) -> list[tuple[str, str]]:
    """Accepted events with no outcome whose last attempt (or acceptance) is older than the timeout."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_s)
    rows = session.execute(
        select(Event.tenant, Event.event_id).where(
            Event.status == "accepted", func.coalesce(Event.last_attempt_at, Event.accepted_at) < cutoff,
        ).order_by(Event.accepted_at).limit(limit)
    )
    return [tuple(r) for r in rows]


def touch_events(session: Session, keys: list[tuple[str, str]]) -> None:
    for tenant, event_id in keys:
        session.execute(update(Event).where(Event.tenant == tenant, Event.event_id == event_id)
                        .values(last_attempt_at=func.now()))


def touch_all_pending(session: Session) -> list[tuple[str, str]]:
    """Every accepted event with no outcome, touched in one statement (oldest first)."""
    touched = session.execute(update(Event).where(Event.status == "accepted").values(last_attempt_at=func.now())
                              .returning(Event.tenant, Event.event_id, Event.accepted_at))
    return [(tenant, event_id) for tenant, event_id, _ in sorted(touched, key=lambda row: row[2])]


def count_batch_delivery(session: Session, tenant: str, event_ids: list[str]) -> list[tuple[str, str, int, bool]]:
    """Count this delivery for the batch's events in one statement: (event_id, status, attempts, counted).

    An accepted event that was delivered before (attempts > 0) is NOT counted here: the caller hands
    it to a single-event task, which counts its own deliveries, so a poison event in a batch reaches
    the attempt limit alone. Events with an outcome are counted, as a single-event delivery would be.
    """
    rows = session.execute(text("""
        WITH batch AS (
            SELECT id, event_id, status, attempts FROM events
            WHERE tenant = :tenant AND event_id = ANY(:ids) ORDER BY id FOR UPDATE
        ), counted AS (
            UPDATE events e SET attempts = e.attempts + 1, last_attempt_at = now()
            FROM batch b WHERE e.id = b.id AND (b.attempts = 0 OR b.status <> 'accepted')
            RETURNING e.id, e.attempts
        )
        SELECT b.event_id, b.status, coalesce(c.attempts, b.attempts), c.id IS NOT NULL
        FROM batch b LEFT JOIN counted c ON c.id = b.id
    """), {"tenant": tenant, "ids": list(event_ids)})
    return [(r[0], r[1], int(r[2]), bool(r[3])) for r in rows]


def uncount_attempts(session: Session, tenant: str, event_ids: list[str]) -> None:
    session.execute(update(Event).where(Event.tenant == tenant, Event.event_id.in_(event_ids), Event.attempts > 0)
                    .values(attempts=Event.attempts - 1))


def lock_events(session: Session, tenant: str, event_ids: list[str]) -> list[Event]:
    """Row-lock the events in a fixed order (by id), so overlapping batches cannot deadlock."""
    return list(session.scalars(select(Event).where(Event.tenant == tenant, Event.event_id.in_(event_ids))
                                .order_by(Event.id).with_for_update()))


def set_events_status(session: Session, tenant: str, event_ids: list[str], status: str) -> None:
    if event_ids:  # = ANY(array): one statement text for any batch size, where IN (...) is rendered anew
        session.execute(text("UPDATE events SET status = :status WHERE tenant = :tenant AND event_id = ANY(:ids)"),
                        {"status": status, "tenant": tenant, "ids": list(event_ids)})


def events_by_ids(session: Session, tenant: str, event_ids: list[str]) -> dict[str, Event]:
    if not event_ids:
        return {}
    return {e.event_id: e for e in session.scalars(select(Event).where(Event.tenant == tenant,
                                                                        Event.event_id.in_(event_ids)))}


def dead_letter_reasons(session: Session, tenant: str, event_ids: list[str]) -> dict[str, str]:
    if not event_ids:
        return {}
    return dict(session.execute(select(DeadLetter.event_id, DeadLetter.reason)
                                .where(DeadLetter.tenant == tenant, DeadLetter.event_id.in_(event_ids))).all())
