"""Embedding with a content-hash cache: identical bytes, model, dims and task are embedded once.

Concurrent duplicates serialise on a transaction-scoped advisory lock per content key, so the
second waits for the first's commit and then finds its vector instead of paying for another call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from governance import repository
from governance.assets import LoadedAsset
from governance.embedders import Embedder, EmbeddingError, Task


class InvalidEmbedding(Exception):
    """The embedder returned something that is not a usable vector: never retried."""


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
        raise InvalidEmbedding(f"invalid_embedding: shape {vector.shape}, expected ({dims},)")
    if not np.all(np.isfinite(vector)):
        raise InvalidEmbedding("invalid_embedding: NaN or Inf in vector")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise InvalidEmbedding("invalid_embedding: zero vector")
    return vector / norm


def embed_with_cache(session: Session, embedder: Embedder, tenant: str, assets: list[LoadedAsset],
                     task: Task) -> list[Embedded]:
    """One vector per asset, in order; raises EmbeddingError (transient or not) or InvalidEmbedding."""
    keys = [task_key(embedder, task, a.content.modality) for a in assets]
    model, dims = embedder.model_id, embedder.dims
    repository.lock_contents(session, [repository.content_lock_key(tenant, a.sha256, model, dims, key)
                                       for a, key in zip(assets, keys)])
    cached: dict[str, dict[str, np.ndarray]] = {
        key: repository.cached_vectors(session, tenant, [a.sha256 for a, k in zip(assets, keys) if k == key],
                                       model, dims, key) for key in set(keys)}
    results: list[Embedded | None] = []
    missing: list[int] = []
    for i, (asset, key) in enumerate(zip(assets, keys)):
        vector = cached[key].get(asset.sha256)
        results.append(None if vector is None else Embedded(vector, key, True))
        if vector is None:
            missing.append(i)
    if missing:
        vectors = embedder.embed([assets[i].content for i in missing], task)
        if len(vectors) != len(missing):
            raise InvalidEmbedding(f"invalid_embedding: {len(vectors)} vectors for {len(missing)} inputs")
        for i, vector in zip(missing, vectors):
            results[i] = Embedded(check_vector(vector, embedder.dims), keys[i], False)
    return results  # type: ignore[return-value]


__all__ = ["Embedded", "EmbeddingError", "InvalidEmbedding", "embed_with_cache", "task_key", "check_vector"]
