"""Threshold calibration and its metrics. Pure: scored items in, thresholds and a report out.

Input: one `Scored(truth, predicted, score)` per labelled validation item, where `predicted` and
`score` are the kNN vote's best label and its share of the vote (exactly what production
computes), and `truth` is the expected label (None: the item should get no label).

The rule, per label L, over the items predicted L:

- **auto threshold** = the smallest score t such that the precision of "predicted L with score
  >= t" (the share of those whose truth is L) reaches `target_precision`. Precision is computed
  on every item at or above t, so the chosen t meets the target on the calibration set, and it
  is the smallest such t, so it decides as many items automatically as the target allows.
- **review threshold** = the same rule at the looser `review_precision` (default 0.8), and never
  above the auto threshold. Between the two the item goes to a person ("suggested").
- When no t reaches a target the threshold is `inf` (never): with no auto threshold every
  prediction of L that reaches the review threshold goes to review; with neither, predictions
  of L are not acted on.
- `min_support` (default 1) requires at least that many items at or above t before it counts.
- `prior_weight` m (default 0: off) replaces the label's raw precision by a shrunk estimate,
  (hits(t) + m * pooled(t)) / (n(t) + m), where pooled(t) is the precision of every prediction
  (any label) with score >= t. A label with few validation items then cannot pass on luck: its
  estimate stays near what the score means across all labels until its own evidence outweighs
  m items. With m = 0 the rule is exactly the one above. `governance calibrate` uses m = 10 by
  default: on the dev corpus the plain rule picked thresholds from a handful of lucky items per
  label and missed a 0.95 target on held-out data (scripts/calibration_check.py).

Metrics under thresholds: an item is *decided* as L when predicted L with score >= auto(L), is
*review* when score is in [review(L), auto(L)), and *none* otherwise. Precision(L) = decided L
and truly L / decided L; recall(L) = decided L and truly L / truly L; coverage = share of items
not sent to review.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Callable

NONE = "(none)"
REVIEW = "(review)"
INF = math.inf


@dataclass(frozen=True)
class Scored:
    truth: str | None
    predicted: str | None
    score: float


@dataclass(frozen=True)
class Thresholds:
    auto: float
    review: float
    predicted: int = 0  # items predicted as the label in the calibration set
    auto_precision: float | None = None  # precision at the auto threshold on the calibration set
    review_precision: float | None = None


def precision_curve(items: list[Scored], label: str) -> list[tuple[float, float, int]]:
    """(t, precision of predictions of `label` with score >= t, their count), t descending over
    the distinct scores of those predictions."""
    scored = sorted((item for item in items if item.predicted == label), key=lambda item: -item.score)
    curve, hits, i = [], 0, 0
    while i < len(scored):
        t = scored[i].score
        while i < len(scored) and scored[i].score == t:  # ties enter together
            hits += scored[i].truth == label
            i += 1
        curve.append((t, hits / i, i))
    return curve


def pooled_precision(items: list[Scored]) -> Callable[[float], float]:
    """t -> precision of every prediction (any label) with score >= t."""
    predicted = sorted((item for item in items if item.predicted is not None), key=lambda item: -item.score)
    negated = [-item.score for item in predicted]  # ascending, for bisect
    hits = list(accumulate(item.truth == item.predicted for item in predicted))

    def at(t: float) -> float:
        n = bisect_right(negated, -t)  # predictions with score >= t
        return hits[n - 1] / n if n else 0.0
    return at


def smallest_threshold(items: list[Scored], label: str, target: float, min_support: int = 1,
                       prior_weight: float = 0.0, pooled=None) -> tuple[float, float | None]:
    """(smallest t reaching `target` precision, the precision there), or (inf, None)."""
    if prior_weight and pooled is None:
        pooled = pooled_precision(items)
    best: tuple[float, float | None] = (INF, None)
    for t, precision, n in precision_curve(items, label):
        estimate = ((precision * n + prior_weight * pooled(t)) / (n + prior_weight)) if prior_weight else precision
        if n >= min_support and estimate >= target:
            best = (t, precision)
    return best


def choose_thresholds(items: list[Scored], target_precision: float = 0.95, review_precision: float = 0.8,
                      labels: list[str] | None = None, min_support: int = 1,
                      prior_weight: float = 0.0) -> dict[str, Thresholds]:
    if not 0.0 < review_precision <= target_precision <= 1.0:
        raise ValueError("need 0 < review_precision <= target_precision <= 1")
    if prior_weight < 0 or min_support < 1:
        raise ValueError("need prior_weight >= 0 and min_support >= 1")
    labels = labels if labels is not None else all_labels(items)
    pooled = pooled_precision(items) if prior_weight else None
    out = {}
    for label in labels:
        auto, auto_p = smallest_threshold(items, label, target_precision, min_support, prior_weight, pooled)
        review, review_p = smallest_threshold(items, label, review_precision, min_support, prior_weight, pooled)
        if review > auto:
            review, review_p = auto, auto_p
        out[label] = Thresholds(auto=auto, review=review, predicted=sum(i.predicted == label for i in items),
                                auto_precision=auto_p, review_precision=review_p)
    return out


def all_labels(items: list[Scored]) -> list[str]:
    return sorted({i.truth for i in items if i.truth} | {i.predicted for i in items if i.predicted})


def outcome(item: Scored, thresholds: dict[str, Thresholds]) -> str:
    """The label decided automatically, REVIEW, or NONE."""
    if item.predicted is None or item.predicted not in thresholds:
        return NONE
    th = thresholds[item.predicted]
    if item.score >= th.auto:
        return item.predicted
    if item.score >= th.review:
        return REVIEW
    return NONE


@dataclass
class LabelMetrics:
    precision: float | None
    recall: float | None
    f1: float | None
    decided: int  # decided automatically as the label
    correct: int
    support: int  # items whose truth is the label
    review: int  # items predicted as the label that went to review


@dataclass
class Report:
    labels: dict[str, LabelMetrics]
    confusion: dict[str, dict[str, int]]  # truth (or NONE) -> outcome (label, REVIEW, NONE) -> count
    coverage: float  # share decided without review
    total: int
    decided: int
    correct: int
    micro_precision: float | None  # over every automatic label decision
    thresholds: dict[str, Thresholds] = field(default_factory=dict)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def evaluate(items: list[Scored], thresholds: dict[str, Thresholds]) -> Report:
    confusion: dict[str, dict[str, int]] = {}
    outcomes = [outcome(item, thresholds) for item in items]
    for item, out in zip(items, outcomes):
        row = confusion.setdefault(item.truth or NONE, {})
        row[out] = row.get(out, 0) + 1
    labels = sorted(set(thresholds) | {i.truth for i in items if i.truth})
    metrics = {}
    for label in labels:
        decided = sum(out == label for out in outcomes)
        correct = sum(out == label and item.truth == label for item, out in zip(items, outcomes))
        support = sum(item.truth == label for item in items)
        review = sum(out == REVIEW and item.predicted == label for item, out in zip(items, outcomes))
        precision, recall = _ratio(correct, decided), _ratio(correct, support)
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall > 0 else None)
        metrics[label] = LabelMetrics(precision, recall, f1, decided, correct, support, review)
    decided = sum(out not in (REVIEW, NONE) for out in outcomes)
    correct = sum(out == item.truth for item, out in zip(items, outcomes) if out not in (REVIEW, NONE))
    reviewed = sum(out == REVIEW for out in outcomes)
    return Report(labels=metrics, confusion=confusion, coverage=1 - reviewed / len(items) if items else 1.0,
                  total=len(items), decided=decided, correct=correct, micro_precision=_ratio(correct, decided),
                  thresholds=thresholds)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == INF else f"{value:.3f}"


def format_report(report: Report) -> str:
    """Per-label thresholds and metrics, the confusion matrix and coverage, as plain text."""
    width = max([len(label) for label in report.labels] + [len(NONE), 8])
    lines = [f"{'label':<{width}}  {'auto':>6} {'review':>6}  {'prec':>6} {'recall':>6} {'f1':>6}  "
             f"{'decided':>7} {'review':>6} {'support':>7}"]
    for label, m in report.labels.items():
        th = report.thresholds.get(label)
        lines.append(f"{label:<{width}}  {_fmt(th.auto if th else None):>6} {_fmt(th.review if th else None):>6}  "
                     f"{_fmt(m.precision):>6} {_fmt(m.recall):>6} {_fmt(m.f1):>6}  "
                     f"{m.decided:>7} {m.review:>6} {m.support:>7}")
    lines.append("")
    lines.append(f"automatic label decisions: {report.decided} of {report.total}, precision "
                 f"{_fmt(report.micro_precision)}; coverage (decided without review) {report.coverage:.3f}")
    lines.append("")
    columns = sorted({c for row in report.confusion.values() for c in row if c not in (REVIEW, NONE)})
    columns += [REVIEW, NONE]
    cw = max([len(c) for c in columns] + [5])
    lines.append("confusion matrix (rows: truth, columns: outcome)")
    lines.append(f"{'':<{width}}  " + " ".join(f"{c:>{cw}}" for c in columns))
    for truth in sorted(report.confusion, key=lambda t: (t == NONE, t)):
        row = report.confusion[truth]
        lines.append(f"{truth:<{width}}  " + " ".join(f"{row.get(c, 0):>{cw}}" for c in columns))
    return "\n".join(lines)


def report_dict(report: Report) -> dict:
    """JSON-ready form (`inf` thresholds as the string "inf")."""
    def num(v):
        return "inf" if v == INF else v
    return {
        "labels": {label: {"auto_threshold": num(report.thresholds[label].auto) if label in report.thresholds else None,
                           "review_threshold": num(report.thresholds[label].review) if label in report.thresholds else None,
                           "precision": m.precision, "recall": m.recall, "f1": m.f1, "decided": m.decided,
                           "review": m.review, "support": m.support}
                   for label, m in report.labels.items()},
        "confusion": report.confusion, "coverage": report.coverage, "total": report.total,
        "decided": report.decided, "micro_precision": report.micro_precision,
    }
