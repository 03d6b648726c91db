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


def combine_votes(image: Vote, text: Vote | None) -> tuple[Vote, str]:
    """One vote from an image's two readings: its pixels against the bank, and the text OCR read in it
    against the text exemplars (`text` is None unless that text counts: read confidently, and not
    an anomaly to the text bank). Returns the vote and which reading it rests on: "image", "text"
    or "both".

    The rule: the stronger of the two votes that name a label wins, ties going to the pixels (they
    are the upload; the text is one reading of it). When both name the same label they are two
    views of one picture agreeing, and the score becomes their noisy-OR, 1 - (1 - a)(1 - b): higher
    than either alone, and never above 1. When they disagree, the loser's label keeps its own score
    in `labels`, so the margin shrinks and the policy's near-tie rule can send a close call to a person.
    """
    if text is None or text.label is None:
        return image, "image"
    if image.label is None:
        return text, "text"
    winner, loser, source = (text, image, "text") if text.score > image.score else (image, text, "image")
    scores = dict(loser.labels)
    for label, score in winner.labels:
        scores[label] = max(score, scores.get(label, 0.0))
    if loser.label == winner.label:
        scores[winner.label] = 1.0 - (1.0 - winner.score) * (1.0 - loser.score)
        source = "both"
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0] != winner.label, item[0]))
    best_label, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    return Vote(label=best_label, score=best, labels=ranked, margin=best - runner_up), source
