"""All SQL lives here. Every function takes the session and the tenant and filters on it.

Functions flush, never commit: the worker or CLI that owns the session decides when.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np
from sqlalchemy import String, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.classify import Neighbor
from governance.models import (
    HALFVEC_ABOVE_DIMS, AnomalyBaseline, Asset, Bank, Cluster, ClusterReport, DeadLetter, Decision,
    Embedding, Event, Exemplar, OutboxMessage,
)


def _vector_sql(dims: int) -> tuple[str, str]:
    """(column, cast) that match the partial HNSW index expressions of the migration."""
    if dims > HALFVEC_ABOVE_DIMS:
        return "vector_half", f"halfvec({dims})"
    return "vector", f"vector({dims})"


def as_array(value) -> np.ndarray:
    """pgvector returns numpy for vector and a HalfVector object for halfvec."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


# --- events (the inbox) -------------------------------------------------------------------

def record_events(session: Session, rows: list[dict]) -> list[tuple[str, str]]:
    """Insert accepted events; return the (tenant, event_id) pairs that were new."""
    if not rows:
        return []
    stmt = insert(Event).values(rows).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
    return [tuple(r) for r in session.execute(stmt.returning(Event.tenant, Event.event_id))]


def lock_event(session: Session, tenant: str, event_id: str) -> Event | None:
    """Row-lock the event so concurrent deliveries of it run one after the other."""
    return session.scalars(
        select(Event).where(Event.tenant == tenant, Event.event_id == event_id).with_for_update()
    ).one_or_none()


def count_attempt(session: Session, tenant: str, event_id: str) -> int | None:
    """Count one delivery attempt; the broker keeps no such count, so Postgres does."""
    return session.scalar(
        update(Event).where(Event.tenant == tenant, Event.event_id == event_id)
        .values(attempts=Event.attempts + 1, last_attempt_at=func.now()).returning(Event.attempts)
    )


def set_event_status(session: Session, tenant: str, event_id: str, status: str) -> None:
    session.execute(update(Event).where(Event.tenant == tenant, Event.event_id == event_id).values(status=status))


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


# --- assets and embeddings --------------------------------------------------------------------

def upsert_asset(session: Session, tenant: str, asset_id: str, **fields) -> int:
    stmt = insert(Asset).values(tenant=tenant, asset_id=asset_id, **fields)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_id"],
                                      set_={getattr(Asset, name): value for name, value in fields.items()})
    return session.scalar(stmt.returning(Asset.id))


def lock_content(session: Session, tenant: str, sha256: str, model: str, dims: int, task: str) -> None:
    """Serialise embedding of identical content so concurrent duplicates make one call."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"{tenant}|{sha256}|{model}|{dims}|{task}"})


def cached_vector(session: Session, tenant: str, sha256: str, model: str, dims: int, task: str) -> np.ndarray | None:
    column, _ = _vector_sql(dims)
    row = session.execute(
        select(getattr(Embedding, column)).where(
            Embedding.tenant == tenant, Embedding.sha256 == sha256, Embedding.model == model,
            Embedding.dims == dims, Embedding.task == task,
        ).limit(1)
    ).first()
    return None if row is None else as_array(row[0])


def store_embedding(session: Session, *, tenant: str, asset_pk: int, sha256: str, modality: str, model: str,
                    dims: int, task: str, vector: np.ndarray, in_bank: bool = False) -> None:
    column, _ = _vector_sql(dims)
    values = dict(tenant=tenant, asset_pk=asset_pk, sha256=sha256, modality=modality, model=model, dims=dims,
                  task=task, in_bank=in_bank, **{column: np.asarray(vector, dtype=np.float32)})
    stmt = insert(Embedding).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["asset_pk", "model", "dims", "task"],
        set_={column: stmt.excluded[column], "sha256": sha256, "modality": modality,
              "in_bank": Embedding.in_bank | stmt.excluded.in_bank},
    ))


def nearest_exemplars(session: Session, tenant: str, model: str, dims: int, task: str,
                      vector: np.ndarray, k: int, ef_search: int = 100) -> list[Neighbor]:
    column, cast = _vector_sql(dims)
    # Iterative scans (pgvector 0.8) keep walking the graph when the tenant filter removes
    # candidates, so a filtered query still returns k rows.
    session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    session.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), k)}"))
    rows = session.execute(text(f"""
        WITH nearest AS (
            SELECT e.asset_pk, (e.{column}::{cast} <=> CAST(:q AS {cast})) AS distance
            FROM embeddings e
            WHERE e.dims = {int(dims)} AND e.in_bank AND e.tenant = :tenant AND e.model = :model AND e.task = :task
            ORDER BY e.{column}::{cast} <=> CAST(:q AS {cast})
            LIMIT :k
        )
        SELECT a.asset_id, x.label, x.polarity, n.distance
        FROM nearest n
        JOIN assets a ON a.id = n.asset_pk AND a.tenant = :tenant
        JOIN exemplars x ON x.asset_pk = n.asset_pk AND x.tenant = :tenant AND x.enabled
        ORDER BY n.distance, a.asset_id
    """), {"q": _literal(vector), "tenant": tenant, "model": model, "task": task, "k": k})
    return [Neighbor(asset_id=r[0], label=r[1], polarity=r[2], distance=float(r[3])) for r in rows]


def bank_vectors(session: Session, tenant: str, model: str, dims: int, task: str, modality: str,
                 limit: int) -> np.ndarray:
    column, _ = _vector_sql(dims)
    rows = session.execute(
        select(getattr(Embedding, column)).where(
            Embedding.tenant == tenant, Embedding.model == model, Embedding.dims == dims,
            Embedding.task == task, Embedding.modality == modality, Embedding.in_bank,
        ).order_by(func.md5(Embedding.id.cast(String))).limit(limit)  # a stable pseudo-random sample
    ).scalars().all()
    if not rows:
        return np.zeros((0, dims), dtype=np.float32)
    return np.stack([as_array(r) for r in rows])


# --- exemplar banks ----------------------------------------------------------------------------

def add_exemplar(session: Session, tenant: str, asset_pk: int, label: str, *, polarity: str = "positive",
                 source: str = "import", created_by: str | None = None) -> bool:
    stmt = insert(Exemplar).values(tenant=tenant, asset_pk=asset_pk, label=label, polarity=polarity,
                                   source=source, created_by=created_by, enabled=True)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_pk", "label"],
                                      set_={"polarity": polarity, "enabled": True})
    session.execute(stmt)
    session.execute(update(Embedding).where(Embedding.tenant == tenant, Embedding.asset_pk == asset_pk)
                    .values(in_bank=True))
    return True


def bump_bank_version(session: Session, tenant: str) -> int:
    stmt = insert(Bank).values(tenant=tenant, version=1)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant"],
                                      set_={"version": Bank.version + 1, "updated_at": func.now()})
    return session.scalar(stmt.returning(Bank.version))


def bank_version(session: Session, tenant: str) -> int:
    return session.scalar(select(Bank.version).where(Bank.tenant == tenant)) or 0


def anomaly_threshold(session: Session, tenant: str, model: str, dims: int, modality: str, bank_version: int,
                      k: int) -> float | None:
    return session.scalar(select(AnomalyBaseline.threshold).where(
        AnomalyBaseline.tenant == tenant, AnomalyBaseline.model == model, AnomalyBaseline.dims == dims,
        AnomalyBaseline.modality == modality, AnomalyBaseline.bank_version == bank_version,
        AnomalyBaseline.k == k,
    ))


def store_anomaly_threshold(session: Session, *, tenant: str, model: str, dims: int, modality: str,
                            bank_version: int, k: int, threshold: float, sample_size: int) -> None:
    stmt = insert(AnomalyBaseline).values(tenant=tenant, model=model, dims=dims, modality=modality,
                                          bank_version=bank_version, k=k, threshold=threshold,
                                          sample_size=sample_size)
    session.execute(stmt.on_conflict_do_nothing())


# --- decisions, dead letters, outbox --------------------------------------------------------------

def decision_exists(session: Session, tenant: str, event_id: str) -> bool:
    return session.scalar(select(func.count()).select_from(Decision)
                          .where(Decision.tenant == tenant, Decision.event_id == event_id)) > 0


def insert_decision(session: Session, row: dict) -> int | None:
    stmt = insert(Decision).values(**row).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
    return session.scalar(stmt.returning(Decision.id))


def insert_dead_letter(session: Session, *, tenant: str, event_id: str, reason: str, attempts: int,
                       payload: dict | None) -> None:
    stmt = insert(DeadLetter).values(tenant=tenant, event_id=event_id, reason=reason, attempts=attempts,
                                     payload=payload)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "event_id"]))


def enqueue_outbox(session: Session, *, tenant: str, kind: str, message_id: str, payload: dict) -> None:
    stmt = insert(OutboxMessage).values(tenant=tenant, kind=kind, message_id=message_id, payload=payload)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "message_id"]))


def claim_outbox(session: Session, limit: int) -> list[OutboxMessage]:
    """Due, undelivered messages, locked so that concurrent relays never take the same one."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.available_at <= func.now())
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)
    ))


def iter_decisions(session: Session, tenant: str, since: datetime | None = None) -> Iterator[Decision]:
    query = select(Decision).where(Decision.tenant == tenant)
    if since is not None:
        query = query.where(Decision.decided_at >= since)
    yield from session.scalars(query.order_by(Decision.id).execution_options(yield_per=1000))


def dead_letters(session: Session, tenant: str) -> list[DeadLetter]:
    return list(session.scalars(select(DeadLetter).where(DeadLetter.tenant == tenant).order_by(DeadLetter.id)))


# --- clustering -----------------------------------------------------------------------------------

def recent_assets_for_clustering(session: Session, tenant: str, model: str, dims: int, task: str,
                                 since: datetime, limit: int) -> list[tuple]:
    """(asset_id, vector, text_excerpt, decision label, anomaly flagged, action) for the window's uploads."""
    column, _ = _vector_sql(dims)
    flagged = func.coalesce(Decision.anomaly["flagged"].as_boolean(), False)
    query = (
        select(Asset.asset_id, getattr(Embedding, column), Asset.text_excerpt, Decision.label, flagged, Decision.action)
        .join(Asset, (Asset.id == Embedding.asset_pk) & (Asset.tenant == tenant))
        .join(Decision, (Decision.asset_pk == Embedding.asset_pk) & (Decision.tenant == tenant))
        .where(Embedding.tenant == tenant, Embedding.model == model, Embedding.dims == dims,
               Embedding.task == task, Decision.decided_at >= since)
        .order_by(func.md5(Asset.asset_id)).limit(limit)  # a stable pseudo-random sample when capped
    )
    return [tuple(r) for r in session.execute(query)]


def latest_cluster_report(session: Session, tenant: str) -> ClusterReport | None:
    return session.scalars(select(ClusterReport).where(ClusterReport.tenant == tenant)
                           .order_by(ClusterReport.generated_at.desc(), ClusterReport.id.desc()).limit(1)).first()


def cluster_reports(session: Session, tenant: str, limit: int) -> list[ClusterReport]:
    return list(session.scalars(select(ClusterReport).where(ClusterReport.tenant == tenant)
                                .order_by(ClusterReport.id.desc()).limit(limit)))


def store_cluster_report(session: Session, tenant: str, model: str, report: dict) -> int:
    saved = ClusterReport(tenant=tenant, model=model, report=report)
    session.add(saved)
    session.flush()
    for cluster in report.get("clusters", []):
        session.add(Cluster(
            tenant=tenant, report_pk=saved.id, cluster_id=cluster["cluster_id"], size=cluster["size"],
            status=cluster.get("status", "new"), members=cluster["members"],
            summary={k: v for k, v in cluster.items() if k != "members"},
        ))
    session.flush()
    return saved.id


def tenants_with_recent_decisions(session: Session, since: datetime) -> list[str]:
    return list(session.scalars(select(Decision.tenant).where(Decision.decided_at >= since).distinct()))


def uncount_attempt(session: Session, tenant: str, event_id: str) -> None:
    session.execute(update(Event).where(Event.tenant == tenant, Event.event_id == event_id, Event.attempts > 0)
                    .values(attempts=Event.attempts - 1))
