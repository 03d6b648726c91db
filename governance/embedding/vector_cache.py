"""Embedding with a content-hash cache: identical bytes, model, dims and task are embedded once.

Concurrent duplicates serialise on a transaction-scoped advisory lock per content key, so the
second waits for the first's commit and then finds its vector instead of paying for another call.
Over-limit content is embedded in windows (governance.embedding.window_embedding); the window vectors are stored
with the content key, in the same transaction, and the pooled vector is what callers get.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from governance.embedding import usage, window_embedding
from governance.embedding.protocol import Embedder, EmbeddingError, Task, UnusableVector
from governance.ingest.assets import LoadedAsset
from governance.storage import repository


def task_key(embedder: Embedder, task: Task, modality: str) -> str:
    """The task a stored vector answers for; 'any' when the backend ignores the task for it."""
    keyed = getattr(embedder, "task_key", None)
    return keyed(task, modality) if keyed else task.value


@dataclass(frozen=True)
class Embedded:
    vector: np.ndarray
    task: str
    cached: bool


def check_vector(vector: np.ndarray, dims: int) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    if vector.shape != (dims,):
        raise UnusableVector(f"invalid_embedding: shape {vector.shape}, expected ({dims},)")
    if not np.all(np.isfinite(vector)):
        raise UnusableVector("invalid_embedding: NaN or Inf in vector")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise UnusableVector("invalid_embedding: zero vector")
    return vector / norm


def embed_with_cache(session: Session, embedder: Embedder, tenant: str, assets: list[LoadedAsset],
                     task: Task) -> list[Embedded]:
    """One vector per asset, in order; raises EmbeddingError (transient or not; UnusableVector among them)."""
    keys = [task_key(embedder, task, a.content.modality) for a in assets]
    model, dims = embedder.model_id, embedder.dims
    repository.lock_contents(session, [repository.content_lock_key(tenant, a.sha256, model, dims, key)
                                       for a, key in zip(assets, keys)])
    cached: dict[str, dict[str, np.ndarray]] = {
        key: repository.cached_vectors(session, tenant, [a.sha256 for a, k in zip(assets, keys) if k == key],
                                       model, dims, key) for key in set(keys)}
    results: list[Embedded | None] = []
    missing: list[int] = []
    first_of: dict[tuple[str, str], int] = {}  # identical content within this call is embedded once
    for i, (asset, key) in enumerate(zip(assets, keys)):
        vector = cached[key].get(asset.sha256)
        results.append(None if vector is None else Embedded(vector, key, True))
        if vector is None and first_of.setdefault((asset.sha256, key), i) == i:
            missing.append(i)
    spent = None
    if missing:
        plans = window_embedding.plan(embedder, [assets[i] for i in missing])
        vectors, spent = usage.embed_measured(embedder, window_embedding.contents(plans), task)
        windowed = window_embedding.combine(plans, vectors)
        for i, result in zip(missing, windowed):
            results[i] = Embedded(check_vector(result.vector, embedder.dims), keys[i], False)
            if result.windows:
                asset = assets[i]
                repository.store_embedding_windows(
                    session, tenant=tenant, sha256=asset.sha256, modality=asset.content.modality,
                    model=embedder.model_id, dims=embedder.dims, task=keys[i],
                    windows=[(w.index, w.unit, w.start, w.end, w.weight, check_vector(v, embedder.dims))
                             for w, v in result.windows])
        for i, (asset, key) in enumerate(zip(assets, keys)):
            if results[i] is None:
                results[i] = Embedded(results[first_of[(asset.sha256, key)]].vector, key, True)
    # In this transaction: the spend is committed exactly when the vectors it paid for are.
    usage.record(session, tenant, embedder, items=len(missing), cached=len(assets) - len(missing), usage=spent)
    return results  # type: ignore[return-value]


def embed_each(session: Session, embedder: Embedder, tenant: str, assets: list[LoadedAsset],
               task: Task) -> list[Embedded | EmbeddingError]:
    """One outcome per asset, in order: its vector, or the permanent EmbeddingError that it alone causes.

    A permanent error is not attributed to an item by the provider, so one input would spoil the
    whole batch: the batch is then embedded item by item (identical contents once) to find which.
    Rare, and it costs a second call for the others; one content needs no second call. Transient
    errors propagate, so the caller can retry.
    """
    unique = list({a.sha256: a for a in assets}.values())
    if not unique:
        return []
    try:
        return list(embed_with_cache(session, embedder, tenant, assets, task))
    except EmbeddingError as exc:
        if exc.transient:
            raise
        if len(unique) == 1:
            return [exc] * len(assets)
    by_sha: dict[str, Embedded | EmbeddingError] = {}
    for asset in unique:
        try:
            (by_sha[asset.sha256],) = embed_with_cache(session, embedder, tenant, [asset], task)
        except EmbeddingError as one:
            if one.transient:
                raise
            by_sha[asset.sha256] = one
    return [by_sha[a.sha256] for a in assets]


__all__ = ["Embedded", "EmbeddingError", "UnusableVector", "embed_each", "embed_with_cache", "task_key",
           "check_vector"]
