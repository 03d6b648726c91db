"""Assigning rows outside the HDBSCAN sample (governance.clustering.assignment), and the sampled
analyse() on planted data: an emerging group hidden among many background uploads (no database)."""
from __future__ import annotations

import numpy as np
import pytest

from governance.clustering.analysis import analyse
from governance.clustering.assignment import SampledCluster, assign_rows

MIN_SAMPLES = 4


def _clusters(*groups):
    clusters = [SampledCluster.of(g, MIN_SAMPLES) for g in groups]
    return clusters, np.stack([c.centroid for c in clusters])


def test_a_row_joins_the_cluster_whose_members_surround_it_not_the_nearest_centroid():
    rng = np.random.default_rng(0)
    # A long thin arc around the origin, its centroid far inside, next to a round blob.
    angle = rng.uniform(0.0, np.pi, 400)
    arc = np.c_[np.cos(angle), np.sin(angle)] * 5.0 + rng.normal(0, 0.05, (400, 2))
    blob = rng.normal(0, 0.3, (200, 2)) + [0.0, 2.6]
    clusters, centroids = _clusters(arc.astype(np.float32), blob.astype(np.float32))
    on_arc_end = np.array([[4.95, 0.3]], dtype=np.float32)  # nearer the blob's centroid than the arc's
    assert np.linalg.norm(on_arc_end - centroids[1]) < np.linalg.norm(on_arc_end - centroids[0])
    assert assign_rows(on_arc_end, clusters, centroids, MIN_SAMPLES).tolist() == [0]
    assert assign_rows(np.array([[0.1, 2.5]], dtype=np.float32), clusters, centroids, MIN_SAMPLES).tolist() == [1]


def test_each_cluster_uses_its_own_reach_and_rows_between_clusters_are_noise():
    rng = np.random.default_rng(1)
    tight = rng.normal(0.0, 0.05, (300, 2)).astype(np.float32)
    wide = (rng.normal(0.0, 1.0, (300, 2)) + [10.0, 0.0]).astype(np.float32)
    clusters, centroids = _clusters(tight, wide)
    assert clusters[0].reach < 0.1 < 0.3 < clusters[1].reach < 1.5
    rows = np.array([[0.01, 0.0],    # inside the tight cluster
                     [0.6, 0.0],     # beyond the tight cluster's reach, though the wide one would take it
                     [10.5, 0.3],    # inside the wide cluster
                     [5.0, 0.0],     # between both
                     [10.0, 6.0]],   # past the wide cluster's rim
                    dtype=np.float32)
    assert assign_rows(rows, clusters, centroids, MIN_SAMPLES).tolist() == [0, -1, 1, -1, -1]


def test_exact_duplicates_of_a_copy_paste_wave_are_assigned_and_nothing_else_is():
    member = np.full((50, 3), 0.5, dtype=np.float32)
    clusters, centroids = _clusters(member)
    assert clusters[0].reach == 0.0
    rows = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.51]], dtype=np.float32)
    assert assign_rows(rows, clusters, centroids, MIN_SAMPLES).tolist() == [0, -1]


def test_no_clusters_means_noise():
    rows = np.zeros((3, 2), dtype=np.float32)
    assert assign_rows(rows, [], np.zeros((0, 2)), MIN_SAMPLES).tolist() == [-1, -1, -1]


def planted(n_background: int, scale: float, seed: int = 5, dims: int = 768):
    """Labelled waves and one unlabelled (emerging) group inside many unrelated, labelled uploads."""
    rng = np.random.default_rng(seed)
    sizes = [int(scale * s) for s in (3000, 2000, 1500, 1000, 800)]  # labelled waves
    emerging = int(scale * 1200)
    centres = rng.standard_normal((len(sizes) + 1, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.concatenate([np.repeat(np.arange(len(sizes) + 1), sizes + [emerging]),
                            np.full(n_background, -1)])
    noise = rng.standard_normal((truth.size, dims), dtype=np.float32)
    rows = np.where(truth[:, None] >= 0, centres[truth] + noise * np.float32(0.8 / np.sqrt(dims)), noise)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    order = rng.permutation(truth.size)
    ids = [f"u{i:06d}" for i in range(truth.size)]
    labels = [None if truth[r] == len(sizes) else ("ok" if truth[r] < 0 else f"spam{truth[r]}") for r in order]
    return ids, rows[order], labels, truth[order] == len(sizes)


# Unsampled HDBSCAN on mostly random background is slow (its kd-tree cannot prune random 50-d
# points), so the unsampled case is smaller; the sampled one puts 52k random uploads around the waves.
@pytest.mark.parametrize("n_background, scale, sample_size", [(3_000, 0.4, 20_000), (52_000, 1.0, 6_000)],
                         ids=["unsampled-7k", "sampled-6k-of-61k"])
def test_the_planted_emerging_group_is_found_with_and_without_sampling(n_background, scale, sample_size):
    ids, vectors, labels, is_planted = planted(n_background, scale)
    n = len(ids)
    report = analyse(ids, vectors, [None] * n, labels, [False] * n, sample_size=sample_size)
    assert report["params"]["sampled"] is (n > sample_size)
    assert len(report["alerts"]) == 1
    alert_members = set(next(c for c in report["clusters"]
                             if c["cluster_id"] == report["alerts"][0]["cluster_id"])["members"])
    planted_ids = {a for a, p in zip(ids, is_planted, strict=True) if p}
    found = len(alert_members & planted_ids)
    assert found / len(alert_members) >= 0.9, "purity"
    assert found / len(planted_ids) >= 0.8, "coverage"
