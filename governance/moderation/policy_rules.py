"""Policy: how a vote and an anomaly score become an action. Pure: no I/O.

Two tiers per label, as moderation teams use them: at or above `auto_threshold` the label's
action is taken automatically ("confirmed"); between `review_threshold` and it, the item goes
to a person ("suggested"); below `review_threshold` the label is not taken and the item is allowed
("low_confidence"). A near tie between labels with different actions also goes to review. A
threshold of `inf` means never: `auto_threshold = inf` sends every prediction of the label to
review. A positive exemplar of a `block` label within `near_duplicate_distance` blocks whatever the
vote, unless a negative (allowlist) exemplar of that label is at least as close; when negative
exemplars cancel every label the item is allowed ("allowlisted").

Hash-bank matches come first: a known hash of a label within its `hash_distance` (PDQ bits; 0 for
the exact MD5 and SHA-256) does what the label's `on_hash_match` says (`block` or `review`), unless
an allowlist hash of that label is at least as close. An allowlist hash also suppresses its label's
near-duplicate rule and vote, as a negative exemplar does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from governance.moderation.anomaly import AnomalyResult
from governance.moderation.vote import Vote
from governance.storage.rows import Neighbor

ACTION_SEVERITY = {"allow": 0, "review": 1, "block": 2}


@dataclass(frozen=True)
class LabelPolicy:
    action: str = "allow"  # allow|review|block when the label is confirmed
    auto_threshold: float = 0.6
    review_threshold: float = 0.35
    near_duplicate_distance: float | None = None  # block any item this close to a positive exemplar
    on_hash_match: str = "review"  # review|block: what a known hash of this label within hash_distance does
    hash_distance: int = 31  # PDQ Hamming bits (of 256) that still match; PDQ's authors recommend 31


@dataclass(frozen=True)
class Policy:
    version: str = "builtin-1"
    k: int = 10
    tie_margin: float = 0.1
    anomaly_action: str = "review"  # what a flagged anomaly does: review|block|allow
    retroactive_days: int = 7  # a new known-bad exemplar re-checks assets allowed this recently
    default: LabelPolicy = field(default_factory=LabelPolicy)
    labels: dict[str, LabelPolicy] = field(default_factory=dict)

    def for_label(self, label: str) -> LabelPolicy:
        return self.labels.get(label, self.default)


@dataclass(frozen=True)
class HashMatch:
    """A bank hash that an upload's own hash matched (hash_matching.py finds them)."""

    signal_type: str  # pdq|md5|sha256|vpdq
    distance: int  # Hamming bits for PDQ, 0 for an exact hash, for vPDQ the % of frames unmatched
    label: str
    source: str
    bank_version: int
    polarity: str = "positive"  # "negative": an allowlist hash that suppresses `label`

    @classmethod
    def from_dict(cls, d: dict) -> "HashMatch":
        return cls(d["signal_type"], d["distance"], d["label"], d["source"], d["bank_version"],
                   d.get("polarity", "positive"))

    def as_dict(self) -> dict:
        return {"signal_type": self.signal_type, "distance": self.distance, "label": self.label,
                "source": self.source, "bank_version": self.bank_version,
                **({"polarity": self.polarity} if self.polarity != "positive" else {})}


@dataclass(frozen=True)
class Outcome:
    action: str
    reason: str
    near_duplicate: Neighbor | None = None  # the exemplar, when the near-duplicate rule decided


def hash_outcome(matches: list[HashMatch], policy: Policy) -> Outcome | None:
    """What the nearest known-bad hash does, or None when no hash match counts."""
    allowlisted = _hash_allowlist(matches, policy)
    for m in sorted(matches, key=lambda m: (m.distance, m.label)):
        rule = policy.for_label(m.label)
        if (m.polarity == "positive" and _within(m, rule)
                and not allowlisted.get(m.label, (float("inf"),))[0] <= m.distance):
            return Outcome(rule.on_hash_match, f"hash_match: {m.signal_type} distance {m.distance} to a {m.label} "
                                               f"hash from {m.source} (hash bank version {m.bank_version})")
    return None


def _within(match: HashMatch, rule: LabelPolicy) -> bool:
    """`hash_distance` is a PDQ radius; an exact hash or a vPDQ match (threatexchange's own
    thresholds decided it) always counts."""
    return match.signal_type != "pdq" or match.distance <= rule.hash_distance


def _hash_allowlist(matches: list[HashMatch], policy: Policy) -> dict[str, tuple[int, HashMatch]]:
    """label -> (distance, match) of the nearest allowlist hash within the label's hash distance."""
    allowlisted: dict[str, tuple[int, HashMatch]] = {}
    for m in matches:
        if (m.polarity == "negative" and _within(m, policy.for_label(m.label))
                and m.distance < allowlisted.get(m.label, (float("inf"),))[0]):
            allowlisted[m.label] = (m.distance, m)
    return allowlisted


def decide(vote: Vote, neighbors: list[Neighbor], anomaly: AnomalyResult, policy: Policy,
           hash_matches: list[HashMatch] = ()) -> Outcome:
    by_hash = hash_outcome(list(hash_matches), policy)
    if by_hash is not None:
        return _escalate(by_hash, anomaly, policy)
    hash_allowlisted = _hash_allowlist(list(hash_matches), policy)
    allowlisted: dict[str, float] = {}  # label -> distance of the nearest negative exemplar
    for n in neighbors:
        if n.polarity == "negative":
            allowlisted[n.label] = min(n.distance, allowlisted.get(n.label, n.distance))
    for n in sorted(neighbors, key=lambda n: n.distance):
        rule = policy.for_label(n.label)
        if (n.polarity == "positive" and rule.near_duplicate_distance is not None
                and n.distance <= rule.near_duplicate_distance and rule.action == "block"
                and not allowlisted.get(n.label, float("inf")) <= n.distance  # an allowlist entry as close wins
                and n.label not in hash_allowlisted):
            return Outcome("block", f"near_duplicate: distance {n.distance:.4f} to exemplar {n.asset_id} ({n.label})",
                           near_duplicate=n)
    if vote.label is None:
        if allowlisted:
            nearest = min(allowlisted, key=allowlisted.get)
            return _escalate(Outcome("allow", f"allowlisted: negative exemplar of {nearest} at distance "
                                              f"{allowlisted[nearest]:.4f} suppresses every label"), anomaly, policy)
        return Outcome("review", "no_match: no positive exemplar among the nearest neighbours")

    rule = policy.for_label(vote.label)
    if vote.score >= rule.auto_threshold:
        outcome = Outcome(rule.action, f"confirmed: {vote.label} with score {vote.score:.3f}")
    elif vote.score >= rule.review_threshold:
        outcome = Outcome("review" if rule.action != "allow" else "allow",
                          f"suggested: {vote.label} with score {vote.score:.3f}")
    else:
        outcome = Outcome("allow", f"low_confidence: best label {vote.label} with score {vote.score:.3f}")

    if len(vote.labels) > 1 and vote.margin < policy.tie_margin:
        runner_up = vote.labels[1][0]
        if policy.for_label(runner_up).action != rule.action:
            outcome = Outcome("review", f"near_tie: {vote.label} vs {runner_up} (margin {vote.margin:.3f})")

    if vote.label in hash_allowlisted and outcome.action != "allow":
        distance, match = hash_allowlisted[vote.label]
        outcome = Outcome("allow", f"allowlisted: {match.signal_type} hash of {vote.label} from {match.source} "
                                   f"at distance {distance} suppresses {vote.label}")

    return _escalate(outcome, anomaly, policy)


def _escalate(outcome: Outcome, anomaly: AnomalyResult, policy: Policy) -> Outcome:
    """A flagged anomaly can make an outcome stricter (`anomaly_action`), never softer."""
    if anomaly.flagged and ACTION_SEVERITY.get(policy.anomaly_action, 0) > ACTION_SEVERITY[outcome.action]:
        return Outcome(policy.anomaly_action,
                       f"anomaly: k-NN distance {anomaly.score:.3f} above {anomaly.threshold:.3f}; {outcome.reason}")
    return outcome
