"""kNN against small exemplar banks in process: the bank's vectors are cached per bank version.

A bank of a few thousand vectors is searched exactly with one matrix product faster than
PostgreSQL walks its HNSW graph once per query, and exact search is never less accurate. Every
change to a bank bumps its version in the same transaction (banks.py, review.py), and the version
is read in the deciding transaction, so a cached bank is never older than what that transaction
sees. (So a transaction that changes a bank must not also decide uploads and then roll back:
none does; edits and decisions are separate tasks and commands.) Banks above
GOVERNANCE_KNN_CACHE_VECTORS vectors, or past the cache's total budget, are
searched by repository.nearest_exemplars (HNSW) as before.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from governance.storage import repository
from governance.storage.rows import Neighbor

MAX_BANKS = 1024  # entries, counting the "too large" markers that spare a reload per batch


@dataclass(frozen=True)
class Bank:
    vectors: np.ndarray  # (n, dims) float32, L2-normalised, one row per stored exemplar vector
    exemplars: list[list[tuple[str, str, str]]]  # per row: (asset_id, label, polarity) of its enabled exemplars
    modalities: list[str] | None = None  # per row: the modality of the vector (None: not known, no filter)


def exact_neighbors(bank: Bank, queries: list[np.ndarray], k: int,
                    modalities: frozenset[str] | None = None) -> list[list[Neighbor]]:
    """The k nearest bank vectors of each query by cosine distance, expanded to their exemplars and
    ordered by (distance, asset_id): what the SQL kNN returns, computed exactly. Pure. With
    `modalities`, only the bank's vectors of those modalities (e.g. the text exemplars) count."""
    if modalities is not None and bank.modalities is not None:
        keep = [i for i, m in enumerate(bank.modalities) if m in modalities]
        bank = Bank(vectors=bank.vectors[keep], exemplars=[bank.exemplars[i] for i in keep])
    if not queries or len(bank.vectors) == 0:
        return [[] for _ in queries]
    distances = 1.0 - np.asarray(queries, dtype=np.float32) @ bank.vectors.T
    k = min(k, len(bank.vectors))
    found = []
    for row in distances:
        nearest = np.argpartition(row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        found.append(sorted((Neighbor(asset_id=a, label=label, polarity=polarity, distance=float(row[i]))
                             for i in nearest for a, label, polarity in bank.exemplars[i]),
                            key=lambda n: (n.distance, n.asset_id)))
    return found


class BankCache:
    """Banks by (tenant, model, dims, task), each stored with its version; least recently used out first."""

    def __init__(self, max_vectors: int):
        self.max_vectors = max_vectors
        self._banks: OrderedDict[tuple, tuple[int, Bank | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, tenant: str, model: str, dims: int, task: str, version: int) -> Bank | None:
        """The bank at `version`, loaded on a miss; None when it is too large to hold (use HNSW)."""
        key = (tenant, model, dims, task)
        with self._lock:
            entry = self._banks.get(key)
            if entry is not None and entry[0] == version:
                self._banks.move_to_end(key)
                return entry[1]
        rows = repository.bank_exemplar_vectors(session, tenant, model, dims, task, self.max_vectors + 1)
        bank = None
        if len(rows) <= self.max_vectors:
            by_row: dict[int, int] = {}
            vectors, exemplars, modalities = [], [], []
            for embedding_id, vector, asset_id, label, polarity, modality in rows:
                if embedding_id not in by_row:
                    by_row[embedding_id] = len(vectors)
                    vectors.append(vector)
                    exemplars.append([])
                    modalities.append(modality)
                exemplars[by_row[embedding_id]].append((asset_id, label, polarity))
            matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dims), dtype=np.float32)
            bank = Bank(vectors=matrix, exemplars=exemplars, modalities=modalities)
        with self._lock:
            self._banks[key] = (version, bank)
            self._banks.move_to_end(key)
            while len(self._banks) > MAX_BANKS or sum(
                    len(b.vectors) for _, b in self._banks.values() if b is not None) > self.max_vectors:
                self._banks.popitem(last=False)
        return bank


_caches: dict[int, BankCache] = {}


def nearest(session: Session, tenant: str, model: str, dims: int, task: str, vectors: list[np.ndarray], k: int,
            version: int, *, cache_vectors: int, ef_search: int, iterative_scan: str,
            modalities: frozenset[str] | None = None) -> list[list[Neighbor]]:
    """Neighbours of each vector: exactly from the cached bank, or by HNSW when it is not cached;
    among the exemplars of `modalities` only, when given."""
    cache = _caches.setdefault(cache_vectors, BankCache(cache_vectors)) if cache_vectors > 0 else None
    bank = cache.get(session, tenant, model, dims, task, version) if cache is not None else None
    if bank is not None:
        return exact_neighbors(bank, vectors, k, modalities)
    return repository.nearest_exemplars(session, tenant, model, dims, task, vectors, k, ef_search=ef_search,
                                        iterative_scan=iterative_scan,
                                        modalities=sorted(modalities) if modalities is not None else None)
