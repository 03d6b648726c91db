"""The bank audit's numbers on synthetic clustered vectors: no database."""
from __future__ import annotations

import numpy as np
import pytest

from governance.moderation.bank_audit import audit, knn_disagreement, neighbours

FLIP_SHARE = 0.05


def clustered_bank(seed: int = 11, classes: int = 10, per_class: int = 40, dims: int = 64, spread: float = 0.55):
    """Unit vectors around one random centre per class, spread unevenly so some classes overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows, labels = [], []
    for c in range(classes):
        scale = spread * (0.6 + 0.8 * rng.random())  # some classes tight, some loose
        points = centres[c] + scale * rng.standard_normal((per_class, dims)) / np.sqrt(dims) * 3
        rows.append(points)
        labels += [f"label{c}"] * per_class
    vectors = np.concatenate(rows).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, labels


def flip(labels: list[str], share: float, seed: int = 5) -> tuple[list[str], set[int]]:
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    chosen = rng.choice(len(labels), size=int(round(share * len(labels))), replace=False)
    noisy = list(labels)
    for i in chosen:
        noisy[i] = rng.choice([c for c in classes if c != labels[i]])
    return noisy, {int(i) for i in chosen}


def recall_precision(ranked: list[int], flipped: set[int]) -> tuple[float, float]:
    """Over the top 2 x |flipped| findings: the share of flipped rows found, and of findings that are flipped."""
    top = ranked[:2 * len(flipped)]
    hits = len(flipped & set(top))
    return hits / len(flipped), (hits / len(top) if top else 0.0)


def cleanlab_baseline(vectors: np.ndarray, labels: list[str]) -> tuple[str, list[int]]:
    """cleanlab's find_label_issues on out-of-sample logistic-regression probabilities, when it
    is installed; else the plain unweighted kNN-disagreement baseline."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return "knn-disagreement", [int(i) for i in knn_disagreement(vectors, labels)]
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    probs = cross_val_predict(LogisticRegression(max_iter=2000), vectors, y, cv=5, method="predict_proba")
    issues = find_label_issues(y, probs, return_indices_ranked_by="self_confidence")
    return "cleanlab", [int(i) for i in issues]


def test_audit_finds_flipped_labels_next_to_a_baseline(capsys):
    vectors, clean = clustered_bank()
    noisy, flipped = flip(clean, FLIP_SHARE)
    assert len(flipped) == 20
    ranked = [f.members[0] for f in audit(vectors, noisy, k=10) if f.kind == "mislabelled"]
    recall, precision = recall_precision(ranked, flipped)
    name, baseline = cleanlab_baseline(vectors, noisy)
    base_recall, base_precision = recall_precision(baseline, flipped)
    with capsys.disabled():
        print(f"\nflipped {len(flipped)}/{len(noisy)}: audit recall {recall:.2f} precision {precision:.2f} "
              f"({len(ranked)} mislabelled findings); {name} recall {base_recall:.2f} "
              f"precision {base_precision:.2f} ({len(baseline)} issues)")
    assert recall >= 0.8 and precision >= 0.5


def test_a_mislabelled_finding_names_the_vote_and_ranks_by_margin():
    vectors, clean = clustered_bank(classes=3, per_class=20)
    noisy = list(clean)
    noisy[0] = "label2"  # deep inside label0's cluster
    findings = [f for f in audit(vectors, noisy, k=10) if f.kind == "mislabelled"]
    assert findings[0].members == [0] and findings[0].label == "label2"
    assert findings[0].detail["vote"] == "label0" and findings[0].detail["own_share"] == 0.0
    assert [f.score for f in findings] == sorted((f.score for f in findings), reverse=True)


def test_exact_and_near_duplicates_with_different_labels_are_contradictions():
    vectors, labels = clustered_bank(classes=3, per_class=20)
    near = vectors[5] + 0.001 * np.ones_like(vectors[5])
    vectors = np.vstack([vectors, vectors[0], near / np.linalg.norm(near)])
    labels = labels + ["label1", "label2"]
    sha = [f"h{i}" for i in range(len(labels))]
    sha[60] = sha[0]  # the same content stored twice, under two labels
    found = [f for f in audit(vectors, labels, k=10, sha256=sha) if f.kind == "contradiction"]
    assert sorted(sorted(f.members) for f in found) == [[0, 60], [5, 61]]
    by_members = {tuple(sorted(f.members)): f for f in found}
    assert by_members[(0, 60)].detail == {"labels": ["label0", "label1"], "exact": True}
    assert by_members[(5, 61)].detail == {"labels": ["label0", "label2"], "exact": False}


def test_same_label_duplicates_are_no_contradiction():
    vectors, labels = clustered_bank(classes=2, per_class=15)
    vectors = np.vstack([vectors, vectors[:3]])
    labels = labels + labels[:3]
    assert [f for f in audit(vectors, labels, k=5) if f.kind == "contradiction"] == []


def test_an_exemplar_far_from_its_label_is_an_outlier():
    vectors, labels = clustered_bank(classes=3, per_class=20)
    rng = np.random.default_rng(3)
    stray = rng.standard_normal(vectors.shape[1]).astype(np.float32)
    vectors = np.vstack([vectors, stray / np.linalg.norm(stray)])
    labels = labels + ["label1"]
    found = [f for f in audit(vectors, labels, k=10) if f.kind == "outlier"]
    assert [f.members for f in found] == [[60]] and found[0].label == "label1"
    assert found[0].detail["nearest_same_label"] > found[0].detail["typical"]


def test_labels_with_fewer_exemplars_than_k_are_thin():
    vectors, labels = clustered_bank(classes=3, per_class=15)
    labels = labels[:30] + ["rare"] * 4 + labels[34:]  # label2 keeps 11
    thin = [f for f in audit(vectors, labels, k=10) if f.kind == "thin_label"]
    assert [(f.label, f.detail["exemplars"]) for f in thin] == [("rare", 4)]


def test_neighbours_leave_the_row_itself_out_and_sort_nearest_first():
    vectors, _ = clustered_bank(classes=2, per_class=10)
    idx, dist = neighbours(vectors, 4)
    assert not (idx == np.arange(len(vectors))[:, None]).any()
    assert (np.diff(dist, axis=1) >= 0).all()
    full = 1.0 - vectors @ vectors.T
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(dist[:, 0], full.min(axis=1), atol=1e-6)


@pytest.mark.parametrize("count", [0, 1])
def test_tiny_banks_audit_without_error(count):
    vectors, labels = clustered_bank(classes=1, per_class=2)
    findings = audit(vectors[:count], labels[:count], k=10)
    assert [f.kind for f in findings] == ([] if count == 0 else ["thin_label"])
