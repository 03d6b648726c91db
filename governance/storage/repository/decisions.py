"""Decisions and dead letters."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterator

import numpy as np
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.repository._sql import vector_sql, as_array
from governance.storage.repository.webhooks import fan_out_to_subscriptions
from governance.storage.tables import Asset, DeadLetter, Decision, Embedding


def decision_exists(session: Session, tenant: str, event_id: str) -> bool:
    return session.scalar(select(func.count()).select_from(Decision)
                          .where(Decision.tenant == tenant, Decision.event_id == event_id)) > 0


def insert_dead_letter(session: Session, *, tenant: str, event_id: str, reason: str, attempts: int,
                       payload: dict | None) -> None:
    stmt = insert(DeadLetter).values(tenant=tenant, event_id=event_id, reason=reason, attempts=attempts,
                                     payload=payload)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "event_id"]))


def iter_decisions(session: Session, tenant: str, since: datetime | None = None) -> Iterator[Decision]:
    query = select(Decision).where(Decision.tenant == tenant)
    if since is not None:
        query = query.where(Decision.decided_at >= since)
    yield from session.scalars(query.order_by(Decision.id).execution_options(yield_per=1000))


def dead_letters(session: Session, tenant: str) -> list[DeadLetter]:
    return list(session.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant).order_by(DeadLetter.id)))


def tenants_with_recent_decisions(session: Session, since: datetime) -> list[str]:
    return list(session.scalars(select(Decision.tenant).where(Decision.decided_at >= since).distinct()))


def latest_decision_for_asset(session: Session, tenant: str, asset_id: str) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.tenant == tenant, Decision.asset_id == asset_id)
                           .order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(1)
                           .with_for_update()).first()


def decision_for_event(session: Session, tenant: str, event_id: str) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.tenant == tenant, Decision.event_id == event_id)
                           .with_for_update()).first()


def decisions_with_vectors(session: Session, tenant: str, model: str, dims: int, tasks: list[str],
                           since: datetime | None, limit: int) -> list[tuple[Decision, str, str, np.ndarray]]:
    """(decision, modality, task, vector) for decided uploads that have a stored vector of the model
    under one of `tasks`, newest first."""
    column, _ = vector_sql(dims)
    query = (select(Decision, Asset.modality, Embedding.task, getattr(Embedding, column))
             .join(Asset, (Asset.id == Decision.asset_pk) & (Asset.tenant == tenant))
             .join(Embedding, (Embedding.asset_pk == Decision.asset_pk) & (Embedding.tenant == tenant))
             .where(Decision.tenant == tenant, Decision.action != "reject", Embedding.model == model,
                    Embedding.dims == dims, Embedding.task.in_(list(tasks))))
    if since is not None:
        query = query.where(Decision.decided_at >= since)
    query = query.order_by(Decision.decided_at.desc(), Decision.id.desc(), Embedding.task).limit(limit)
    return [(d, modality, task, as_array(vector)) for d, modality, task, vector in session.execute(query)]


def decided_event_ids(session: Session, tenant: str, event_ids: list[str]) -> set[str]:
    return set(session.scalars(text("SELECT event_id FROM decisions WHERE tenant = :tenant AND event_id = ANY(:ids)"),
                               {"tenant": tenant, "ids": list(event_ids)}))


def insert_decisions(session: Session, rows: list[dict]) -> set[str]:
    """Insert decision rows, leaving alone an event that already has one; returns the event ids that were new."""
    if not rows:
        return set()
    stmt = insert(Decision.__table__).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
    return set(session.scalars(stmt.returning(Decision.__table__.c.event_id), rows))


def decisions_for_events(session: Session, tenant: str, event_ids: list[str]) -> dict[str, Decision]:
    if not event_ids:
        return {}
    return {d.event_id: d for d in session.scalars(select(Decision).where(Decision.tenant == tenant,
                                                                           Decision.event_id.in_(event_ids)))}


def decisions_of_asset(session: Session, tenant: str, asset_id: str) -> list[Decision]:
    """Newest first."""
    return list(session.scalars(select(Decision).where(Decision.tenant == tenant, Decision.asset_id == asset_id)
                                .order_by(Decision.decided_at.desc(), Decision.id.desc())))


def decision_page(session: Session, tenant: str, *, action: str | None = None, label: str | None = None,
                  since: datetime | None = None, until: datetime | None = None,
                  before: tuple[datetime, int] | None = None, limit: int = 100) -> list[Decision]:
    """Newest first; `before` is the (decided_at, id) of the last row of the previous page (keyset
    pagination: a page is as cheap at the millionth row as at the first)."""
    query = select(Decision).where(Decision.tenant == tenant)
    if action is not None:
        query = query.where(Decision.action == action)
    if label is not None:
        query = query.where(Decision.label == label)
    if since is not None:
        query = query.where(Decision.decided_at >= since)
    if until is not None:
        query = query.where(Decision.decided_at < until)
    if before is not None:
        query = query.where(tuple_(Decision.decided_at, Decision.id) < tuple_(*before))
    return list(session.scalars(query.order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(limit)))


def record_decisions(session: Session, payloads: list[dict], asset_pks: list[int | None], message_ids: list[str],
                     kind: str = "decision") -> set[str]:
    """Insert the decisions whose public payloads are `payloads` and, for each one that was new, its
    outbox message (`message_ids[i]`, the payload itself); returns the event ids that were new.

    The batch's JSON is encoded once, sent as one parameter and read by both inserts: each event's
    decision and its outbox copy come from the same text. An event that has a decision already is
    left alone and gets no second message, so a re-run writes nothing twice."""
    if not payloads:
        return set()
    rows = session.execute(text("""
        WITH p AS (
            SELECT d.value AS p, pk.asset_pk, m.message_id
            FROM jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS d(value, n)
            JOIN unnest(CAST(:asset_pks AS bigint[])) WITH ORDINALITY AS pk(asset_pk, n) USING (n)
            JOIN unnest(CAST(:message_ids AS text[])) WITH ORDINALITY AS m(message_id, n) USING (n)
        ), new AS (
            INSERT INTO decisions (tenant, event_id, asset_id, asset_pk, action, label, score, labels, anomaly,
                                   neighbors, reason, embedding_model, policy_version, bank_version, hash_matches,
                                   hash_missed, ocr, evidence_source, decided_at)
            SELECT p->>'tenant', p->>'event_id', p->>'asset_id', asset_pk, p->>'action', p->>'label',
                   (p->>'score')::float8, p->'labels', nullif(p->'anomaly', 'null'), p->'neighbors', p->>'reason',
                   p->>'embedding_model', p->>'policy_version', (p->>'bank_version')::int, p->'hash_matches',
                   nullif(p->'hash_missed', 'null'), nullif(p->'ocr', 'null'), p->>'evidence_source',
                   (p->>'decided_at')::timestamptz
            FROM p
            ON CONFLICT (tenant, event_id) DO NOTHING
            RETURNING tenant, event_id
        ), queued AS (
            INSERT INTO outbox (tenant, kind, message_id, payload, attempts)
            SELECT new.tenant, :kind, p.message_id, p.p, 0 FROM new JOIN p ON p.p->>'event_id' = new.event_id
            ON CONFLICT (tenant, message_id) DO NOTHING
        )
        SELECT tenant, event_id FROM new
    """), {
        "payloads": json.dumps(payloads), "asset_pks": list(asset_pks), "message_ids": list(message_ids),
        "kind": kind}).all()
    message_of = {p["event_id"]: m for p, m in zip(payloads, message_ids)}
    by_tenant: dict[str, list[str]] = {}
    for tenant, event_id in rows:
        by_tenant.setdefault(tenant, []).append(message_of[event_id])
    fan_out_to_subscriptions(session, by_tenant)
    return {event_id for _, event_id in rows}
