"""Distance-based anomaly scoring. Pure: arrays in, plain results out.

The score of an item is its cosine distance to the k-th nearest exemplar of the bank. The
threshold is the given quantile of the same statistic over the bank itself (each exemplar
scored leave-one-out against the others), so it adapts to how tight each bank and each
embedding model are without a hand-set number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnomalyResult:
    score: float
    threshold: float
    flagged: bool

    def as_dict(self) -> dict:
        return {"score": round(self.score, 6), "threshold": round(self.threshold, 6), "flagged": self.flagged}


def kth_distance(sorted_distances: list[float], k: int) -> float:
    """Distance to the k-th nearest neighbour; with fewer than k, the farthest one (or 1.0 if none)."""
    if not sorted_distances:
        return 1.0
    return float(sorted_distances[min(k, len(sorted_distances)) - 1])


def bank_threshold(vectors: np.ndarray, k: int, quantile: float) -> float:
    """Quantile of leave-one-out k-th-NN cosine distances among L2-normalised bank vectors."""
    n = len(vectors)
    if n < 2:
        return 1.0
    k = min(k, n - 1)
    vectors = np.asarray(vectors, dtype=np.float32)
    kth = np.empty(n, dtype=np.float32)
    for start in range(0, n, 1024):  # blocks keep memory at 1024 × n
        sims = vectors[start:start + 1024] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, rows + start] = -np.inf  # leave the exemplar itself out
        kth_sim = np.partition(sims, -k, axis=1)[:, -k]
        kth[start:start + sims.shape[0]] = 1.0 - kth_sim
    return float(np.quantile(kth, quantile))


def score(sorted_distances: list[float], k: int, threshold: float) -> AnomalyResult:
    value = kth_distance(sorted_distances, k)
    return AnomalyResult(score=value, threshold=threshold, flagged=value > threshold)
