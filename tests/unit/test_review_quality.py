"""The quality numbers against values worked out by hand."""
from __future__ import annotations

import pytest

from governance.moderation.quality import (
    Reviewed, SecondReview, agreement_by_label, agreement_by_pair, agreement_by_reviewer, cohen_kappa, label_scores,
    outcome, overturn_rate, overturns_by_reviewer, sampled_for_second_review,
)

# Two reviewers, ten items, 2 x 2: agree on 4 spam and 4 allow, disagree once each way.
# observed 0.8; chance 0.5*0.5 + 0.5*0.5 = 0.5; kappa (0.8 - 0.5) / (1 - 0.5) = 0.6
TWO_BY_TWO = [("spam", "spam")] * 4 + [("spam", "allow")] + [("allow", "spam")] + [("allow", "allow")] * 4
# Three categories: observed 7/10; first rater spam 4, phishing 2, allow 4; second spam 3, phishing 4,
# allow 3; chance (4*3 + 2*4 + 4*3) / 100 = 0.32; kappa (0.7 - 0.32) / 0.68 = 0.38 / 0.68
THREE = ([("spam", "spam")] * 3 + [("phishing", "phishing")] * 2 + [("allow", "allow")] * 2
         + [("spam", "allow")] + [("allow", "phishing")] * 2)


def test_kappa_of_two_categories():
    assert cohen_kappa(TWO_BY_TWO) == pytest.approx(0.6)


def test_kappa_of_three_categories():
    assert cohen_kappa(THREE) == pytest.approx(0.38 / 0.68)


def test_kappa_when_everyone_agrees_on_one_category_is_total_agreement_not_zero_over_zero():
    assert cohen_kappa([("spam", "spam")] * 5) == 1.0


def test_kappa_of_perfect_disagreement_and_of_nothing():
    assert cohen_kappa([("spam", "allow"), ("allow", "spam")]) == pytest.approx(-1.0)
    assert cohen_kappa([]) is None


def test_kappa_per_pair_reviewer_and_label():
    reviews = ([SecondReview("alice", a, "bob", b) for a, b in TWO_BY_TWO]
               + [SecondReview("carol", "spam", "alice", "spam")] * 2)
    [ab, ac] = agreement_by_pair(reviews)
    assert (ab.key, ab.items, ab.agreed) == ("alice & bob", 10, 8) and ab.kappa == pytest.approx(0.6)
    assert (ac.key, ac.items, ac.kappa) == ("alice & carol", 2, 1.0)  # the degenerate all-agree pair
    by_who = {a.key: a for a in agreement_by_reviewer(reviews)}
    # alice over 12 items: the 10 above plus 2 x (spam, spam): observed 10/12; her spam 7, allow 5; the
    # others' spam 7, allow 5: chance (49 + 25) / 144; kappa (10/12 - 74/144) / (1 - 74/144) = 46/70
    assert by_who["alice"].items == 12 and by_who["alice"].kappa == pytest.approx(46 / 70)
    assert by_who["bob"].kappa == pytest.approx(0.6) and by_who["carol"].kappa == 1.0
    [spam] = agreement_by_label(reviews)
    assert spam.key == "spam" and spam.kappa == pytest.approx(46 / 70)  # spam or not: the same table


def test_precision_recall_and_overturns_of_the_automatic_decisions():
    reviewed = ([Reviewed("alice", "spam", "spam")] * 3 + [Reviewed("alice", "spam", None)]
                + [Reviewed("bob", None, "spam"), Reviewed("bob", "phishing", "spam")]
                + [Reviewed("bob", "phishing", "phishing")] * 2)
    scores = {s.label: s for s in label_scores(reviewed)}
    assert scores["spam"].precision == pytest.approx(3 / 4) and scores["spam"].recall == pytest.approx(3 / 5)
    assert scores["phishing"].precision == pytest.approx(2 / 3) and scores["phishing"].recall == 1.0
    overall = overturn_rate(reviewed)
    assert (overall.reviewed, overall.overturned) == (8, 3) and overall.rate == pytest.approx(0.375)
    assert [(o.key, o.reviewed, o.overturned) for o in overturns_by_reviewer(reviewed)] == [
        ("alice", 4, 1), ("bob", 4, 2)]
    assert overturn_rate([]).rate is None and label_scores([]) == []


def test_a_label_nobody_predicted_has_no_precision():
    [only] = label_scores([Reviewed("a", None, "spam")])
    assert only.precision is None and only.recall == 0.0


def test_outcome_is_the_blocked_label_or_allow():
    assert outcome("block", "spam") == "spam"
    assert outcome("allow", "cooking") == "allow"


def test_second_review_sampling_is_reproducible_and_near_the_share():
    ids = [f"evt-{i}" for i in range(4000)]
    picked = [e for e in ids if sampled_for_second_review(e, 0.1)]
    assert picked == [e for e in ids if sampled_for_second_review(e, 0.1)]
    assert 300 < len(picked) < 500
    assert set(picked) <= {e for e in ids if sampled_for_second_review(e, 0.5)}  # a larger share keeps these
    assert not any(sampled_for_second_review(e, 0.0) for e in ids)
    assert all(sampled_for_second_review(e, 1.0) for e in ids)
