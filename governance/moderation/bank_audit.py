"""The numbers of a bank audit. Pure: unit vectors and labels in, findings out; no database here.

One call audits one comparable set of vectors (one model, dims, task and modality), since kNN
only ever compares those. Four kinds of finding:

- `mislabelled`: the distance-weighted vote of an exemplar's own k nearest neighbours (itself
  left out, weights 1/distance as in governance.moderation.vote) gives its label less weight than
  another label. Ranked by how much less: `score` is the winning label's share minus its own.
- `contradiction`: a set of exemplars within `near_duplicate_distance` of each other (exact
  duplicates included) that carries more than one label.
- `outlier`: an exemplar whose nearest neighbour of its own label is farther than the bank's
  typical such distance by `outlier_mads` median absolute deviations (robust to the outliers
  themselves, unlike a mean and standard deviation).
- `thin_label`: a label with fewer exemplars than the vote's k, so its neighbours are mostly
  other labels even for a perfect match.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from governance.moderation.vote import DISTANCE_FLOOR

# Cosine distance below which two exemplars count as the same content; MiniLM puts light rewordings
# of one sentence around 0.03-0.1 apart, an exact copy at 0.
NEAR_DUPLICATE_DISTANCE = 0.02
OUTLIER_MADS = 4.0
BLOCK_ROWS = 1024  # rows of the similarity matrix held at once: memory stays O(BLOCK_ROWS * n)


@dataclass(frozen=True)
class Finding:
    kind: str  # mislabelled | contradiction | outlier | thin_label
    score: float  # larger: more certainly a problem; comparable only within one kind
    members: list[int]  # row indices into the audited arrays (empty for thin_label)
    label: str | None = None  # the label found wrong (mislabelled, outlier) or thin
    detail: dict = field(default_factory=dict)


def neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine distances) of each row's k nearest other rows, nearest first."""
    n = len(vectors)
    k = min(k, n - 1)
    idx = np.zeros((n, max(k, 0)), dtype=np.intp)
    dist = np.zeros((n, max(k, 0)), dtype=np.float32)
    if k <= 0:
        return idx, dist
    for start in range(0, n, BLOCK_ROWS):
        block = 1.0 - vectors[start:start + BLOCK_ROWS] @ vectors.T
        rows = np.arange(len(block))
        block[rows, start + rows] = np.inf  # never one's own neighbour
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
        part_dist = np.take_along_axis(block, part, axis=1)
        order = np.argsort(part_dist, axis=1, kind="stable")
        idx[start:start + len(block)] = np.take_along_axis(part, order, axis=1)
        dist[start:start + len(block)] = np.clip(np.take_along_axis(part_dist, order, axis=1), 0.0, 2.0)
    return idx, dist


def vote_shares(labels: np.ndarray, idx: np.ndarray, dist: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(rows, classes) share of each row's neighbour vote weight held by each class."""
    weights = 1.0 / np.maximum(dist, DISTANCE_FLOOR)
    codes = np.searchsorted(classes, labels[idx])
    shares = np.zeros((len(idx), len(classes)), dtype=np.float64)
    np.add.at(shares, (np.repeat(np.arange(len(idx)), idx.shape[1]), codes.ravel()), weights.ravel())
    total = shares.sum(axis=1, keepdims=True)
    return np.divide(shares, total, out=np.zeros_like(shares), where=total > 0)


def mislabelled(labels: np.ndarray, shares: np.ndarray, classes: np.ndarray) -> list[Finding]:
    own = np.searchsorted(classes, labels)
    own_share = shares[np.arange(len(labels)), own]
    rival = shares.copy()
    rival[np.arange(len(labels)), own] = -1.0
    best = rival.argmax(axis=1)
    gap = rival[np.arange(len(labels)), best] - own_share
    return [Finding("mislabelled", float(gap[i]), [int(i)], str(labels[i]),
                    {"vote": str(classes[best[i]]), "vote_share": round(float(rival[i, best[i]]), 4),
                     "own_share": round(float(own_share[i]), 4)})
            for i in np.flatnonzero(gap > 0)]


def contradictions(labels: np.ndarray, idx: np.ndarray, dist: np.ndarray, sha256: list[str] | None,
                   near: float) -> list[Finding]:
    """Connected sets of near-duplicates (or equal content digests) carrying more than one label."""
    parent = list(range(len(labels)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(dist <= near)):
        parent[root(int(i))] = root(int(idx[i, j]))
    if sha256 is not None:
        first: dict[str, int] = {}
        for i, digest in enumerate(sha256):
            parent[root(i)] = root(first.setdefault(digest, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(labels)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        found = sorted({str(labels[i]) for i in members})
        if len(found) > 1:
            exact = sha256 is not None and len({sha256[i] for i in members}) == 1
            out.append(Finding("contradiction", float(len(members)), members, None,
                               {"labels": found, "exact": exact}))
    return out


def outliers(labels: np.ndarray, vectors: np.ndarray, mads: float) -> list[Finding]:
    """Rows whose nearest same-label row is unusually far (robust z-score over the whole set)."""
    nearest = np.full(len(labels), np.nan)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < 2:
            continue
        sims = vectors[rows] @ vectors[rows].T
        np.fill_diagonal(sims, -np.inf)
        nearest[rows] = 1.0 - sims.max(axis=1)
    known = nearest[~np.isnan(nearest)]
    if len(known) < 3:
        return []
    median = float(np.median(known))
    spread = float(np.median(np.abs(known - median))) or 1e-6
    z = (nearest - median) / spread
    return [Finding("outlier", float(z[i]), [int(i)], str(labels[i]),
                    {"nearest_same_label": round(float(nearest[i]), 4), "typical": round(median, 4)})
            for i in np.flatnonzero(np.nan_to_num(z, nan=-np.inf) > mads)]


def thin_labels(labels: np.ndarray, k: int) -> list[Finding]:
    names, counts = np.unique(labels, return_counts=True)
    return [Finding("thin_label", float(k - c), [], str(name), {"exemplars": int(c), "k": k})
            for name, c in zip(names, counts) if c < k]


def audit(vectors: np.ndarray, labels: list[str], *, k: int = 10, sha256: list[str] | None = None,
          near_duplicate_distance: float = NEAR_DUPLICATE_DISTANCE, outlier_mads: float = OUTLIER_MADS,
          ) -> list[Finding]:
    """Every finding, each kind ranked most certain first, kinds in the order of the docstring."""
    labels_arr = np.asarray(labels, dtype=object)
    if len(labels_arr) == 0:
        return []
    vectors = np.asarray(vectors, dtype=np.float32)
    classes = np.unique(labels_arr)
    idx, dist = neighbours(vectors, k)
    found = []
    if idx.shape[1] and len(classes) > 1:
        found += sorted(mislabelled(labels_arr, vote_shares(labels_arr, idx, dist, classes), classes),
                        key=lambda f: -f.score)
    found += sorted(contradictions(labels_arr, idx, dist, sha256, near_duplicate_distance), key=lambda f: -f.score)
    found += sorted(outliers(labels_arr, vectors, outlier_mads), key=lambda f: -f.score)
    found += sorted(thin_labels(labels_arr, k), key=lambda f: -f.score)
    return found


def knn_disagreement(vectors: np.ndarray, labels: list[str], k: int = 10) -> np.ndarray:
    """The plain baseline: rows whose unweighted k-NN majority label is not their own."""
    labels_arr = np.asarray(labels, dtype=object)
    classes = np.unique(labels_arr)
    idx, _ = neighbours(np.asarray(vectors, dtype=np.float32), k)
    shares = vote_shares(labels_arr, idx, np.ones(idx.shape, dtype=np.float32), classes)
    return np.flatnonzero(classes[shares.argmax(axis=1)] != labels_arr)
