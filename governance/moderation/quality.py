"""How good the reviews and the automatic decisions are: pure numbers, no database.

- **Which decisions get a blind second review** (`sampled_for_second_review`): a share of the events
  chosen from a hash of the event id, so the same event is always chosen or always not.
- **Agreement** (`cohen_kappa`): Cohen's kappa between two reviewers' outcomes on the same items.
  An outcome is `allow`, or the label blocked with (`outcome`). When every item falls in one
  category for both reviewers, chance agreement is 1 and kappa is 0/0: agreement is then total,
  and it is reported as 1.0. No items: None.
- **The automatic decisions measured on reviewed items** (`label_scores`, `overturn_rate`): the
  reviewer's label is the truth (None when they allowed without a label or allowlisted the label),
  the decision's label the prediction. A reviewer overturned a decision when the two differ.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

ALLOW = "allow"


def sampled_for_second_review(event_id: str, share: float) -> bool:
    """True for about `share` of event ids, the same answer for an id every time."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    point = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big") / 2 ** 64
    return point < share


def outcome(action: str, label: str | None) -> str:
    """What a review decided, as one category: `allow`, or the label blocked with."""
    return label if action == "block" and label else ALLOW


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (rater 1, rater 2) category pairs; see the module docstring for the edge cases."""
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[c] * second[c] for c in first) / (n * n)
    if chance >= 1.0:
        return 1.0
    return (observed - chance) / (1.0 - chance)


@dataclass(frozen=True)
class SecondReview:
    """One item both reviewers decided: who decided first and second, and their outcomes."""
    first_who: str
    first: str
    second_who: str
    second: str


@dataclass(frozen=True)
class Agreement:
    key: str  # "alice & bob", a reviewer's name, or a label
    items: int
    agreed: int
    kappa: float | None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.items if self.items else None


def _agreement(key: str, pairs: list[tuple[str, str]]) -> Agreement:
    return Agreement(key, len(pairs), sum(1 for a, b in pairs if a == b), cohen_kappa(pairs))


def agreement_by_pair(reviews: Iterable[SecondReview]) -> list[Agreement]:
    """Kappa of each pair of reviewers over the items they both decided (kappa is symmetric)."""
    by_pair: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for r in reviews:
        (a, x), (b, y) = sorted([(r.first_who, r.first), (r.second_who, r.second)])
        by_pair.setdefault((a, b), []).append((x, y))
    return [_agreement(f"{a} & {b}", pairs) for (a, b), pairs in sorted(by_pair.items())]


def agreement_by_reviewer(reviews: Iterable[SecondReview]) -> list[Agreement]:
    """Kappa of each reviewer against whoever else decided the same items."""
    by_who: dict[str, list[tuple[str, str]]] = {}
    for r in reviews:
        by_who.setdefault(r.first_who, []).append((r.first, r.second))
        by_who.setdefault(r.second_who, []).append((r.second, r.first))
    return [_agreement(who, pairs) for who, pairs in sorted(by_who.items())]


def agreement_by_label(reviews: Iterable[SecondReview]) -> list[Agreement]:
    """Per label, kappa of the two reviews on the yes/no question "is it this label"."""
    reviews = list(reviews)
    labels = sorted({c for r in reviews for c in (r.first, r.second) if c != ALLOW})
    return [_agreement(label, [(r.first == label, r.second == label) for r in reviews])  # type: ignore[misc]
            for label in labels]


@dataclass(frozen=True)
class Reviewed:
    """An automatic decision a reviewer decided on: the decision's label and the reviewer's."""
    who: str | None
    predicted: str | None
    truth: str | None

    @property
    def overturned(self) -> bool:
        return self.predicted != self.truth


@dataclass(frozen=True)
class LabelScore:
    label: str
    predicted: int  # reviewed decisions that had this label
    actual: int  # reviewed items the reviewer gave this label
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.actual if self.actual else None


def label_scores(reviewed: Iterable[Reviewed]) -> list[LabelScore]:
    """Per label, precision and recall of the automatic decisions against the reviewers' labels."""
    reviewed = list(reviewed)
    labels = sorted({x for r in reviewed for x in (r.predicted, r.truth) if x})
    return [LabelScore(label, sum(1 for r in reviewed if r.predicted == label),
                       sum(1 for r in reviewed if r.truth == label),
                       sum(1 for r in reviewed if r.predicted == label and r.truth == label)) for label in labels]


@dataclass(frozen=True)
class Overturns:
    key: str  # a reviewer's name, or "all"
    reviewed: int
    overturned: int

    @property
    def rate(self) -> float | None:
        return self.overturned / self.reviewed if self.reviewed else None


def overturn_rate(reviewed: Iterable[Reviewed]) -> Overturns:
    reviewed = list(reviewed)
    return Overturns("all", len(reviewed), sum(1 for r in reviewed if r.overturned))


def overturns_by_reviewer(reviewed: Iterable[Reviewed]) -> list[Overturns]:
    by_who: dict[str, list[Reviewed]] = {}
    for r in reviewed:
        by_who.setdefault(r.who or "(unknown)", []).append(r)
    return [Overturns(who, len(rs), sum(1 for r in rs if r.overturned)) for who, rs in sorted(by_who.items())]
