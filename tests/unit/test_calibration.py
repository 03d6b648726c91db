import math
import random

import pytest

from governance.moderation.calibration import (
    NONE, REVIEW, Scored, Thresholds, choose_thresholds, evaluate, format_report, outcome, precision_curve,
    report_dict, smallest_threshold,
)


def S(truth, predicted, score):
    return Scored(truth, predicted, score)


ITEMS = [
    S("spam", "spam", 1.0), S("spam", "spam", 0.9), S("ham", "spam", 0.85), S("spam", "spam", 0.8),
    S("spam", "spam", 0.7), S("ham", "spam", 0.6), S("ham", "spam", 0.5), S("spam", "spam", 0.4),
    S("ham", "ham", 0.9), S("ham", "ham", 0.8), S(None, "ham", 0.55), S("spam", None, 0.0),
]


def test_precision_curve_walks_down_the_scores():
    curve = precision_curve(ITEMS, "spam")
    assert [t for t, _, _ in curve] == [1.0, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert curve[2] == (0.85, 2 / 3, 3)
    assert curve[-1] == (0.4, 5 / 8, 8)


def test_ties_enter_together():
    items = [S("a", "a", 0.9), S("b", "a", 0.9), S("a", "a", 0.8)]
    assert precision_curve(items, "a") == [(0.9, 0.5, 2), (0.8, 2 / 3, 3)]


def test_the_smallest_threshold_reaching_the_target_is_chosen():
    assert smallest_threshold(ITEMS, "spam", 1.0) == (0.9, 1.0)
    assert smallest_threshold(ITEMS, "spam", 0.75) == (0.7, 0.8)  # 4 of the 5 at or above 0.7
    assert smallest_threshold(ITEMS, "spam", 0.6) == (0.4, 5 / 8)
    # Precision is not monotone: 0.7 reaches 0.8 although 0.85 alone does not.
    assert smallest_threshold(ITEMS, "spam", 0.8)[0] == 0.7


def test_an_unreachable_target_means_never():
    items = [S("b", "a", 0.9), S("a", "a", 0.5)]
    assert smallest_threshold(items, "a", 0.95) == (math.inf, None)
    assert smallest_threshold(items, "missing", 0.5) == (math.inf, None)


def test_min_support_ignores_thin_thresholds():
    assert smallest_threshold(ITEMS, "spam", 1.0, min_support=3) == (math.inf, None)
    assert smallest_threshold(ITEMS, "spam", 0.75, min_support=3) == (0.7, 0.8)


def test_review_threshold_is_looser_and_never_above_auto():
    th = choose_thresholds(ITEMS, target_precision=0.95, review_precision=0.6)
    assert th["spam"].auto == 0.9 and th["spam"].review == 0.4
    assert th["spam"].predicted == 8 and th["spam"].auto_precision == 1.0
    assert th["ham"].auto == 0.8  # the 0.55 prediction's truth is None: not ham
    items = [S("a", "a", 0.9), S("b", "a", 0.3)]
    assert choose_thresholds(items, target_precision=0.9, review_precision=0.5)["a"].review == 0.3  # 1 of 2
    th = choose_thresholds(items, target_precision=0.9, review_precision=0.6)
    assert th["a"].review == th["a"].auto == 0.9  # no looser threshold reaches 0.6: no review band


def test_targets_must_be_ordered():
    with pytest.raises(ValueError):
        choose_thresholds(ITEMS, target_precision=0.8, review_precision=0.9)


def test_outcomes_and_metrics():
    th = {"spam": Thresholds(auto=0.8, review=0.5), "ham": Thresholds(auto=0.85, review=0.5)}
    assert outcome(S("spam", "spam", 0.8), th) == "spam"
    assert outcome(S("spam", "spam", 0.79), th) == REVIEW
    assert outcome(S("spam", "spam", 0.4), th) == NONE
    assert outcome(S("spam", None, 0.0), th) == NONE
    report = evaluate(ITEMS, th)
    spam = report.labels["spam"]
    # decided as spam: 1.0, 0.9, 0.85 (ham), 0.8 -> 3 correct of 4; 6 items are truly spam
    assert (spam.decided, spam.correct, spam.support) == (4, 3, 6)
    assert spam.precision == 0.75 and spam.recall == 0.5 and spam.f1 == pytest.approx(0.6)
    assert spam.review == 3  # 0.7, 0.6, 0.5
    ham = report.labels["ham"]
    assert (ham.decided, ham.correct, ham.review) == (1, 1, 2)
    assert report.confusion["spam"] == {"spam": 3, REVIEW: 1, NONE: 2}
    assert report.confusion["ham"] == {"spam": 1, REVIEW: 3, "ham": 1}
    assert report.confusion[NONE] == {REVIEW: 1}
    assert report.coverage == pytest.approx(1 - 5 / 12)
    assert report.micro_precision == pytest.approx(4 / 5)
    text = format_report(report)
    assert "confusion matrix" in text and "coverage" in text and "spam" in text
    assert report_dict(report)["labels"]["spam"]["precision"] == 0.75


def test_chosen_thresholds_reach_the_target_on_their_own_data():
    rng = random.Random(7)
    labels = ["a", "b", "c"]
    items = []
    for _ in range(600):
        truth = rng.choice(labels + [None])
        right = rng.random() < 0.7
        predicted = truth if right and truth else rng.choice(labels)
        score = min(1.0, max(0.0, rng.gauss(0.75 if predicted == truth else 0.5, 0.15)))
        items.append(S(truth, predicted, round(score, 3)))
    th = choose_thresholds(items, target_precision=0.9, review_precision=0.7)
    report = evaluate(items, th)
    for label in labels:
        assert th[label].review <= th[label].auto
        if th[label].auto != math.inf:
            assert report.labels[label].precision >= 0.9
            # and it is the smallest: one step lower misses the target
            lower = [t for t, p, n in precision_curve(items, label) if t < th[label].auto]
            assert all(p < 0.9 for t, p, n in precision_curve(items, label) if t in lower)
    assert report.micro_precision >= 0.9


def test_pooled_precision_counts_every_label():
    from governance.moderation.calibration import pooled_precision

    at = pooled_precision(ITEMS)
    assert at(1.0) == 1.0
    assert at(0.9) == 1.0  # spam 1.0, spam 0.9, ham 0.9: all right
    assert at(0.85) == 3 / 4
    assert at(2.0) == 0.0


def test_a_prior_weight_keeps_thin_labels_from_passing_on_luck():
    # "rare" has two lucky predictions at 0.6; across labels a 0.6 score is right half the time.
    items = [S("rare", "rare", 0.6), S("rare", "rare", 0.6)]
    items += [S("x", "x", 0.6), S("y", "x", 0.6), S("x", "x", 1.0), S("x", "x", 1.0)] * 5
    assert smallest_threshold(items, "rare", 0.9)[0] == 0.6
    assert choose_thresholds(items, 0.9, 0.5, prior_weight=5)["rare"].auto == math.inf
    # with m = 0 it is exactly the plain rule
    assert choose_thresholds(items, 0.9, 0.5, prior_weight=0) == choose_thresholds(items, 0.9, 0.5)
    # enough evidence of its own outweighs the prior
    many = items + [S("rare", "rare", 0.6)] * 60
    assert choose_thresholds(many, 0.9, 0.5, prior_weight=5)["rare"].auto == 0.6
