"""Assigning rows outside the HDBSCAN sample to the clusters found in it. Pure numpy, chunked.

HDBSCAN holds a cluster together at the mutual-reachability scale of its members: a member's core
distance is the distance to its min_samples-th nearest neighbour (itself included), and the
cluster's members are linked below about the largest of those. A new row x is measured the same
way against the cluster's sampled members only: its core distance there is the distance to its
(min_samples - 1)-th nearest sampled member (x counts itself first), at the same sampling density
as the members' own core distances, so the two compare without rescaling for the sample fraction.
x joins the cluster whose core distance is smallest among those where it is within the cluster's
reach (the REACH_PERCENTILE-th percentile of its members' core distances), else it is noise.

The test is exact against each candidate cluster's sampled members; only the candidates are
narrowed, to the ASSIGN_CANDIDATES clusters with the nearest centroids, so the cost per row is
those clusters' sampled sizes times the reduced dimension, and memory stays bounded by blocks of
at most _BLOCK_ENTRIES distances.

Compared with the rule it replaced (nearest centroid within the cluster's p95 member-to-centroid
radius), a non-convex or elongated cluster keeps its own shape, and a background row next to a
cluster's rim but far from any of its members is left as noise, as the unsampled run leaves it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ASSIGN_CANDIDATES = 3
# A cluster's reach: not its maximum core distance, which a single stray member sets; p95 is what
# measured closest to the unsampled run's membership (bench/bench_clustering.py, agreement row).
REACH_PERCENTILE = 95.0
_BLOCK_ENTRIES = 1 << 22  # float32 distances per block: 16 MB
# Exact-duplicate waves have reach 0, and float32 PCA rows of equal inputs can differ in the last bits.
_TOLERANCE = 1e-5


@dataclass(frozen=True)
class SampledCluster:
    members: np.ndarray  # (m, r) float32 reduced rows of the cluster's sampled members
    squared_norms: np.ndarray  # (m,) float64
    centroid: np.ndarray  # (r,) float64
    reach: float

    @classmethod
    def of(cls, members: np.ndarray, min_samples: int) -> SampledCluster:
        members = np.ascontiguousarray(members, dtype=np.float32)
        squared = (members.astype(np.float64) ** 2).sum(axis=1)
        # Among the members themselves each row's own zero distance counts, as in HDBSCAN's core distance.
        core = _kth_distance(members, members, squared, min_samples - 1)
        return cls(members, squared, members.mean(axis=0, dtype=np.float64),
                   float(np.percentile(core, REACH_PERCENTILE)))


def _kth_distance(rows: np.ndarray, members: np.ndarray, member_sq: np.ndarray, kth: int) -> np.ndarray:
    """For each row, the distance to its kth-nearest (0-based) member, in blocks of bounded size."""
    m = members.shape[0]
    kth = min(max(kth, 0), m - 1)
    out = np.empty(rows.shape[0], dtype=np.float64)
    step = max(1, _BLOCK_ENTRIES // max(m, 1))
    for start in range(0, rows.shape[0], step):
        block = rows[start:start + step].astype(np.float64)
        sq = (block ** 2).sum(axis=1)[:, None] - 2.0 * (block @ members.T.astype(np.float64)) + member_sq[None, :]
        out[start:start + step] = np.sqrt(np.maximum(np.partition(sq, kth, axis=1)[:, kth], 0.0))
    return out


def core_distances(rows: np.ndarray, cluster: SampledCluster, min_samples: int) -> np.ndarray:
    """Core distance of rows that are not members, measured against the cluster's sampled members."""
    return _kth_distance(rows, cluster.members, cluster.squared_norms, min_samples - 2)


def assign_rows(rows: np.ndarray, clusters: list[SampledCluster], centroids: np.ndarray,
                min_samples: int) -> np.ndarray:
    """Cluster index per row (reduced space), or -1 for noise."""
    n, k = rows.shape[0], len(clusters)
    if k == 0 or n == 0:
        return np.full(n, -1, dtype=np.int64)
    block = rows.astype(np.float64)
    to_centroid = ((block ** 2).sum(axis=1)[:, None] - 2.0 * block @ centroids.T
                   + (centroids ** 2).sum(axis=1)[None, :])
    candidates = np.argsort(to_centroid, axis=1, kind="stable")[:, :min(ASSIGN_CANDIDATES, k)]
    best = np.full(n, np.inf)
    label = np.full(n, -1, dtype=np.int64)
    for c in np.unique(candidates):
        asked = np.flatnonzero((candidates == c).any(axis=1))
        core = core_distances(rows[asked], clusters[c], min_samples)
        better = (core <= clusters[c].reach + _TOLERANCE) & (core < best[asked])
        best[asked[better]] = core[better]
        label[asked[better]] = c
    return label
