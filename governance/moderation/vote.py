"""Distance-weighted kNN vote. Pure: takes neighbours, returns a vote; no database here."""
from __future__ import annotations

from dataclasses import dataclass, field
from governance.storage.rows import Neighbor

# Keeps an exact duplicate (distance 0) from getting an infinite weight.
DISTANCE_FLOOR = 1e-3


@dataclass(frozen=True)
class Vote:
    label: str | None
    score: float  # share of the positive vote weight held by `label`, 0..1
    labels: list[tuple[str, float]] = field(default_factory=list)  # every label, best first
    margin: float = 0.0  # score of the best label minus the runner-up


def weight(distance: float) -> float:
    return 1.0 / max(distance, DISTANCE_FLOOR)


def knn_vote(neighbors: list[Neighbor], k: int) -> Vote:
    """Vote over the k nearest neighbours, each weighted by 1/distance.

    A negative exemplar subtracts its weight from its label, so an allowlisted near-duplicate
    cancels the label it would otherwise push.
    """
    nearest = sorted(neighbors, key=lambda n: n.distance)[:k]
    totals: dict[str, float] = {}
    positive_weight = 0.0
    for n in nearest:
        w = weight(n.distance)
        if n.polarity == "negative":
            totals[n.label] = totals.get(n.label, 0.0) - w
        else:
            totals[n.label] = totals.get(n.label, 0.0) + w
            positive_weight += w
    if positive_weight <= 0:
        return Vote(label=None, score=0.0)
    scores = sorted(((label, max(0.0, t) / positive_weight) for label, t in totals.items()),
                    key=lambda item: (-item[1], item[0]))
    best_label, best = scores[0]
    runner_up = scores[1][1] if len(scores) > 1 else 0.0
    if best <= 0:
        return Vote(label=None, score=0.0, labels=scores)
    return Vote(label=best_label, score=best, labels=scores, margin=best - runner_up)
