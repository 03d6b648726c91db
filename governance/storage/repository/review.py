"""The audit log and the review loop."""
from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.repository._sql import vector_literal, vector_sql
from governance.storage.tables import AuditEntry, Decision, ReviewItem


def insert_audit(session: Session, *, tenant: str, kind: str, asset_id: str | None = None,
                 event_id: str | None = None, who: str | None = None, before: dict | None = None,
                 after: dict | None = None) -> AuditEntry:
    entry = AuditEntry(tenant=tenant, kind=kind, asset_id=asset_id, event_id=event_id, who=who, before=before,
                       after=after, at=func.clock_timestamp())
    session.add(entry)
    session.flush()
    session.refresh(entry, ["at"])
    return entry


def audit_entries(session: Session, tenant: str, asset_id: str | None = None, kind: str | None = None
                  ) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.tenant == tenant)
    if asset_id is not None:
        query = query.where(AuditEntry.asset_id == asset_id)
    if kind is not None:
        query = query.where(AuditEntry.kind == kind)
    return list(session.scalars(query.order_by(AuditEntry.id)))


def _overridden(tenant: str):
    return (select(AuditEntry.id).where(AuditEntry.tenant == tenant, AuditEntry.kind == "override",
                                        AuditEntry.event_id == Decision.event_id).exists())


# The review queue is two sources merged oldest first; a position in it is (opened at, source, id)
# with source 0 for decisions and 1 for review items, so a page can start after any row of either.
ReviewPosition = tuple[datetime, int, int]


def _after(opened_at, source: int, pk, after: ReviewPosition | None):
    if after is None:
        return True
    return tuple_(opened_at, literal(source), pk) > tuple_(literal(after[0]), literal(after[1]), literal(after[2]))


def pending_review_decisions(session: Session, tenant: str, limit: int,
                             after: ReviewPosition | None = None) -> list[Decision]:
    """Decisions that went to review and that nobody has overridden yet, oldest first."""
    return list(session.scalars(
        select(Decision).where(Decision.tenant == tenant, Decision.action == "review", ~_overridden(tenant),
                               _after(Decision.decided_at, 0, Decision.id, after))
        .order_by(Decision.decided_at, Decision.id).limit(limit)))


def open_review_items(session: Session, tenant: str, limit: int, asset_pk: int | None = None,
                      after: ReviewPosition | None = None) -> list[ReviewItem]:
    query = select(ReviewItem).where(ReviewItem.tenant == tenant, ReviewItem.status == "open",
                                     _after(ReviewItem.created_at, 1, ReviewItem.id, after))
    if asset_pk is not None:
        query = query.where(ReviewItem.asset_pk == asset_pk)
    return list(session.scalars(query.order_by(ReviewItem.created_at, ReviewItem.id).limit(limit)))


def insert_review_item(session: Session, *, tenant: str, asset_pk: int, asset_id: str, event_id: str | None,
                       reason: str, label: str, trigger_asset_id: str, distance: float) -> int | None:
    """Open a review item; None when the same match was already opened (idempotent)."""
    stmt = insert(ReviewItem).values(tenant=tenant, asset_pk=asset_pk, asset_id=asset_id, event_id=event_id,
                                     reason=reason, label=label, trigger_asset_id=trigger_asset_id,
                                     distance=distance, status="open")
    stmt = stmt.on_conflict_do_nothing(index_elements=["tenant", "asset_pk", "trigger_asset_id", "label"])
    return session.scalar(stmt.returning(ReviewItem.id))


def resolve_review_items(session: Session, tenant: str, asset_pk: int, who: str | None) -> int:
    result = session.execute(update(ReviewItem).where(
        ReviewItem.tenant == tenant, ReviewItem.asset_pk == asset_pk, ReviewItem.status == "open",
    ).values(status="resolved", resolved_at=func.clock_timestamp(), resolved_by=who))
    return result.rowcount or 0


def recently_allowed_near(session: Session, tenant: str, model: str, dims: int, tasks: list[str],
                          vector: np.ndarray, max_distance: float, since: datetime,
                          exclude_asset_pk: int | None = None) -> list[tuple[int, str, str, float]]:
    """(asset_pk, asset_id, event_id, distance) of assets whose latest decision since `since` is
    `allow` and whose stored vector lies within `max_distance` of `vector`. An exact scan over the
    window's decisions: uploads are not in the bank, so the HNSW bank index does not cover them."""
    column, cast = vector_sql(dims)
    rows = session.execute(text(f"""
        WITH latest AS (
            SELECT DISTINCT ON (d.asset_pk) d.asset_pk, d.asset_id, d.event_id, d.action
            FROM decisions d
            WHERE d.tenant = :tenant AND d.decided_at >= :since AND d.asset_pk IS NOT NULL
              AND d.asset_pk IS DISTINCT FROM CAST(:exclude AS bigint)
            ORDER BY d.asset_pk, d.decided_at DESC, d.id DESC
        )
        SELECT l.asset_pk, l.asset_id, l.event_id, min(e.{column}::{cast} <=> CAST(:q AS {cast})) AS distance
        FROM latest l
        JOIN embeddings e ON e.asset_pk = l.asset_pk AND e.tenant = :tenant
        WHERE l.action = 'allow' AND e.model = :model AND e.dims = {int(dims)} AND e.task = ANY(:tasks)
        GROUP BY l.asset_pk, l.asset_id, l.event_id
        HAVING min(e.{column}::{cast} <=> CAST(:q AS {cast})) <= :max_distance
        ORDER BY distance, l.asset_id
    """), {"tenant": tenant, "since": since, "exclude": exclude_asset_pk, "model": model, "tasks": list(tasks),
           "q": vector_literal(vector), "max_distance": float(max_distance)})
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]
