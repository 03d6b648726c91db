"""The hash-match rule (policy_rules.py) and its policy fields (policy_store.py), without a database."""
import pytest

from governance.moderation.anomaly import AnomalyResult
from governance.moderation.policy_rules import HashMatch, LabelPolicy, Policy, decide, hash_outcome
from governance.moderation.policy_store import PolicyError, parse_policy, policy_document, policy_to_toml
from governance.moderation.vote import Vote
from governance.storage.rows import Neighbor

CALM = AnomalyResult(score=0.1, threshold=0.5, flagged=False)
ODD = AnomalyResult(score=0.9, threshold=0.5, flagged=True)
POLICY = Policy(labels={
    "csam": LabelPolicy(action="block", on_hash_match="block", hash_distance=31),
    "spam": LabelPolicy(action="block", near_duplicate_distance=0.05),  # on_hash_match: review (default)
})
HAM_VOTE = Vote("ham", 0.9, [("ham", 0.9)], 0.9)
HAM = [Neighbor("h1", "ham", 0.2)]


def pdq(distance: int, label: str = "csam", polarity: str = "positive") -> HashMatch:
    return HashMatch("pdq", distance, label, "partner-list", 4, polarity)


def test_a_known_hash_decides_before_the_vote_with_the_label_action():
    outcome = decide(HAM_VOTE, HAM, CALM, POLICY, [pdq(12)])
    assert outcome.action == "block"
    assert outcome.reason == "hash_match: pdq distance 12 to a csam hash from partner-list (hash bank version 4)"
    spam = decide(HAM_VOTE, HAM, CALM, POLICY, [HashMatch("md5", 0, "spam", "feed", 2)])
    assert spam.action == "review" and spam.reason.startswith("hash_match: md5 distance 0 to a spam hash")


def test_a_match_beyond_the_label_distance_is_not_a_match():
    assert hash_outcome([pdq(32)], POLICY) is None
    assert decide(HAM_VOTE, HAM, CALM, POLICY, [pdq(32)]).action == "allow"


def test_an_allowlist_hash_as_close_suppresses_the_known_bad_one_and_the_vote():
    assert hash_outcome([pdq(10), pdq(10, polarity="negative")], POLICY) is None
    assert hash_outcome([pdq(10), pdq(11, polarity="negative")], POLICY).action == "block"  # the bad one is closer
    spam_vote = Vote("spam", 0.95, [("spam", 0.95)], 0.95)
    blocked = decide(spam_vote, [Neighbor("s1", "spam", 0.3)], CALM, POLICY)
    assert blocked.action == "block"
    allowed = decide(spam_vote, [Neighbor("s1", "spam", 0.3)], CALM, POLICY,
                     [HashMatch("sha256", 0, "spam", "ok-list", 3, "negative")])
    assert allowed.action == "allow" and allowed.reason.startswith("allowlisted: sha256 hash of spam from ok-list")


def test_an_allowlist_hash_suppresses_the_near_duplicate_rule_of_its_label():
    neighbors = [Neighbor("s1", "spam", 0.01)]
    caught = decide(HAM_VOTE, neighbors, CALM, POLICY)
    assert caught.action == "block" and caught.near_duplicate == neighbors[0]
    spared = decide(HAM_VOTE, neighbors, CALM, POLICY, [HashMatch("pdq", 3, "spam", "ok", 1, "negative")])
    assert spared.action == "allow" and spared.near_duplicate is None


def test_anomaly_still_escalates_a_hash_review():
    escalate = Policy(anomaly_action="block", labels=POLICY.labels)
    outcome = decide(HAM_VOTE, HAM, ODD, escalate, [HashMatch("md5", 0, "spam", "feed", 2)])
    assert outcome.action == "block" and "hash_match" in outcome.reason


def test_policy_files_take_the_hash_fields_and_round_trip():
    policy = parse_policy('version = "v1"\n[default]\non_hash_match = "block"\n'
                          '[labels.spam]\naction = "block"\non_hash_match = "review"\nhash_distance = 20\n'
                          '[labels.other]\naction = "review"\n').policy
    assert policy.for_label("spam").on_hash_match == "review" and policy.for_label("spam").hash_distance == 20
    assert policy.for_label("other").on_hash_match == "block" and policy.for_label("other").hash_distance == 31
    assert parse_policy(policy_to_toml(policy)).policy == policy
    assert policy_document(policy)["labels"]["spam"]["hash_distance"] == 20


def test_a_policy_without_hash_fields_keeps_the_document_it_had_before_hash_banks():
    document = policy_document(parse_policy('version = "v1"\n[labels.spam]\naction = "block"\n').policy)
    assert set(document["labels"]["spam"]) == {"action", "auto_threshold", "review_threshold",
                                               "near_duplicate_distance"}


@pytest.mark.parametrize("table, problem", [
    ('on_hash_match = "allow"', "on_hash_match: must be one of block, review"),
    ("hash_distance = 300", "hash_distance: must be an integer number of PDQ bits in [0, 128]"),
    ("hash_distance = 3.5", "hash_distance: must be an integer"),
    ("hash_distance = true", "hash_distance: must be an integer"),
])
def test_invalid_hash_fields_are_refused_with_the_reason(table, problem):
    with pytest.raises(PolicyError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(f'version = "v1"\n[labels.spam]\n{table}\n')


def test_the_example_policy_sets_the_hash_fields_of_one_label():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
    policy = parse_policy(example.read_text()).policy
    assert (policy.for_label("qr_spam").on_hash_match, policy.for_label("qr_spam").hash_distance) == ("block", 24)
    assert (policy.for_label("spam").on_hash_match, policy.for_label("spam").hash_distance) == ("review", 31)
