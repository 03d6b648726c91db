import pytest

from governance.moderation.vote import knn_vote
from governance.storage.rows import Neighbor


def n(asset, label, distance, polarity="positive"):
    return Neighbor(asset_id=asset, label=label, distance=distance, polarity=polarity)


def test_closer_neighbours_outweigh_a_more_numerous_farther_label():
    vote = knn_vote([n("a", "spam", 0.05), n("b", "ham", 0.6), n("c", "ham", 0.7)], k=3)
    assert vote.label == "spam"
    assert vote.score == pytest.approx((1 / 0.05) / (1 / 0.05 + 1 / 0.6 + 1 / 0.7))


def test_only_the_k_nearest_vote():
    neighbors = [n("a", "spam", 0.1), n("b", "ham", 0.2), n("c", "ham", 0.3), n("d", "ham", 0.4)]
    assert knn_vote(neighbors, k=1).label == "spam"
    assert knn_vote(neighbors, k=4).label == "ham"


def test_scores_are_sorted_and_sum_to_one_without_negatives():
    vote = knn_vote([n("a", "x", 0.2), n("b", "y", 0.3), n("c", "z", 0.5)], k=3)
    assert [label for label, _ in vote.labels] == ["x", "y", "z"]
    assert sum(score for _, score in vote.labels) == pytest.approx(1.0)
    assert vote.margin == pytest.approx(vote.labels[0][1] - vote.labels[1][1])


def test_negative_exemplar_suppresses_its_label():
    positive_only = knn_vote([n("a", "spam", 0.2), n("b", "ham", 0.4)], k=2)
    assert positive_only.label == "spam"
    allowlisted = knn_vote([n("a", "spam", 0.2), n("b", "ham", 0.4), n("c", "spam", 0.1, "negative")], k=3)
    assert allowlisted.label == "ham"


def test_exact_duplicate_does_not_divide_by_zero():
    vote = knn_vote([n("a", "spam", 0.0), n("b", "ham", 0.5)], k=2)
    assert vote.label == "spam" and vote.score > 0.99


def test_no_neighbours_means_no_label():
    vote = knn_vote([], k=5)
    assert vote.label is None and vote.score == 0.0
