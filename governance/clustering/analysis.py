"""Clustering recent upload embeddings to spot new spam waves. Pure numeric code: arrays in, a
JSON-safe report dict out; the caller reads the vectors and stores the result.

Pipeline (all seeded, so the same input gives the same report):
1. If n > sample_size, draw a uniform random sample of sample_size rows; else use all rows.
2. PCA fitted on that sample to min(max_dims, d, n_sample - 1) components (whiten=False), applied
   to every row. HDBSCAN's cost grows with the dimension, and the leading components carry the
   cluster structure while the tail is mostly noise.
3. scikit-learn HDBSCAN with the euclidean metric on the sample. The inputs are L2-normalised, so
   in the original space ||a - b||^2 = 2 - 2 cos(a, b): euclidean order is cosine order. PCA is a
   centring (distance-preserving) plus an orthogonal projection, so euclidean distances in the
   reduced space approximate the original ones; the reduced vectors are deliberately not
   re-normalised, since the centred vectors' norms carry no meaning.
4. Diffuse clusters are split or dropped. PCA throws away the dimensions in which unrelated
   uploads differ, so a crowd of unrelated uploads can look dense in the reduced space (random
   directions all land near the origin). In the original space each cluster's mean pairwise
   cosine is compared to that of random pairs of the sample: a cluster whose mean squared
   pairwise distance is more than MAX_SPREAD_RATIO of the background's is not a wave. Its place is
   taken by the tight leaves of the same HDBSCAN tree inside it (a wave in a crowd), else noise.
5. Rows outside the sample join the cluster they would be a core point of at that cluster's own
   density (governance.clustering.assignment), else noise. With sampling, a cluster must have
   about min_cluster_size * n / sample_size rows to be found.
6. Per-cluster statistics in the original space, stable ids (see cluster_identity), keywords,
   emerging-wave alerts and a 2-D map (the first two PCA components, which PCA already gives).
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import CountVectorizer

from governance.clustering.assignment import ASSIGN_CANDIDATES, REACH_PERCENTILE, SampledCluster, assign_rows
from governance.clustering.identity import (
    CENTROID_MAX_DISTANCE, MIN_SHARED, OVERLAP_THRESHOLD, SIZE_TOLERANCE, PreviousCluster, match_identities,
    new_cluster_id,
)

__all__ = ["PreviousCluster", "analyse", "previous_clusters_from_report"]

# A random subset of the background scores ~1.0 (its pairs are as far apart as any); 0.9 keeps waves
# whose mean pairwise cosine is >= ~0.1 above the background's (synthetic 768-d waves are lost only
# when that gap falls to ~0.1, where they are barely distinguishable from random uploads).
MAX_SPREAD_RATIO = 0.9
MAP_POINTS = 3000
REPRESENTATIVES = 5
TOP_LABELS = 3
# Exact-duplicate waves have radius 0, and float32 PCA rows of equal inputs can differ in the last bits.
_TOLERANCE = 1e-5
_CHUNK = 8192  # rows per block for PCA transform and assignment, to bound temporary memory
# Above this many rows, duplicates are found by hashing rather than by sorting a copy of all rows.
_HASH_ROWS_ABOVE = 200_000


def min_samples_for(min_cluster_size: int) -> int:
    # Half of min_cluster_size: spam waves are tight near-duplicate groups, and a smaller k keeps
    # their edge members instead of calling them noise, while k >= 2 still stops single bridging
    # points from chaining two waves together.
    return max(2, min_cluster_size // 2)


def _reduce(vectors: np.ndarray, fit_rows: np.ndarray, max_dims: int, seed: int) -> tuple[np.ndarray, float]:
    n, d = vectors.shape
    first, inverse = _distinct_rows(vectors)
    # Duplicates add no direction: k distinct rows span at most k - 1. Fitting more components than
    # that, or any on rows without variance (the same upload twice), makes PCA divide 0 by 0.
    distinct_fit = np.unique(inverse[fit_rows]).size
    components = min(max_dims, d, distinct_fit - 1)
    if components < 1:
        return np.zeros((n, 1), dtype=np.float32), 0.0
    pca = PCA(n_components=components, whiten=False, random_state=seed)
    pca.fit(vectors[fit_rows])
    # Identical uploads must land on bit-identical reduced rows: a BLAS kernel may round a row
    # differently depending on where it sits in the block, and for copy-paste waves (radius 0) that
    # noise alone splits the wave. So each distinct row is transformed once and copied to its twins.
    distinct = np.empty((first.size, components), dtype=np.float32)
    for start in range(0, first.size, _CHUNK):  # in blocks: transform() would copy all rows to centre them
        distinct[start:start + _CHUNK] = pca.transform(vectors[first[start:start + _CHUNK]])
    return distinct[inverse], float(pca.explained_variance_ratio_.sum())


def _distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of one row per distinct row, and for every row the position of its distinct row."""
    rows = np.ascontiguousarray(vectors)
    if rows.shape[0] > _HASH_ROWS_ABOVE:
        found = _distinct_rows_by_hash(rows)
        if found is not None:
            return found
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _distinct_rows_by_hash(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """As _distinct_rows, without the sorted copy of every row that np.unique makes (3 GB at 1M x 768):
    two 64-bit multiply-add hashes per row, then every row compared with its representative, so a
    hash collision is caught (None: the caller falls back to the exact sort)."""
    words = rows.view(np.uint8).reshape(rows.shape[0], -1)
    pad = (-words.shape[1]) % 8
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=(2, (words.shape[1] + pad) // 8),
                                                    dtype=np.uint64) | np.uint64(1)
    keys = np.empty((rows.shape[0], 2), dtype=np.uint64)
    for start in range(0, rows.shape[0], _CHUNK):
        block = words[start:start + _CHUNK]
        block = (np.pad(block, ((0, 0), (0, pad))) if pad else np.ascontiguousarray(block)).view(np.uint64)
        keys[start:start + _CHUNK] = np.stack([(block * m).sum(axis=1, dtype=np.uint64) for m in multipliers], 1)
    _, first, inverse = np.unique(keys.view(np.dtype((np.void, 16))).ravel(), return_index=True,
                                  return_inverse=True)
    inverse = inverse.ravel()
    for start in range(0, rows.shape[0], _CHUNK):
        if not np.array_equal(words[start:start + _CHUNK], words[first[inverse[start:start + _CHUNK]]]):
            return None
    return first, inverse


def _assign_outside(reduced: np.ndarray, cluster_of: np.ndarray, outside: np.ndarray, min_samples: int) -> None:
    """Give each non-sampled row, in place, the cluster it would be a core point of (see assignment)."""
    k = int(cluster_of.max()) + 1
    if k <= 0 or outside.size == 0:
        return
    clusters = [SampledCluster.of(reduced[cluster_of == c], min_samples) for c in range(k)]
    centroids = np.stack([c.centroid for c in clusters])
    for start in range(0, outside.size, _CHUNK):
        rows = outside[start:start + _CHUNK]
        cluster_of[rows] = assign_rows(reduced[rows], clusters, centroids, min_samples)


def mean_pairwise_cosine(unit_rows: np.ndarray) -> float:
    """Exact mean cosine over distinct pairs of unit vectors, in O(m d): sum_ij x_i.x_j = ||sum x||^2."""
    m = unit_rows.shape[0]
    if m < 2:
        return 1.0
    total = unit_rows.sum(axis=0, dtype=np.float64)
    return float((total @ total - m) / (m * (m - 1)))


def _tight_clusters(vectors: np.ndarray, sample: np.ndarray, sample_labels: np.ndarray,
                    background: float) -> tuple[np.ndarray, list[int]]:
    """Renumber the clusters that are tighter than random pairs (original space) from 0, sending the
    rest to noise; also return the labels of the diffuse ones."""
    kept = np.full(int(sample_labels.max(initial=-1)) + 1, -1)
    diffuse = []
    for c in range(kept.size):
        members = sample[sample_labels == c]
        if members.size == 0:
            continue
        spread = (1.0 - mean_pairwise_cosine(vectors[members])) / max(1.0 - background, 1e-9)
        if spread <= MAX_SPREAD_RATIO:
            kept[c] = int(kept.max(initial=-1)) + 1
        else:
            diffuse.append(c)
    relabelled = np.where(sample_labels >= 0, kept[np.maximum(sample_labels, 0)], -1) if kept.size else sample_labels
    return relabelled, diffuse


def _hdbscan(points: np.ndarray, min_cluster_size: int, selection: str) -> np.ndarray:
    # kd_tree, not "brute": brute builds an n x n float64 distance matrix (3.2 GB at 20k).
    model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples_for(min_cluster_size),
                    metric="euclidean", algorithm="kd_tree", cluster_selection_method=selection, copy=True)
    return model.fit_predict(points)


def _cluster(vectors: np.ndarray, reduced: np.ndarray, sample: np.ndarray,
             min_cluster_size: int) -> tuple[np.ndarray, float, int]:
    n = reduced.shape[0]
    cluster_of = np.full(n, -1, dtype=np.int64)
    background, dropped = 0.0, 0
    if sample.size >= max(min_cluster_size, 2):
        points = reduced[sample].astype(np.float64)
        background = mean_pairwise_cosine(vectors[sample])
        eom = _hdbscan(points, min_cluster_size, "eom")
        found, diffuse = _tight_clusters(vectors, sample, eom, background)
        if diffuse:
            found = _split_diffuse(vectors, sample, points, min_cluster_size, background, found, eom, diffuse)
        cluster_of[sample], dropped = found, len(diffuse)
    if sample.size < n:
        outside = np.setdiff1d(np.arange(n), sample, assume_unique=True)
        _assign_outside(reduced, cluster_of, outside, min_samples_for(min_cluster_size))
    return cluster_of, background, dropped


def _split_diffuse(vectors: np.ndarray, sample: np.ndarray, points: np.ndarray, min_cluster_size: int,
                   background: float, found: np.ndarray, eom: np.ndarray, diffuse: list[int]) -> np.ndarray:
    """A cluster too diffuse to be a wave may still hold one: excess-of-mass selection keeps the big
    parent when its children are small against it (measured on the dev corpus: 44 hint texts inside a
    386-row crowd of unrelated fortunes). The leaves of the same condensed tree are nested inside the
    selected clusters, so each diffuse cluster's tight leaves take its place."""
    leaves = _hdbscan(points, min_cluster_size, "leaf")
    leaves = np.where(np.isin(eom, diffuse), leaves, -1)
    tight_leaves, _ = _tight_clusters(vectors, sample, leaves, background)
    offset = int(found.max(initial=-1)) + 1
    return np.where(tight_leaves >= 0, tight_leaves + offset, found)


def _summary(rows: np.ndarray, vectors: np.ndarray, asset_ids: list[str], labels: list[str | None],
             anomalous: np.ndarray) -> tuple[dict, np.ndarray]:
    members = vectors[rows]
    mean = members.mean(axis=0, dtype=np.float64)
    centroid = mean / max(float(np.linalg.norm(mean)), 1e-12)
    similarity = members @ centroid.astype(np.float32)
    # On unit vectors the sum of cosine similarities from x_i to all members is m * x_i . mean, so the
    # member closest to the mean direction is the exact medoid under cosine distance, in O(m d).
    central = rows[np.argsort(-similarity, kind="stable")]
    counts: dict[str, int] = {}
    for r in rows:
        if labels[r] is not None:
            counts[labels[r]] = counts.get(labels[r], 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    size = int(rows.size)
    unlabelled = sum(labels[r] is None for r in rows)
    flagged = sum(labels[r] is None or bool(anomalous[r]) for r in rows)
    return {
        "size": size,
        "members": sorted(asset_ids[r] for r in rows),
        "top_labels": [{"label": lab, "count": c} for lab, c in ranked[:TOP_LABELS]],
        "representatives": [asset_ids[r] for r in central[:REPRESENTATIVES]],
        "medoid": asset_ids[central[0]],
        "label_mix": {lab: round(c / size, 4) for lab, c in ranked},  # shares of all members; unlabelled excluded
        "anomalous_share": round(float(anomalous[rows].mean()), 4),
        "unlabelled_share": round(unlabelled / size, 4),
        "flagged_share": round(flagged / size, 4),  # unlabelled or anomalous: what the alert looks at
        "cohesion": round(float(similarity.mean()), 4),
    }, centroid


def cluster_keywords(cluster_texts: list[list[str | None]], background: list[str | None],
                     top: int = 8) -> list[list[str]]:
    """Class-based TF-IDF: each cluster's texts form one document; noise texts form one more
    background document so that words common everywhere do not rank high. Score of term t in
    cluster c: tf(t, c) / words(c) * log(1 + mean words per document / frequency of t in all)."""
    docs = [" ".join(t for t in texts if t) for texts in cluster_texts]
    corpus = docs + [" ".join(t for t in background if t)]
    if not any(docs):
        return [[] for _ in docs]
    try:
        vectorizer = CountVectorizer(stop_words="english")
        counts = vectorizer.fit_transform(corpus).toarray().astype(np.float64)
    except ValueError:  # empty vocabulary: only stop words or no word characters
        return [[] for _ in docs]
    terms = vectorizer.get_feature_names_out()
    words = counts.sum(axis=1)
    idf = np.log(1.0 + words.mean() / np.maximum(counts.sum(axis=0), 1.0))
    result = []
    for c in range(len(docs)):
        if words[c] == 0:
            result.append([])
            continue
        score = counts[c] / words[c] * idf
        ranked = sorted((-score[t], terms[t]) for t in np.flatnonzero(counts[c]))
        result.append([str(term) for _, term in ranked[:top]])
    return result


def _map(reduced: np.ndarray, asset_ids: list[str], id_of_row: list[str | None],
         rng: np.random.Generator) -> list[dict]:
    n = len(asset_ids)
    rows = np.sort(rng.choice(n, size=MAP_POINTS, replace=False)) if n > MAP_POINTS else np.arange(n)
    y = reduced[:, 1] if reduced.shape[1] > 1 else np.zeros(n, dtype=np.float32)
    return [{"asset_id": asset_ids[r], "x": round(float(reduced[r, 0]), 4), "y": round(float(y[r]), 4),
             "cluster_id": id_of_row[r]} for r in rows]


def _first_row_per_asset(asset_ids, vectors, texts, labels, anomalous):
    """An asset is one point: later rows of a repeated asset id are dropped (the caller puts the one
    to keep first), so a report never lists an asset twice or fails on it."""
    seen: dict[str, int] = {}
    for row, asset in enumerate(asset_ids):
        seen.setdefault(asset, row)
    if len(seen) == len(asset_ids):
        return asset_ids, vectors, texts, labels, anomalous, 0
    keep = sorted(seen.values())
    return ([asset_ids[r] for r in keep], vectors[keep], [texts[r] for r in keep], [labels[r] for r in keep],
            [anomalous[r] for r in keep], len(asset_ids) - len(keep))


def analyse(
    asset_ids: list[str],
    vectors: np.ndarray,
    texts: list[str | None],
    labels: list[str | None],
    anomalous: list[bool],
    *,
    previous: list[PreviousCluster] | None = None,
    min_cluster_size: int = 8,
    max_dims: int = 50,
    sample_size: int = 20000,
    seed: int = 0,
    emerging_min_size: int = 10,
    emerging_unlabelled_share: float = 0.6,
) -> dict:
    """Cluster L2-normalised vectors (n, d) and return the JSON-safe report described in the module doc."""
    started = time.perf_counter()
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(asset_ids)
    if vectors.ndim != 2 or vectors.shape[0] != n or not (len(texts) == len(labels) == len(anomalous) == n):
        raise ValueError("asset_ids, vectors rows, texts, labels and anomalous must have the same length")
    if not all(np.isfinite(vectors[s:s + _CHUNK]).all() for s in range(0, n, _CHUNK)):
        raise ValueError("vectors contain NaN or infinity")
    if min_cluster_size < 2 or sample_size < 2:
        raise ValueError("min_cluster_size and sample_size must be >= 2")
    asset_ids, vectors, texts, labels, anomalous, repeated = _first_row_per_asset(
        asset_ids, vectors, texts, labels, anomalous)
    n = len(asset_ids)
    rng = np.random.default_rng(seed)
    flags = np.asarray(anomalous, dtype=bool)

    # One uniform sample serves both the PCA fit and HDBSCAN.
    sample = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else np.arange(n)
    reduced, explained = _reduce(vectors, sample, max_dims, seed) if n else (np.zeros((0, 1), np.float32), 0.0)
    reduced_at = time.perf_counter()
    cluster_of, background, dropped = _cluster(vectors, reduced, sample, min_cluster_size)
    clustered_at = time.perf_counter()

    groups = [np.flatnonzero(cluster_of == c) for c in range(int(cluster_of.max(initial=-1)) + 1)]
    groups = [g for g in groups if g.size]
    # A fixed order independent of HDBSCAN's label numbering: biggest first, then by member hash.
    groups.sort(key=lambda g: (-g.size, new_cluster_id([asset_ids[r] for r in g])))
    summaries, centroids = [], []
    for g in groups:
        summary, centroid = _summary(g, vectors, asset_ids, labels, flags)
        summaries.append(summary)
        centroids.append(centroid)
    centroid_matrix = np.stack(centroids) if centroids else np.zeros((0, vectors.shape[1]))
    identities, gone = match_identities([s["members"] for s in summaries], centroid_matrix, previous)
    keywords = cluster_keywords([[texts[r] for r in g] for g in groups],
                                [texts[r] for r in np.flatnonzero(cluster_of < 0)])

    clusters, alerts = [], []
    id_of_row: list[str | None] = [None] * n
    for g, summary, ident, words in zip(groups, summaries, identities, keywords, strict=True):
        for r in g:
            id_of_row[r] = ident.cluster_id
        cluster = {"cluster_id": ident.cluster_id, **summary, "status": ident.status,
                   "previous_ids": ident.previous_ids, "growth": ident.growth, "keywords": words}
        clusters.append(cluster)
        if (ident.status == "new" and summary["size"] >= emerging_min_size
                and summary["flagged_share"] >= emerging_unlabelled_share):
            alerts.append({"kind": "emerging_cluster", "cluster_id": ident.cluster_id, "size": summary["size"],
                           "unlabelled_share": summary["unlabelled_share"],
                           "anomalous_share": summary["anomalous_share"],
                           "unlabelled_or_anomalous_share": summary["flagged_share"],
                           "representatives": summary["representatives"]})
    return {
        "clusters": clusters,
        "noise": sorted(asset_ids[r] for r in np.flatnonzero(cluster_of < 0)),
        "gone": gone,
        "alerts": alerts,
        "map": _map(reduced, asset_ids, id_of_row, rng) if n else [],
        "params": {
            "n_assets": n, "dims_in": int(vectors.shape[1]), "dims_used": int(reduced.shape[1]),
            "pca_explained_variance": round(explained, 4), "metric": "euclidean (on PCA of unit vectors)",
            "min_cluster_size": min_cluster_size, "min_samples": min_samples_for(min_cluster_size),
            "max_dims": max_dims, "sample_size": sample_size, "sampled": bool(sample.size < n),
            "n_sampled": int(sample.size), "assign_rule": f"core distance to the sampled members of the {ASSIGN_CANDIDATES} nearest "
            f"clusters within p{REACH_PERCENTILE:g} of the cluster's own core distances (reduced space), else noise",
            "background_mean_cosine": round(background, 4), "max_spread_ratio": MAX_SPREAD_RATIO,
            "diffuse_clusters_dropped": dropped, "repeated_asset_rows_dropped": repeated, "seed": seed, "emerging_min_size": emerging_min_size,
            "emerging_unlabelled_share": emerging_unlabelled_share,
            "identity": {"overlap_threshold": OVERLAP_THRESHOLD, "min_shared": MIN_SHARED,
                         "centroid_max_distance": CENTROID_MAX_DISTANCE, "size_tolerance": SIZE_TOLERANCE},
            "timings_s": {"reduce": round(reduced_at - started, 3), "cluster": round(clustered_at - reduced_at, 3),
                          "total": round(time.perf_counter() - started, 3)},
        },
    }


def previous_clusters_from_report(report: dict, asset_ids: list[str], vectors: np.ndarray) -> list[PreviousCluster]:
    """The clusters of `report` as PreviousCluster for the next run, centroids from this run's vectors."""
    row_of = {asset: i for i, asset in enumerate(asset_ids)}
    result = []
    for cluster in report["clusters"]:
        rows = [row_of[a] for a in cluster["members"] if a in row_of]
        centroid = None
        if rows:
            mean = np.asarray(vectors)[rows].mean(axis=0, dtype=np.float64)  # no float64 copy of all rows
            centroid = mean / max(float(np.linalg.norm(mean)), 1e-12)
        result.append(PreviousCluster(cluster["cluster_id"], list(cluster["members"]), centroid))
    return result
