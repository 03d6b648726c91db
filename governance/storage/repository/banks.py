"""Exemplar banks: kNN over the HNSW index, bank vectors and versions, exemplar edits, anomaly baselines."""
from __future__ import annotations

from typing import Iterator

import numpy as np
from sqlalchemy import func, select, String, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.repository._sql import vector_sql, as_array, vector_literal
from governance.storage.rows import Neighbor
from governance.storage.tables import AnomalyBaseline, Asset, Bank, Embedding, Exemplar


def bank_vectors(session: Session, tenant: str, model: str, dims: int, task: str, modality: str,
                 limit: int) -> np.ndarray:
    column, _ = vector_sql(dims)
    rows = session.execute(
        select(getattr(Embedding, column)).where(
            Embedding.tenant == tenant, Embedding.model == model, Embedding.dims == dims,
            Embedding.task == task, Embedding.modality == modality, Embedding.in_bank,
        ).order_by(func.md5(Embedding.id.cast(String))).limit(limit)  # a stable pseudo-random sample
    ).scalars().all()
    if not rows:
        return np.zeros((0, dims), dtype=np.float32)
    return np.stack([as_array(r) for r in rows])


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


def exemplar_page(session: Session, tenant: str, label: str | None, after_pk: int | None,
                  limit: int) -> list[tuple[Exemplar, Asset]]:
    """Exemplars in id order (optionally of one label), starting after the exemplar `after_pk`."""
    query = (select(Exemplar, Asset).join(Asset, (Asset.id == Exemplar.asset_pk) & (Asset.tenant == tenant))
             .where(Exemplar.tenant == tenant))
    if label is not None:
        query = query.where(Exemplar.label == label)
    if after_pk is not None:
        query = query.where(Exemplar.id > after_pk)
    return [(exemplar, asset) for exemplar, asset in session.execute(query.order_by(Exemplar.id).limit(limit))]


def exemplar_counts(session: Session, tenant: str) -> list[tuple[str, str, bool, int]]:
    """(label, polarity, enabled, count) over the tenant's exemplars."""
    rows = session.execute(select(Exemplar.label, Exemplar.polarity, Exemplar.enabled, func.count())
                           .where(Exemplar.tenant == tenant)
                           .group_by(Exemplar.label, Exemplar.polarity, Exemplar.enabled)
                           .order_by(Exemplar.label))
    return [(label, polarity, enabled, count) for label, polarity, enabled, count in rows]


def audit_exemplar_vectors(session: Session, tenant: str, model: str,
                           dims: int) -> list[tuple[Exemplar, Asset, str, np.ndarray]]:
    """(exemplar, asset, task, vector) of every enabled positive exemplar with a vector of one model,
    with the asset rows the bank audit reports (bank_exemplar_vectors below is the kNN cache's)."""
    column, _ = vector_sql(dims)
    query = (select(Exemplar, Asset, Embedding.task, getattr(Embedding, column))
             .join(Asset, (Asset.id == Exemplar.asset_pk) & (Asset.tenant == tenant))
             .join(Embedding, (Embedding.asset_pk == Asset.id) & (Embedding.tenant == tenant)
                   & (Embedding.model == model) & (Embedding.dims == dims))
             .where(Exemplar.tenant == tenant, Exemplar.enabled, Exemplar.polarity == "positive")
             .order_by(Exemplar.id, Embedding.task))
    return [(exemplar, asset, task, as_array(vector)) for exemplar, asset, task, vector in session.execute(query)]


def bank_asset_pks(session: Session, tenant: str, asset_pks: list[int]) -> set[int]:
    """Those of the assets that an enabled exemplar points at."""
    return set(session.scalars(select(Exemplar.asset_pk).where(
        Exemplar.tenant == tenant, Exemplar.asset_pk.in_(asset_pks), Exemplar.enabled)))


def nearest_exemplars(session: Session, tenant: str, model: str, dims: int, task: str, vectors: list[np.ndarray],
                      k: int, ef_search: int, iterative_scan: str) -> list[list[Neighbor]]:
    """The k nearest enabled exemplars of each query vector, in one round trip (a LATERAL HNSW scan
    per vector). Iterative scans (pgvector 0.8) keep walking the graph when the tenant filter
    removes candidates, so a filtered query still returns k rows."""
    if not vectors:
        return []
    column, cast = vector_sql(dims)
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


def bank_exemplar_vectors(session: Session, tenant: str, model: str, dims: int, task: str,
                          limit: int) -> list[tuple[int, np.ndarray, str, str, str]]:
    """(embedding id, vector, asset_id, label, polarity) for every enabled exemplar of the bank:
    the rows nearest_exemplars searches, for an in-process copy (knn_cache.py)."""
    column, _ = vector_sql(dims)
    rows = session.execute(
        select(Embedding.id, getattr(Embedding, column), Asset.asset_id, Exemplar.label, Exemplar.polarity)
        .join(Asset, (Asset.id == Embedding.asset_pk) & (Asset.tenant == tenant))
        .join(Exemplar, (Exemplar.asset_pk == Embedding.asset_pk) & (Exemplar.tenant == tenant) & Exemplar.enabled)
        .where(Embedding.dims == dims, Embedding.in_bank, Embedding.tenant == tenant, Embedding.model == model,
               Embedding.task == task)
        .order_by(Embedding.id, Exemplar.label).limit(limit))
    return [(r[0], as_array(r[1]), r[2], r[3], r[4]) for r in rows]
