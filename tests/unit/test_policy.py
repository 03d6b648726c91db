from governance.moderation.anomaly import AnomalyResult
from governance.moderation.policy_rules import LabelPolicy, Policy, decide
from governance.moderation.vote import Vote
from governance.storage.rows import Neighbor

CALM = AnomalyResult(score=0.1, threshold=0.5, flagged=False)
ODD = AnomalyResult(score=0.9, threshold=0.5, flagged=True)
POLICY = Policy(labels={"spam": LabelPolicy(action="block", auto_threshold=0.8, review_threshold=0.5,
                                            near_duplicate_distance=0.02)})
SPAM_NEAR = [Neighbor("e1", "spam", 0.3)]


def test_confident_label_takes_its_action():
    assert decide(Vote("spam", 0.9, [("spam", 0.9), ("ham", 0.1)], 0.8), SPAM_NEAR, CALM, POLICY).action == "block"


def test_suggested_band_goes_to_review():
    outcome = decide(Vote("spam", 0.6, [("spam", 0.6), ("ham", 0.4)], 0.2), SPAM_NEAR, CALM, POLICY)
    assert outcome.action == "review" and outcome.reason.startswith("suggested")


def test_low_confidence_block_label_is_allowed():
    outcome = decide(Vote("spam", 0.3, [("spam", 0.3), ("ham", 0.25), ("x", 0.2)], 0.05), SPAM_NEAR, CALM,
                     Policy(tie_margin=0.0, labels=POLICY.labels))
    assert outcome.action == "allow" and outcome.reason.startswith("low_confidence")


def test_near_tie_between_different_actions_goes_to_review():
    outcome = decide(Vote("spam", 0.85, [("spam", 0.85), ("ham", 0.8)], 0.05), SPAM_NEAR, CALM, POLICY)
    assert outcome.action == "review" and outcome.reason.startswith("near_tie")


def test_near_duplicate_of_known_bad_blocks_whatever_the_vote():
    neighbors = [Neighbor("bad-1", "spam", 0.01), Neighbor("h", "ham", 0.2)]
    outcome = decide(Vote("ham", 0.9, [("ham", 0.9), ("spam", 0.1)], 0.8), neighbors, CALM, POLICY)
    assert outcome.action == "block" and "bad-1" in outcome.reason


def test_anomaly_escalates_an_allow_to_review_but_never_softens_a_block():
    allow = decide(Vote("ham", 0.9, [("ham", 0.9)], 0.9), [Neighbor("h", "ham", 0.2)], ODD, POLICY)
    assert allow.action == "review" and allow.reason.startswith("anomaly")
    block = decide(Vote("spam", 0.95, [("spam", 0.95)], 0.95), SPAM_NEAR, ODD, POLICY)
    assert block.action == "block"


def test_no_match_goes_to_review():
    assert decide(Vote(None, 0.0), [], CALM, POLICY).action == "review"
