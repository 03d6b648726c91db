"""All SQL lives here. Every function takes the session and the tenant and filters on it.

Functions flush, never commit: the worker or CLI that owns the session decides when.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator

import numpy as np
from sqlalchemy import String, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session

from governance.classify import Neighbor
from governance.models import (
    HALFVEC_ABOVE_DIMS, AnomalyBaseline, Asset, Bank, Cluster, ClusterReport, DeadLetter, Decision,
    Embedding, Event, Exemplar, OutboxMessage,
)
from governance.models import EmbeddingWindow


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


# --- row-level security (migration 0002) --------------------------------------------------------

APP_ROLE = "governance_app"


def enter_tenant(session: Session, tenant: str) -> None:
    """For the rest of this transaction, act as the app role and see only `tenant`'s rows.

    Call first in the transaction: PostgreSQL's policies then hide, and refuse to write, any
    other tenant's rows, whatever a later query forgets to filter.
    """
    session.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    session.execute(text("SELECT set_config('governance.tenant', :tenant, true)"), {"tenant": tenant})


def enter_all_tenants(session: Session) -> None:
    """For jobs that are cross-tenant by design (outbox relay, reconciler, fan-outs, metrics)."""
    session.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    session.execute(text("SELECT set_config('governance.all_tenants', 'on', true)"))


# --- events (the inbox) -------------------------------------------------------------------

def record_events(session: Session, rows: list[dict]) -> list[tuple[str, str]]:
    """Insert accepted events; return the (tenant, event_id) pairs that were new."""
    new = []
    # Chunks keep each statement under PostgreSQL's 65,535 bind-parameter limit (6 per row).
    for start in range(0, len(rows), 5000):
        stmt = insert(Event).values(rows[start:start + 5000])
        stmt = stmt.on_conflict_do_nothing(index_elements=["tenant", "event_id"])
        new += [tuple(r) for r in session.execute(stmt.returning(Event.tenant, Event.event_id))]
    return new


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


# --- assets and embeddings --------------------------------------------------------------------

def upsert_asset(session: Session, tenant: str, asset_id: str, **fields) -> int:
    stmt = insert(Asset).values(tenant=tenant, asset_id=asset_id, **fields)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_id"],
                                      set_={getattr(Asset, name): value for name, value in fields.items()})
    return session.scalar(stmt.returning(Asset.id))


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
                      vector: np.ndarray, k: int, ef_search: int = 500,
                      iterative_scan: str = "relaxed_order") -> list[Neighbor]:
    column, cast = _vector_sql(dims)
    # Iterative scans (pgvector 0.8) keep walking the graph when the tenant filter removes
    # candidates, so a filtered query still returns k rows.
    set_knn_scan(session, k, ef_search, iterative_scan)
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
                 source: str = "import", created_by: str | None = None, content: dict | None = None) -> bool:
    stmt = insert(Exemplar).values(tenant=tenant, asset_pk=asset_pk, label=label, polarity=polarity,
                                   source=source, created_by=created_by, enabled=True, content=content)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_pk", "label"],
                                      set_={"polarity": polarity, "enabled": True,
                                            "content": func.coalesce(stmt.excluded.content, Exemplar.content)})
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
    """(asset_id, vector, text_excerpt, decision label, anomaly flagged, action, modality) for the window's uploads.

    One row per asset: the vector of its current content (an asset id re-uploaded with other content
    keeps its old vector under another task key until re-embedded, and must not count twice) with its
    latest decision (every event for the asset is decided, but the asset is one point to cluster).
    """
    column, _ = _vector_sql(dims)
    flagged = func.coalesce(Decision.anomaly["flagged"].as_boolean(), False)
    latest = (
        select(Asset.asset_id, getattr(Embedding, column).label("vector"), Asset.text_excerpt, Decision.label,
               flagged.label("flagged"), Decision.action, Embedding.modality)
        .join(Asset, (Asset.id == Embedding.asset_pk) & (Asset.tenant == tenant) & (Asset.sha256 == Embedding.sha256))
        .join(Decision, (Decision.asset_pk == Embedding.asset_pk) & (Decision.tenant == tenant))
        .where(Embedding.tenant == tenant, Embedding.model == model, Embedding.dims == dims,
               Embedding.task == task, Decision.decided_at >= since)
        .ext(distinct_on(Asset.id)).order_by(Asset.id, Decision.decided_at.desc(), Decision.id.desc())
    ).subquery()
    # A stable pseudo-random sample when capped.
    query = select(latest).order_by(func.md5(latest.c.asset_id)).limit(limit)
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


# =================================================================================================
# --- moderation: policy versions, exemplar bank edits, review loop, delivery log, alerts ----------
# (issue 4; kept in one section so concurrent edits above stay apart)
# =================================================================================================

from governance.models import (  # noqa: E402 - this section's own tables
    AlertState, AuditEntry, OutboxDelivery, PolicyVersion, ReviewItem,
)


# --- policy versions ------------------------------------------------------------------------------

def policy_version_row(session: Session, tenant: str, version: str) -> PolicyVersion | None:
    return session.scalars(select(PolicyVersion).where(PolicyVersion.tenant == tenant,
                                                       PolicyVersion.version == version)).one_or_none()


def insert_policy_version(session: Session, *, tenant: str, version: str, source: str, document: dict,
                          applied_by: str | None) -> PolicyVersion:
    row = PolicyVersion(tenant=tenant, version=version, source=source, document=document, applied_by=applied_by,
                        applied_at=func.clock_timestamp())
    session.add(row)
    session.flush()
    return row


def reapply_policy_version(session: Session, tenant: str, policy_pk: int, applied_by: str | None) -> None:
    """Make an earlier version current again (rollback): `current` is the latest `applied_at`."""
    session.execute(update(PolicyVersion).where(PolicyVersion.tenant == tenant, PolicyVersion.id == policy_pk)
                    .values(applied_at=func.clock_timestamp(), applied_by=applied_by))


def current_policy_ref(session: Session, tenant: str) -> tuple[int, str] | None:
    """(id, version) of the tenant's current policy: one index probe, cheap enough per decision."""
    row = session.execute(
        select(PolicyVersion.id, PolicyVersion.version).where(PolicyVersion.tenant == tenant)
        .order_by(PolicyVersion.applied_at.desc(), PolicyVersion.id.desc()).limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def policy_source(session: Session, tenant: str, policy_pk: int) -> str | None:
    return session.scalar(select(PolicyVersion.source).where(PolicyVersion.tenant == tenant,
                                                             PolicyVersion.id == policy_pk))


def policy_versions(session: Session, tenant: str) -> list[PolicyVersion]:
    return list(session.scalars(select(PolicyVersion).where(PolicyVersion.tenant == tenant)
                                .order_by(PolicyVersion.applied_at.desc(), PolicyVersion.id.desc())))


# --- audit log --------------------------------------------------------------------------------------

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


# --- exemplar bank edits ------------------------------------------------------------------------------

def asset_by_id(session: Session, tenant: str, asset_id: str) -> Asset | None:
    return session.scalars(select(Asset).where(Asset.tenant == tenant, Asset.asset_id == asset_id)).one_or_none()


def exemplars_of_asset(session: Session, tenant: str, asset_pk: int, label: str | None = None) -> list[Exemplar]:
    query = select(Exemplar).where(Exemplar.tenant == tenant, Exemplar.asset_pk == asset_pk)
    if label is not None:
        query = query.where(Exemplar.label == label)
    return list(session.scalars(query.order_by(Exemplar.label).with_for_update()))


def set_exemplar_enabled(session: Session, tenant: str, exemplar_pk: int, enabled: bool) -> None:
    session.execute(update(Exemplar).where(Exemplar.tenant == tenant, Exemplar.id == exemplar_pk)
                    .values(enabled=enabled))


def sync_in_bank(session: Session, tenant: str, asset_pk: int) -> bool:
    """`embeddings.in_bank` is true exactly while an enabled exemplar points at the asset."""
    in_bank = session.scalar(select(func.count()).select_from(Exemplar).where(
        Exemplar.tenant == tenant, Exemplar.asset_pk == asset_pk, Exemplar.enabled)) > 0
    session.execute(update(Embedding).where(Embedding.tenant == tenant, Embedding.asset_pk == asset_pk)
                    .values(in_bank=in_bank))
    return in_bank


def iter_exemplars(session: Session, tenant: str) -> Iterator[tuple[Exemplar, Asset]]:
    query = (select(Exemplar, Asset).join(Asset, (Asset.id == Exemplar.asset_pk) & (Asset.tenant == tenant))
             .where(Exemplar.tenant == tenant).order_by(Exemplar.id))
    for exemplar, asset in session.execute(query.execution_options(yield_per=1000)):
        yield exemplar, asset


def audit_exemplar_vectors(session: Session, tenant: str, model: str,
                           dims: int) -> list[tuple[Exemplar, Asset, str, np.ndarray]]:
    """(exemplar, asset, task, vector) of every enabled positive exemplar with a vector of one model,
    with the asset rows the bank audit reports (bank_exemplar_vectors below is the kNN cache's)."""
    column, _ = _vector_sql(dims)
    query = (select(Exemplar, Asset, Embedding.task, getattr(Embedding, column))
             .join(Asset, (Asset.id == Exemplar.asset_pk) & (Asset.tenant == tenant))
             .join(Embedding, (Embedding.asset_pk == Asset.id) & (Embedding.tenant == tenant)
                   & (Embedding.model == model) & (Embedding.dims == dims))
             .where(Exemplar.tenant == tenant, Exemplar.enabled, Exemplar.polarity == "positive")
             .order_by(Exemplar.id, Embedding.task))
    return [(exemplar, asset, task, as_array(vector)) for exemplar, asset, task, vector in session.execute(query)]


def asset_vectors(session: Session, tenant: str, asset_pk: int, model: str, dims: int) -> list[tuple[str, np.ndarray]]:
    """(task, vector) of every stored vector of one asset for one model."""
    column, _ = _vector_sql(dims)
    rows = session.execute(select(Embedding.task, getattr(Embedding, column)).where(
        Embedding.tenant == tenant, Embedding.asset_pk == asset_pk, Embedding.model == model,
        Embedding.dims == dims))
    return [(task, as_array(vector)) for task, vector in rows]


# --- review loop -----------------------------------------------------------------------------------

def latest_decision_for_asset(session: Session, tenant: str, asset_id: str) -> Decision | None:
    return session.scalars(select(Decision).where(Decision.tenant == tenant, Decision.asset_id == asset_id)
                           .order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(1)
                           .with_for_update()).first()


def _overridden(tenant: str):
    return (select(AuditEntry.id).where(AuditEntry.tenant == tenant, AuditEntry.kind == "override",
                                        AuditEntry.event_id == Decision.event_id).exists())


def pending_review_decisions(session: Session, tenant: str, limit: int) -> list[Decision]:
    """Decisions that went to review and that nobody has overridden yet, oldest first."""
    return list(session.scalars(
        select(Decision).where(Decision.tenant == tenant, Decision.action == "review", ~_overridden(tenant))
        .order_by(Decision.decided_at, Decision.id).limit(limit)))


def open_review_items(session: Session, tenant: str, limit: int, asset_pk: int | None = None) -> list[ReviewItem]:
    query = select(ReviewItem).where(ReviewItem.tenant == tenant, ReviewItem.status == "open")
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
    column, cast = _vector_sql(dims)
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
           "q": _literal(vector), "max_distance": float(max_distance)})
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]


def decisions_with_vectors(session: Session, tenant: str, model: str, dims: int, tasks: list[str],
                           since: datetime | None, limit: int) -> list[tuple[Decision, str, str, np.ndarray]]:
    """(decision, modality, task, vector) for decided uploads that have a stored vector of the model
    under one of `tasks`, newest first."""
    column, _ = _vector_sql(dims)
    query = (select(Decision, Asset.modality, Embedding.task, getattr(Embedding, column))
             .join(Asset, (Asset.id == Decision.asset_pk) & (Asset.tenant == tenant))
             .join(Embedding, (Embedding.asset_pk == Decision.asset_pk) & (Embedding.tenant == tenant))
             .where(Decision.tenant == tenant, Decision.action != "reject", Embedding.model == model,
                    Embedding.dims == dims, Embedding.task.in_(list(tasks))))
    if since is not None:
        query = query.where(Decision.decided_at >= since)
    query = query.order_by(Decision.decided_at.desc(), Decision.id.desc(), Embedding.task).limit(limit)
    return [(d, modality, task, as_array(vector)) for d, modality, task, vector in session.execute(query)]


# --- outbox delivery log ------------------------------------------------------------------------------

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


# --- anomaly alerts --------------------------------------------------------------------------------

_FLAGGED = func.coalesce(Decision.anomaly["flagged"].as_boolean(), False)


def tenants_with_flagged_decisions(session: Session, since: datetime) -> list[str]:
    return list(session.scalars(select(Decision.tenant).where(Decision.decided_at >= since, _FLAGGED).distinct()
                                .order_by(Decision.tenant)))


def lock_alert_state(session: Session, tenant: str, kind: str, initial_cursor: datetime) -> AlertState:
    """The tenant's alert cursor, created at `initial_cursor` if new, row-locked against concurrent beats."""
    session.execute(insert(AlertState).values(tenant=tenant, kind=kind, cursor_at=initial_cursor)
                    .on_conflict_do_nothing(index_elements=["tenant", "kind"]))
    return session.scalars(select(AlertState).where(AlertState.tenant == tenant, AlertState.kind == kind)
                           .with_for_update().execution_options(populate_existing=True)).one()


def flagged_summary(session: Session, tenant: str, start: datetime, end: datetime, top: int) -> dict:
    """Counts of anomaly-flagged decisions in [start, end), by action and label, and the top examples."""
    window = (Decision.tenant == tenant, Decision.decided_at >= start, Decision.decided_at < end, _FLAGGED)
    by_action = dict(session.execute(select(Decision.action, func.count()).where(*window)
                                     .group_by(Decision.action)).all())
    by_label = {label or "(none)": n for label, n in session.execute(
        select(Decision.label, func.count()).where(*window).group_by(Decision.label)).all()}
    score = Decision.anomaly["score"].as_float()
    examples = session.execute(
        select(Decision.event_id, Decision.asset_id, Decision.action, Decision.label, score,
               Decision.anomaly["threshold"].as_float(), Decision.decided_at)
        .where(*window).order_by(score.desc(), Decision.id).limit(top)).all()
    return {
        "flagged": sum(by_action.values()), "by_action": by_action, "by_label": by_label,
        "examples": [{"event_id": e, "asset_id": a, "action": act, "label": lab, "score": s, "threshold": t,
                      "decided_at": at.isoformat()} for e, a, act, lab, s, t, at in examples],
    }


# --- embedding windows (migration 0004) -------------------------------------------------------------

def store_embedding_windows(session: Session, *, tenant: str, sha256: str, modality: str, model: str, dims: int,
                            task: str, windows: list[tuple[int, str, float, float, float, np.ndarray]]) -> None:
    """(index, unit, start, end, weight, vector) rows; a redelivered task finds them already there."""
    column, _ = _vector_sql(dims)
    rows = [dict(tenant=tenant, sha256=sha256, modality=modality, model=model, dims=dims, task=task, window=index,
                 unit=unit, span_start=float(start), span_end=float(end), weight=float(weight),
                 **{column: np.asarray(vector, dtype=np.float32)})
            for index, unit, start, end, weight, vector in windows]
    session.execute(insert(EmbeddingWindow).values(rows).on_conflict_do_nothing(
        index_elements=["tenant", "sha256", "model", "dims", "task", "window"]))


def embedding_windows(session: Session, tenant: str, sha256: str, model: str, dims: int, task: str) -> list[dict]:
    """The stored windows of one content key, in order, with their vectors as numpy arrays."""
    column, _ = _vector_sql(dims)
    rows = session.scalars(select(EmbeddingWindow).where(
        EmbeddingWindow.tenant == tenant, EmbeddingWindow.sha256 == sha256, EmbeddingWindow.model == model,
        EmbeddingWindow.dims == dims, EmbeddingWindow.task == task).order_by(EmbeddingWindow.window)).all()
    return [dict(window=r.window, unit=r.unit, start=r.span_start, end=r.span_end, weight=r.weight,
                 modality=r.modality, vector=as_array(getattr(r, column))) for r in rows]


# --- models and usage (migration 0005): usage accounting, active model per tenant, re-embedding ------

from governance.models import EmbeddingBatchJob, EmbeddingUsage, TenantModel  # noqa: E402 - kept with this block


def add_usage(session: Session, *, tenant: str, day, model: str, dims: int, mode: str, items: int,
              cached_items: int, calls: int, prompt_tokens: int, estimated: bool) -> None:
    stmt = insert(EmbeddingUsage).values(tenant=tenant, day=day, model=model, dims=dims, mode=mode, items=items,
                                         cached_items=cached_items, calls=calls, prompt_tokens=prompt_tokens,
                                         estimated=estimated)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["tenant", "day", "model", "dims", "mode"],
        set_={"items": EmbeddingUsage.items + stmt.excluded["items"],
              "cached_items": EmbeddingUsage.cached_items + stmt.excluded.cached_items,
              "calls": EmbeddingUsage.calls + stmt.excluded.calls,
              "prompt_tokens": EmbeddingUsage.prompt_tokens + stmt.excluded.prompt_tokens,
              "estimated": EmbeddingUsage.estimated | stmt.excluded.estimated, "updated_at": func.now()},
    ))


def usage_totals(session: Session, tenant: str | None, since) -> list[dict]:
    """Sums per (tenant, model, dims, mode) since a UTC day (inclusive); every tenant when None."""
    u = EmbeddingUsage
    query = select(u.tenant, u.model, u.dims, u.mode, func.sum(u.items), func.sum(u.cached_items),
                   func.sum(u.calls), func.sum(u.prompt_tokens), func.bool_or(u.estimated))
    if tenant is not None:
        query = query.where(u.tenant == tenant)
    if since is not None:
        query = query.where(u.day >= since)
    query = query.group_by(u.tenant, u.model, u.dims, u.mode).order_by(u.tenant, u.model, u.dims, u.mode)
    names = ("tenant", "model", "dims", "mode", "items", "cached_items", "calls", "prompt_tokens", "estimated")
    return [dict(zip(names, (*r[:4], int(r[4]), int(r[5]), int(r[6]), int(r[7]), bool(r[8]))))
            for r in session.execute(query)]


def active_tenant_model(session: Session, tenant: str) -> tuple[str, int, str] | None:
    """(spec, dims, model_id) the tenant embeds with; one index probe, cheap enough per decision."""
    row = session.execute(select(TenantModel.spec, TenantModel.dims, TenantModel.model_id)
                          .where(TenantModel.tenant == tenant, TenantModel.active)).first()
    return None if row is None else (row[0], row[1], row[2])


def activate_tenant_model(session: Session, tenant: str, spec: str, dims: int, model_id: str) -> None:
    """Make (spec, dims) the tenant's only active model, in this transaction."""
    session.execute(update(TenantModel).where(TenantModel.tenant == tenant, TenantModel.active)
                    .values(active=False))
    stmt = insert(TenantModel).values(tenant=tenant, spec=spec, dims=dims, model_id=model_id, active=True,
                                      switched_at=func.now())
    session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "spec", "dims"],
                                               set_={"active": True, "model_id": model_id,
                                                     "switched_at": func.now()}))


def lock_tenant_models(session: Session, tenant: str) -> None:
    """Serialise model switches of one tenant (transaction-scoped)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"tenant_models|{tenant}"})


def assets_with_tasks(session: Session, tenant: str, model: str, dims: int) -> list[tuple[int, str, str, set[str]]]:
    """(asset_pk, asset_id, modality, tasks stored under the model) for every asset of the tenant."""
    rows = session.execute(text("""
        SELECT a.id, a.asset_id, a.modality,
               coalesce(array_agg(e.task) FILTER (WHERE e.id IS NOT NULL), '{}')
        FROM assets a
        LEFT JOIN embeddings e ON e.asset_pk = a.id AND e.tenant = :tenant AND e.model = :model AND e.dims = :dims
        WHERE a.tenant = :tenant
        GROUP BY a.id, a.asset_id, a.modality
        ORDER BY a.id
    """), {"tenant": tenant, "model": model, "dims": dims})
    return [(r[0], r[1], r[2], set(r[3])) for r in rows]


def asset_sources(session: Session, tenant: str, asset_pks: list[int]) -> dict[int, dict]:
    """Per asset: the row, whether it is in the bank, and every stored payload it could be re-read
    from (exemplar contents, then upload events newest first)."""
    assets = session.scalars(select(Asset).where(Asset.tenant == tenant, Asset.id.in_(asset_pks))).all()
    out = {a.id: {"asset": a, "in_bank": False, "payloads": []} for a in assets}
    for asset_pk, content, enabled in session.execute(
            select(Exemplar.asset_pk, Exemplar.content, Exemplar.enabled)
            .where(Exemplar.tenant == tenant, Exemplar.asset_pk.in_(asset_pks)).order_by(Exemplar.id.desc())):
        out[asset_pk]["in_bank"] |= bool(enabled)
        if content:
            out[asset_pk]["payloads"].append(content)
    for asset_pk, payload in session.execute(
            select(Decision.asset_pk, Event.payload)
            .join(Event, (Event.tenant == tenant) & (Event.event_id == Decision.event_id))
            .where(Decision.tenant == tenant, Decision.asset_pk.in_(asset_pks))
            .order_by(Decision.decided_at.desc(), Decision.id.desc())):
        out[asset_pk]["payloads"].append(payload)
    return out


def bank_asset_pks(session: Session, tenant: str, asset_pks: list[int]) -> set[int]:
    """Those of the assets that an enabled exemplar points at."""
    return set(session.scalars(select(Exemplar.asset_pk).where(
        Exemplar.tenant == tenant, Exemplar.asset_pk.in_(asset_pks), Exemplar.enabled)))


def insert_batch_job(session: Session, *, tenant: str, job_name: str, model: str, dims: int, task: str,
                     items: list[list]) -> None:
    session.add(EmbeddingBatchJob(tenant=tenant, job_name=job_name, model=model, dims=dims, task=task,
                                  items=items, state="open"))
    session.flush()


def open_batch_jobs(session: Session, tenant: str, model: str, dims: int) -> list[EmbeddingBatchJob]:
    return list(session.scalars(select(EmbeddingBatchJob).where(
        EmbeddingBatchJob.tenant == tenant, EmbeddingBatchJob.model == model, EmbeddingBatchJob.dims == dims,
        EmbeddingBatchJob.state == "open").order_by(EmbeddingBatchJob.id)))


def finish_batch_job(session: Session, tenant: str, job_pk: int, state: str) -> None:
    session.execute(update(EmbeddingBatchJob).where(EmbeddingBatchJob.tenant == tenant, EmbeddingBatchJob.id == job_pk)
                    .values(state=state, finished_at=func.now()))
# --- batched pipeline (governance.process_uploads): one statement for many events -----------------

_LITERAL_FORMATS: dict[int, str] = {}


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form. One %-format over Python floats: ~4x cheaper than a format per numpy scalar."""
    values = np.asarray(vector, dtype=np.float32).tolist()
    template = _LITERAL_FORMATS.get(len(values))
    if template is None:
        template = _LITERAL_FORMATS[len(values)] = "[" + ",".join(["%.7g"] * len(values)) + "]"
    return template % tuple(values)


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


def decided_event_ids(session: Session, tenant: str, event_ids: list[str]) -> set[str]:
    return set(session.scalars(select(Decision.event_id).where(Decision.tenant == tenant,
                                                               Decision.event_id.in_(event_ids))))


def set_events_status(session: Session, tenant: str, event_ids: list[str], status: str) -> None:
    if event_ids:
        session.execute(update(Event).where(Event.tenant == tenant, Event.event_id.in_(event_ids))
                        .values(status=status))


def content_lock_key(tenant: str, sha256: str, model: str, dims: int, task: str) -> str:
    """The advisory-lock key of one content under one model, dims and task, for lock_contents."""
    return f"{tenant}|{sha256}|{model}|{dims}|{task}"


def lock_contents(session: Session, keys: list[str]) -> None:
    """Serialise embedding of identical content, so concurrent duplicates make one call.

    Many contents (content_lock_key()s) in one round trip and one global order.

    The sorted subquery is not flattened (it has an ORDER BY), so the locks are taken row by row
    in that order, and two transactions locking overlapping sets cannot deadlock.
    """
    if keys:
        session.execute(text("""
            SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
            FROM (SELECT DISTINCT k COLLATE "C" AS k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered
        """), {"keys": list(keys)})


def cached_vectors(session: Session, tenant: str, sha256s: list[str], model: str, dims: int,
                   task: str) -> dict[str, np.ndarray]:
    """{sha256: vector} for the contents already embedded under this model, dims and task."""
    column, _ = _vector_sql(dims)
    rows = session.execute(
        select(Embedding.sha256, getattr(Embedding, column)).where(
            Embedding.tenant == tenant, Embedding.sha256.in_(sorted(set(sha256s))), Embedding.model == model,
            Embedding.dims == dims, Embedding.task == task)
    )
    return {sha: as_array(vector) for sha, vector in rows}


def upsert_assets(session: Session, tenant: str, rows: list[dict]) -> dict[str, int]:
    """upsert_asset for many assets in one statement: {asset_id: id}. The last row of an asset wins."""
    unique = list({r["asset_id"]: r for r in rows}.values())
    if not unique:
        return {}
    # Core executemany ("insertmanyvalues"): compiled once and cached, where .values([...]) is
    # compiled anew for every batch; column keys, so `extra` is given as its column `metadata`.
    table = Asset.__table__
    columns = [getattr(Asset, c).expression.name for c in unique[0]]
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=["tenant", "asset_id"],
                                      set_={c: stmt.excluded[c] for c in columns if c != "asset_id"})
    params = [{"tenant": tenant, **{getattr(Asset, c).expression.name: v for c, v in r.items()}} for r in unique]
    result = session.execute(stmt.returning(table.c.asset_id, table.c.id, sort_by_parameter_order=True), params)
    return {asset_id: pk for asset_id, pk in result}


def store_embeddings(session: Session, tenant: str, model: str, dims: int, rows: list[dict]) -> None:
    """store_embedding for many vectors in one statement; rows carry asset_pk, sha256, modality, task, vector."""
    unique = list({(r["asset_pk"], r["task"]): r for r in rows}.values())
    if not unique:
        return
    column, cast = _vector_sql(dims)
    session.execute(text(f"""
        INSERT INTO embeddings (tenant, asset_pk, sha256, modality, model, dims, task, in_bank, {column})
        SELECT :tenant, r.asset_pk, r.sha256, r.modality, :model, :dims, r.task, false, CAST(r.v AS {cast})
        FROM unnest(CAST(:asset_pks AS bigint[]), CAST(:shas AS text[]), CAST(:modalities AS text[]),
                    CAST(:tasks AS text[]), CAST(:vectors AS text[])) AS r(asset_pk, sha256, modality, task, v)
        ON CONFLICT (asset_pk, model, dims, task) DO UPDATE
        SET {column} = excluded.{column}, sha256 = excluded.sha256, modality = excluded.modality
    """), {"tenant": tenant, "model": model, "dims": dims, "asset_pks": [r["asset_pk"] for r in unique],
           "shas": [r["sha256"] for r in unique], "modalities": [r["modality"] for r in unique],
           "tasks": [r["task"] for r in unique], "vectors": [vector_literal(r["vector"]) for r in unique]})


def nearest_exemplars_many(session: Session, tenant: str, model: str, dims: int, task: str,
                           vectors: list[np.ndarray], k: int, ef_search: int,
                           iterative_scan: str) -> list[list[Neighbor]]:
    """nearest_exemplars for many query vectors in one round trip (a LATERAL HNSW scan per vector)."""
    if not vectors:
        return []
    column, cast = _vector_sql(dims)
    set_knn_scan(session, k, ef_search, iterative_scan)
    rows = session.execute(text(f"""
        SELECT q.ord, a.asset_id, x.label, x.polarity, n.distance
        FROM unnest(CAST(:qs AS text[])) WITH ORDINALITY AS q(v, ord)
        CROSS JOIN LATERAL (
            SELECT e.asset_pk, (e.{column}::{cast} <=> CAST(q.v AS {cast})) AS distance
            FROM embeddings e
            WHERE e.dims = {int(dims)} AND e.in_bank AND e.tenant = :tenant AND e.model = :model AND e.task = :task
            ORDER BY e.{column}::{cast} <=> CAST(q.v AS {cast})
            LIMIT :k
        ) n
        JOIN assets a ON a.id = n.asset_pk AND a.tenant = :tenant
        JOIN exemplars x ON x.asset_pk = n.asset_pk AND x.tenant = :tenant AND x.enabled
        ORDER BY q.ord, n.distance, a.asset_id
    """), {"qs": [vector_literal(v) for v in vectors], "tenant": tenant, "model": model, "task": task, "k": k})
    found: list[list[Neighbor]] = [[] for _ in vectors]
    for ord_, asset_id, label, polarity, distance in rows:
        found[ord_ - 1].append(Neighbor(asset_id=asset_id, label=label, polarity=polarity, distance=float(distance)))
    return found


def set_knn_scan(session: Session, k: int, ef_search: int, iterative_scan: str) -> None:
    """The HNSW search settings for the rest of this transaction (see Settings.knn_ef_search)."""
    if iterative_scan not in ("off", "relaxed_order", "strict_order"):
        raise ValueError(f"hnsw.iterative_scan must be off, relaxed_order or strict_order, not {iterative_scan!r}")
    session.execute(text(f"SET LOCAL hnsw.iterative_scan = {iterative_scan}"))
    session.execute(text(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), int(k))}"))


def insert_decisions(session: Session, rows: list[dict]) -> set[str]:
    """insert_decision for many rows; returns the event ids that were new."""
    if not rows:
        return set()
    stmt = insert(Decision.__table__).on_conflict_do_nothing(index_elements=["tenant", "event_id"])
    return set(session.scalars(stmt.returning(Decision.__table__.c.event_id), rows))


def enqueue_outbox_many(session: Session, rows: list[dict]) -> None:
    """enqueue_outbox for many messages; rows carry tenant, kind, message_id, payload."""
    if rows:
        stmt = insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["tenant", "message_id"])
        session.execute(stmt, rows)


def bank_exemplar_vectors(session: Session, tenant: str, model: str, dims: int, task: str,
                          limit: int) -> list[tuple[int, np.ndarray, str, str, str]]:
    """(embedding id, vector, asset_id, label, polarity) for every enabled exemplar of the bank:
    the rows nearest_exemplars searches, for an in-process copy (bank_cache.py)."""
    column, _ = _vector_sql(dims)
    rows = session.execute(
        select(Embedding.id, getattr(Embedding, column), Asset.asset_id, Exemplar.label, Exemplar.polarity)
        .join(Asset, (Asset.id == Embedding.asset_pk) & (Asset.tenant == tenant))
        .join(Exemplar, (Exemplar.asset_pk == Embedding.asset_pk) & (Exemplar.tenant == tenant) & Exemplar.enabled)
        .where(Embedding.dims == dims, Embedding.in_bank, Embedding.tenant == tenant, Embedding.model == model,
               Embedding.task == task)
        .order_by(Embedding.id, Exemplar.label).limit(limit))
    return [(r[0], as_array(r[1]), r[2], r[3], r[4]) for r in rows]
