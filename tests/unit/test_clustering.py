"""governance.clustering.analysis / cluster_identity on synthetic, normalised blobs (no database)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from governance.clustering.analysis import analyse, previous_clusters_from_report
from governance.clustering.identity import PreviousCluster, new_cluster_id


def blobs(n=800, centers=6, dims=64, seed=1, prefix="a"):
    vectors, truth = make_blobs(n_samples=n, n_features=dims, centers=centers, cluster_std=1.0,
                                center_box=(-5, 5), random_state=seed)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [f"{prefix}{i:05d}" for i in range(n)], vectors.astype(np.float32), truth


def run(ids, vectors, texts=None, labels=None, anomalous=None, **kwargs):
    n = len(ids)
    return analyse(ids, vectors, texts or [None] * n, labels or [None] * n, anomalous or [False] * n, **kwargs)


def predicted(report, ids):
    cluster_of = {a: i for i, c in enumerate(report["clusters"]) for a in c["members"]}
    return [cluster_of.get(a, -1) for a in ids]


def by_id(report):
    return {c["cluster_id"]: c for c in report["clusters"]}


def test_blobs_are_recovered_with_high_adjusted_rand_index():
    ids, vectors, truth = blobs()
    report = run(ids, vectors)
    assert adjusted_rand_score(truth, predicted(report, ids)) >= 0.9
    assert len(report["clusters"]) == 6
    json.dumps(report)  # JSON-safe: no numpy scalars or arrays
    cluster = report["clusters"][0]
    assert cluster["medoid"] == cluster["representatives"][0] and cluster["medoid"] in cluster["members"]
    assert 0.5 < cluster["cohesion"] <= 1.0
    assert report["params"]["dims_used"] == 50 and report["params"]["sampled"] is False
    # The map is the first two principal components: x carries at least as much variance as y.
    xs, ys = np.array([p["x"] for p in report["map"]]), np.array([p["y"] for p in report["map"]])
    assert len(report["map"]) == 800 and xs.var() >= ys.var() > 0


def test_two_runs_on_the_same_data_give_the_same_ids_derived_from_members():
    ids, vectors, _ = blobs()
    first, second = run(ids, vectors), run(ids, vectors)
    assert [c["cluster_id"] for c in first["clusters"]] == [c["cluster_id"] for c in second["clusters"]]
    assert first["map"] == second["map"]
    for cluster in first["clusters"]:
        assert cluster["cluster_id"] == new_cluster_id(cluster["members"])
        assert cluster["status"] == "new"


def test_ten_percent_new_points_keep_at_least_ninety_percent_of_ids():
    ids, vectors, _ = blobs(n=880)
    old_ids, old_vectors = ids[:800], vectors[:800]
    first = run(old_ids, old_vectors)
    previous = previous_clusters_from_report(first, old_ids, old_vectors)
    second = run(ids, vectors, previous=previous)
    kept = set(by_id(first)) & set(by_id(second))
    assert len(kept) >= 0.9 * len(first["clusters"])
    assert {by_id(second)[cid]["status"] for cid in kept} <= {"stable", "grown"}
    assert second["gone"] == [] and not second["alerts"]


def test_two_previous_into_one_current_is_merged_and_keeps_the_larger_id():
    ids, vectors, _ = blobs()
    report = run(ids, vectors)
    members = report["clusters"][0]["members"]
    cut = int(len(members) * 0.6)
    previous = [PreviousCluster("big", members[:cut], None), PreviousCluster("small", members[cut:], None)]
    merged = by_id(run(ids, vectors, previous=previous))["big"]
    assert merged["status"] == "merged"
    assert merged["previous_ids"] == ["big", "small"]
    assert merged["growth"] == 0
    assert "small" not in by_id(run(ids, vectors, previous=previous))


def test_one_previous_into_two_current_is_split_and_the_larger_keeps_the_id():
    ids, vectors, _ = blobs()
    report = run(ids, vectors)
    larger, smaller = report["clusters"][0], report["clusters"][1]
    previous = [PreviousCluster("wave", larger["members"] + smaller["members"], None)]
    clusters = by_id(run(ids, vectors, previous=previous))
    assert clusters["wave"]["status"] == "split" and clusters["wave"]["members"] == larger["members"]
    piece = clusters[smaller["cluster_id"]]
    assert piece["status"] == "split" and piece["previous_ids"] == ["wave"]


def test_unmatched_previous_is_gone_and_centroid_matches_a_wave_that_left_the_window():
    ids, vectors, _ = blobs()
    report = run(ids, vectors)
    target = report["clusters"][2]
    centroid = previous_clusters_from_report(report, ids, vectors)[2].centroid
    far = -centroid  # cosine distance 2 from that cluster
    previous = [
        PreviousCluster("aged-out", ["old1", "old2", "old3"], centroid),  # no member present any more
        PreviousCluster("vanished", ["old4", "old5"], far),
        PreviousCluster("no-centroid", ["old6", "old7"], None),
    ]
    second = run(ids, vectors, previous=previous)
    assert by_id(second)["aged-out"]["members"] == target["members"]
    assert by_id(second)["aged-out"]["status"] == "grown"  # 3 recorded members -> a full cluster
    assert second["gone"] == ["no-centroid", "vanished"]


def test_emerging_alert_only_for_new_unlabelled_or_anomalous_clusters():
    ids, vectors, truth = blobs()
    labels = [None if t == 0 else "ok" for t in truth]  # blob 0 is an unreviewed wave
    anomalous = [bool(t == 1) for t in truth]  # blob 1 is labelled but anomalous
    report = run(ids, vectors, labels=labels, anomalous=anomalous)
    truth_of = dict(zip(ids, truth, strict=True))
    alerted = {truth_of[by_id(report)[a["cluster_id"]]["members"][0]] for a in report["alerts"]}
    assert alerted == {0, 1}
    assert all(a["kind"] == "emerging_cluster" and a["size"] >= 10 for a in report["alerts"])
    # Once known (passed as previous), the same unlabelled cluster is no longer "new" and not alerted.
    previous = previous_clusters_from_report(report, ids, vectors)
    assert run(ids, vectors, labels=labels, anomalous=anomalous, previous=previous)["alerts"] == []
    # Raising emerging_min_size above every cluster size silences it too.
    assert run(ids, vectors, labels=labels, anomalous=anomalous, emerging_min_size=10_000)["alerts"] == []


def test_sampling_path_assigns_points_outside_the_sample_and_leaves_outliers_as_noise():
    ids, vectors, truth = blobs(n=3000)
    rng = np.random.default_rng(7)
    outliers = rng.standard_normal((40, vectors.shape[1])).astype(np.float32)
    outliers /= np.linalg.norm(outliers, axis=1, keepdims=True)
    outlier_ids = [f"z{i:03d}" for i in range(40)]
    all_ids, all_vectors = ids + outlier_ids, np.vstack([vectors, outliers])
    report = run(all_ids, all_vectors, sample_size=1000)
    assert report["params"]["sampled"] is True and report["params"]["n_sampled"] == 1000
    clustered = sum(c["size"] for c in report["clusters"])
    assert clustered > 2500  # far more than the 1000 sampled rows: outside rows were assigned
    assert adjusted_rand_score(truth, predicted(report, ids)) >= 0.9
    # Sampled outliers are HDBSCAN's call (it may keep one as a low-probability member of the
    # nearest wave); outliers outside the sample face the radius rule. Nearly all must be noise.
    assert len(set(outlier_ids) & set(report["noise"])) >= 36


def test_unrelated_background_uploads_do_not_form_a_cluster():
    # PCA squeezes random directions into a dense ball near the origin; without the original-space
    # spread check, these 300 unrelated uploads come back as one large "new wave".
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((5, 384))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(5), 160)
    waves = centres[truth] + rng.standard_normal((800, 384)) * (0.8 / np.sqrt(384))  # offsets of norm ~0.8
    vectors = np.vstack([waves, rng.standard_normal((300, 384))])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"w{i:04d}" for i in range(800)] + [f"bg{i:03d}" for i in range(300)]
    report = run(ids, vectors)
    assert adjusted_rand_score(truth, predicted(report, ids[:800])) >= 0.9
    assert sum(a.startswith("bg") for a in report["noise"]) >= 290
    assert report["params"]["diffuse_clusters_dropped"] >= 1 and len(report["alerts"]) == 5


def test_exact_duplicate_waves_outside_the_sample_are_assigned():
    # Copy-paste spam: every member identical, so the cluster's radius is 0 (up to float error).
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 256)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    vectors = np.repeat(base, [400, 300, 200, 100], axis=0)
    ids = [f"d{i:04d}" for i in range(1000)]
    report = run(ids, vectors, sample_size=300)
    assert [c["size"] for c in report["clusters"]] == [400, 300, 200, 100] and report["noise"] == []
    assert all(c["cohesion"] == pytest.approx(1.0, abs=1e-4) for c in report["clusters"])


def test_keywords_name_the_distinctive_word_of_a_text_cluster_and_media_has_none():
    ids, vectors, truth = blobs()
    words = {0: "crypto giveaway wallet", 1: "cheap watches replica", 2: "holiday photos beach"}
    texts = [f"hello friend please look {words[t]} today" if t in words else None for t in truth]
    report = run(ids, vectors, texts=texts)
    truth_of = dict(zip(ids, truth, strict=True))
    for cluster in report["clusters"]:
        blob = truth_of[cluster["members"][0]]
        if blob in words:
            assert set(cluster["keywords"][:3]) == set(words[blob].split())
            assert "hello" not in cluster["keywords"][:3]
        else:
            assert cluster["keywords"] == []


def test_degenerate_inputs():
    assert run([], np.zeros((0, 8), dtype=np.float32))["clusters"] == []
    tiny = run(["a", "b"], np.eye(2, 8, dtype=np.float32))
    assert tiny["clusters"] == [] and tiny["noise"] == ["a", "b"] and len(tiny["map"]) == 2
    with pytest.raises(ValueError):
        run(["a", "b"], np.full((2, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        analyse(["a", "b"], np.eye(2, 8), [None], [None, None], [False, False])


def test_a_window_with_no_dense_group_is_all_noise():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((12, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"a{i}" for i in range(12)]
    report = analyse(ids, vectors, [None] * 12, [None] * 12, [False] * 12, min_cluster_size=8)
    assert report["clusters"] == [] and sorted(report["noise"]) == sorted(ids)


def unit_rows(n, dims=16, seed=5):
    rows = np.random.default_rng(seed).standard_normal((n, dims)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("vectors, explained, dims_used", [
    (np.repeat(unit_rows(1), 2, axis=0), 0.0, 1),    # the same upload twice
    (np.repeat(unit_rows(1), 12, axis=0), 0.0, 1),   # a copy-paste wave alone
    (np.zeros((5, 16), dtype=np.float32), 0.0, 1),  # zero variance
    (unit_rows(1), 0.0, 1),
    (unit_rows(2), 1.0, 1),
    (np.concatenate([np.repeat(unit_rows(1), 3, axis=0), unit_rows(2, seed=6)]), 1.0, 2),  # 3 distinct rows
])
def test_degenerate_vectors_give_a_small_report_with_finite_statistics(vectors, explained, dims_used):
    ids = [f"a{i}" for i in range(len(vectors))]
    report = run(ids, vectors, min_cluster_size=2)
    json.dumps(report, allow_nan=False)
    assert report["params"]["pca_explained_variance"] == explained
    assert report["params"]["dims_used"] == dims_used
    assert sorted(report["noise"] + [a for c in report["clusters"] for a in c["members"]]) == sorted(ids)


def test_a_repeated_asset_id_is_one_point_its_first_row():
    wave = np.repeat(unit_rows(1, dims=64), 8, axis=0)
    ids = [f"w{i}" for i in range(8)] + [f"b{i}" for i in range(30)]
    vectors = np.concatenate([wave, unit_rows(30, dims=64, seed=7)])
    alone = run(ids, vectors, min_cluster_size=4)
    # "b0" again, now with the wave's vector: the report is the one without that row.
    repeated = run([*ids, "b0"], np.concatenate([vectors, wave[:1]]), min_cluster_size=4)
    assert repeated["params"]["n_assets"] == 38 and repeated["params"]["repeated_asset_rows_dropped"] == 1
    assert alone["clusters"] and repeated["clusters"] == alone["clusters"]
    assert repeated["noise"] == alone["noise"] and repeated["map"] == alone["map"]


def test_a_wave_inside_a_diffuse_cluster_takes_its_place():
    """Excess-of-mass selection can keep one big parent over a crowd of unrelated uploads with a
    wave inside it (seen on real text: 44 hint texts inside 386 unrelated fortunes). The parent is
    too diffuse to be a wave, and the tight leaves of the same tree inside it take its place."""
    from governance.clustering.analysis import _reduce, _split_diffuse, _tight_clusters, mean_pairwise_cosine

    rng = np.random.default_rng(3)
    d = 384
    base = rng.normal(size=d)
    base /= np.linalg.norm(base)
    crowd = base + 1.6 * rng.normal(size=(360, d)) / np.sqrt(d)
    wave = base + 0.9 * rng.normal(size=d) / np.sqrt(d) + 0.6 * rng.normal(size=(40, d)) / np.sqrt(d)
    vectors = np.vstack([crowd, wave]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sample = np.arange(len(vectors))
    points = _reduce(vectors, sample, 50, 0)[0].astype(np.float64)
    background = mean_pairwise_cosine(vectors)
    parent = np.zeros(len(vectors), dtype=np.int64)  # what excess of mass picked on the real data
    found, diffuse = _tight_clusters(vectors, sample, parent, background)
    assert diffuse == [0] and (found == -1).all()
    split = _split_diffuse(vectors, sample, points, 8, background, found, parent, diffuse)
    assert set(split[360:]) == {0}  # the whole wave, as one cluster
    assert (split[:360] == -1).mean() > 0.95  # the crowd stays noise


def test_duplicates_in_large_inputs_are_found_by_hash_exactly_as_by_sorting(monkeypatch):
    from governance.clustering import analysis

    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((3000, 6)).astype(np.float32)  # 24 bytes a row: the hash pads to 8-byte words
    vectors[100:400] = vectors[7]
    vectors[2000:2010] = vectors[2999]
    vectors[50, 5] = np.nextafter(vectors[7, 5], np.float32(10))  # one bit from a duplicate: distinct
    monkeypatch.setattr(analysis, "_HASH_ROWS_ABOVE", 10**9)
    exact_first, exact_inverse = analysis._distinct_rows(vectors)
    monkeypatch.setattr(analysis, "_HASH_ROWS_ABOVE", 0)
    first, inverse = analysis._distinct_rows(vectors)
    assert len(first) == len(exact_first) == 3000 - 300 - 10
    assert np.array_equal(vectors[first[inverse]], vectors)  # every row maps to an identical representative
    # The same grouping: rows share a representative under one method exactly when they do under the other.
    assert np.array_equal(inverse[:, None] == inverse[None, :], exact_inverse[:, None] == exact_inverse[None, :])
