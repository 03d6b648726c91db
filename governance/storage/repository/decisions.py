"""Decisions and dead letters."""
from __future__ import annotations

from datetime import datetime
from typing import Iterator

import numpy as np
from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.repository._sql import vector_sql, as_array
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
    return set(session.scalars(select(Decision.event_id).where(Decision.tenant == tenant,
                                                               Decision.event_id.in_(event_ids))))


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
