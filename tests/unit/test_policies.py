import math
from pathlib import Path

import pytest

from governance.moderation.anomaly import AnomalyResult
from governance.moderation.policy_rules import LabelPolicy, Policy, decide
from governance.moderation.policy_store import PolicyError, parse_policy, policy_document, policy_to_toml
from governance.moderation.vote import knn_vote
from governance.storage.rows import Neighbor

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
CALM = AnomalyResult(score=0.1, threshold=0.5, flagged=False)


def test_the_example_policy_is_valid_and_round_trips():
    parsed = parse_policy(EXAMPLE.read_text())
    policy = parsed.policy
    assert policy.version == "2026-06-01.1" and policy.k == 10
    assert policy.for_label("spam") == LabelPolicy("block", 0.85, 0.5, 0.05)
    assert policy.for_label("landscape").action == "allow"
    assert parse_policy(policy_to_toml(policy)).policy == policy


def test_labels_inherit_what_they_leave_out_from_default():
    policy = parse_policy('version = "v"\n[default]\nauto_threshold = 0.7\nreview_threshold = 0.2\n'
                          '[labels.spam]\naction = "block"\n').policy
    assert policy.for_label("spam") == LabelPolicy("block", 0.7, 0.2, None)
    assert policy.for_label("other") == LabelPolicy("allow", 0.7, 0.2, None)


def test_defaults_are_the_builtin_policy():
    policy = parse_policy('version = "v"\n').policy
    builtin = Policy()
    assert (policy.k, policy.tie_margin, policy.anomaly_action, policy.default, policy.retroactive_days) == \
        (builtin.k, builtin.tie_margin, builtin.anomaly_action, builtin.default, builtin.retroactive_days)


def test_inf_means_never_and_survives_a_round_trip():
    policy = parse_policy('version = "v"\n[labels.spam]\naction = "block"\nauto_threshold = inf\n'
                          'review_threshold = inf\n').policy
    assert policy.for_label("spam").auto_threshold == math.inf
    assert parse_policy(policy_to_toml(policy)).policy == policy
    assert policy_document(policy)["labels"]["spam"]["auto_threshold"] == "inf"


@pytest.mark.parametrize("text, problem", [
    ("k = 3", "version: required"),
    ('version = "builtin-2"', "reserved"),
    ('version = "has space"', "version"),
    ('version = "v"\nk = 0', "k:"),
    ('version = "v"\nk = true', "k:"),
    ('version = "v"\ncolour = "red"', "colour: unknown key"),
    ('version = "v"\nanomaly_action = "explode"', "anomaly_action"),
    ('version = "v"\ntie_margin = 2', "tie_margin"),
    ('version = "v"\nretroactive_days = -1', "retroactive_days"),
    ('version = "v"\n[labels.spam]\naction = "delete"', "labels.spam.action"),
    ('version = "v"\n[labels.spam]\nauto_threshold = 1.5', "labels.spam.auto_threshold"),
    ('version = "v"\n[labels.spam]\nauto_threshold = nan', "labels.spam.auto_threshold"),
    ('version = "v"\n[labels.spam]\nauto_threshold = 0.3\nreview_threshold = 0.5', "above auto_threshold"),
    ('version = "v"\n[labels.spam]\nnear_duplicate_distance = 3', "near_duplicate_distance"),
    ('version = "v"\n[labels.spam]\nthreshold = 0.5', "labels.spam.threshold: unknown key"),
    ('version = "v"\nlabels = 3', "labels: must be a table"),
    ('version = "v"\n[default]\naction = "nope"', "default.action"),
    ("version = ", "not valid TOML"),
])
def test_invalid_policies_are_refused_with_the_reason(text, problem):
    with pytest.raises(PolicyError, match=problem):
        parse_policy(text)


def test_every_problem_is_reported_at_once():
    with pytest.raises(PolicyError) as info:
        parse_policy('k = 0\n[labels.a]\naction = "x"\n[labels.b]\nauto_threshold = 9\n')
    message = str(info.value)
    assert all(part in message for part in ("version", "k:", "labels.a.action", "labels.b.auto_threshold"))


def test_written_files_carry_comments_and_odd_label_names():
    policy = Policy(version="v2", labels={"signs and symbols": LabelPolicy("block", 0.9, 0.5)})
    text = policy_to_toml(policy, tenant="t1", comments={"signs and symbols": "calibrated on 12"},
                          header="line one\nline two")
    assert text.startswith("# line one\n# line two\n") and "# calibrated on 12" in text
    parsed = parse_policy(text)
    assert parsed.policy == policy and parsed.tenant == "t1"


# decide() with bank polarity: allowlists and near-duplicates

SPAM = Policy(labels={"spam": LabelPolicy("block", 0.6, 0.4, near_duplicate_distance=0.05)})


def test_negative_exemplars_that_cancel_every_label_allow_the_item():
    neighbors = [Neighbor("ok", "spam", 0.01, "negative"), Neighbor("bad", "spam", 0.3)]
    vote = knn_vote(neighbors, 10)
    assert vote.label is None
    outcome = decide(vote, neighbors, CALM, SPAM)
    assert outcome.action == "allow" and outcome.reason.startswith("allowlisted")


def test_an_allowlist_entry_as_close_as_a_known_bad_one_wins():
    neighbors = [Neighbor("ok", "spam", 0.01, "negative"), Neighbor("bad", "spam", 0.02), Neighbor("h", "ham", 0.5)]
    outcome = decide(knn_vote(neighbors, 10), neighbors, CALM, SPAM)
    # Not blocked as a near duplicate; what is left is a near tie of ham (allow) and spam (block).
    assert (outcome.action, outcome.reason.split(":")[0]) == ("review", "near_tie")
    farther = [Neighbor("ok", "spam", 0.04, "negative"), Neighbor("bad", "spam", 0.02)]
    assert decide(knn_vote(farther, 10), farther, CALM, SPAM).reason.startswith("near_duplicate")


def test_an_anomalous_allowlisted_item_still_escalates():
    neighbors = [Neighbor("ok", "spam", 0.01, "negative")]
    odd = AnomalyResult(score=0.9, threshold=0.5, flagged=True)
    assert decide(knn_vote(neighbors, 10), neighbors, odd, SPAM).action == "review"


def test_an_inf_auto_threshold_sends_every_prediction_to_review():
    policy = Policy(labels={"spam": LabelPolicy("block", math.inf, 0.3)})
    neighbors = [Neighbor("bad", "spam", 0.2)]
    assert decide(knn_vote(neighbors, 10), neighbors, CALM, policy).action == "review"
