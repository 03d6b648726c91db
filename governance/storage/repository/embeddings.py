"""Stored vectors and windows, the content-hash cache and its advisory locks."""
from __future__ import annotations

import numpy as np
from sqlalchemy import String, any_, select, text
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.embedding_tables import EmbeddingWindow
from governance.storage.repository._copy import copy_into_staging
from governance.storage.repository._sql import vector_sql, as_array
from governance.storage.tables import Embedding


def asset_vectors(session: Session, tenant: str, asset_pk: int, model: str, dims: int) -> list[tuple[str, np.ndarray]]:
    """(task, vector) of every stored vector of one asset for one model."""
    column, _ = vector_sql(dims)
    rows = session.execute(select(Embedding.task, getattr(Embedding, column)).where(
        Embedding.tenant == tenant, Embedding.asset_pk == asset_pk, Embedding.model == model,
        Embedding.dims == dims))
    return [(task, as_array(vector)) for task, vector in rows]


def store_embedding_windows(session: Session, *, tenant: str, sha256: str, modality: str, model: str, dims: int,
                            task: str, windows: list[tuple[int, str, float, float, float, np.ndarray]]) -> None:
    """(index, unit, start, end, weight, vector) rows; a redelivered task finds them already there."""
    column, _ = vector_sql(dims)
    rows = [dict(tenant=tenant, sha256=sha256, modality=modality, model=model, dims=dims, task=task, window=index,
                 unit=unit, span_start=float(start), span_end=float(end), weight=float(weight),
                 **{column: np.asarray(vector, dtype=np.float32)})
            for index, unit, start, end, weight, vector in windows]
    session.execute(insert(EmbeddingWindow).values(rows).on_conflict_do_nothing(
        index_elements=["tenant", "sha256", "model", "dims", "task", "window"]))


def embedding_windows(session: Session, tenant: str, sha256: str, model: str, dims: int, task: str) -> list[dict]:
    """The stored windows of one content key, in order, with their vectors as numpy arrays."""
    column, _ = vector_sql(dims)
    rows = session.scalars(select(EmbeddingWindow).where(
        EmbeddingWindow.tenant == tenant, EmbeddingWindow.sha256 == sha256, EmbeddingWindow.model == model,
        EmbeddingWindow.dims == dims, EmbeddingWindow.task == task).order_by(EmbeddingWindow.window)).all()
    return [dict(window=r.window, unit=r.unit, start=r.span_start, end=r.span_end, weight=r.weight,
                 modality=r.modality, vector=as_array(getattr(r, column))) for r in rows]


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
    column, _ = vector_sql(dims)
    rows = session.execute(
        select(Embedding.sha256, getattr(Embedding, column)).where(
            Embedding.tenant == tenant, Embedding.sha256 == any_(array(sorted(set(sha256s)), type_=String)),
            Embedding.model == model,
            Embedding.dims == dims, Embedding.task == task)
    )
    return {sha: as_array(vector) for sha, vector in rows}


def store_embeddings(session: Session, tenant: str, model: str, dims: int, rows: list[dict]) -> None:
    """Store vectors: one binary COPY and one statement. Rows carry asset_pk, sha256, modality, task,
    vector and, for exemplars, in_bank=True. A stored vector of the same asset, model, dims and task
    is replaced, and stays in the bank once it is there (a re-upload of an exemplar does not take it out)."""
    unique = list({(r["asset_pk"], r["task"]): r for r in rows}.values())
    if not unique:
        return
    from pgvector import HalfVector, Vector

    column, cast = vector_sql(dims)
    wrap = HalfVector if column == "vector_half" else Vector
    kind = "halfvec" if column == "vector_half" else "vector"
    # Binary: no float is printed by the client nor parsed by the server (the text form cost both).
    copy_into_staging(session, "staged_embeddings", ["asset_pk", "sha256", "modality", "task", "in_bank", column],
                      ["int8", "text", "text", "text", "bool", kind],
                      ((r["asset_pk"], r["sha256"], r["modality"], r["task"], r.get("in_bank", False),
                        wrap(np.asarray(r["vector"], dtype=np.float32))) for r in unique))
    # Moved and emptied in one statement: a second store in the same transaction starts from nothing.
    session.execute(text(f"""
        WITH moved AS (DELETE FROM staged_embeddings RETURNING *)
        INSERT INTO embeddings (tenant, asset_pk, sha256, modality, model, dims, task, in_bank, {column})
        SELECT :tenant, r.asset_pk, r.sha256, r.modality, :model, :dims, r.task, r.in_bank, CAST(r.{column} AS {cast})
        FROM moved r
        ON CONFLICT (tenant, asset_pk, model, dims, task) DO UPDATE
        SET {column} = excluded.{column}, sha256 = excluded.sha256, modality = excluded.modality,
            in_bank = embeddings.in_bank OR excluded.in_bank
    """), {"tenant": tenant, "model": model, "dims": dims})
