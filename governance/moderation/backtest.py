"""Offline evaluation against the tenant's live bank: calibration and backtests.

Both run the production classification (pgvector kNN over the bank, the distance-weighted vote,
the anomaly score, `policy.decide`) and write nothing of their own. They may touch the session
the way production does (anomaly baselines are cached per bank version), so callers run them in
a transaction that is rolled back (`governance calibrate` and `governance backtest` do).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy.orm import Session

from governance.embedding.protocol import EmbeddingError, Task
from governance.embedding.vector_cache import embed_each
from governance.ingest.assets import LoadedAsset, RejectedInput, load
from governance.ingest.events import InvalidEvent, UploadEvent
from governance.moderation import anomaly, calibration
from governance.moderation.anomaly import AnomalyResult
from governance.moderation.pipeline import Context, anomaly_threshold, for_tenant, knn_scan
from governance.moderation.policy_rules import HashMatch, Policy, decide
from governance.moderation.review import classification_tasks
from governance.moderation.vote import Vote, knn_vote
from governance.storage import repository
from governance.storage.rows import Neighbor


@dataclass(frozen=True)
class Classified:
    neighbors: list[Neighbor]
    vote: Vote
    anomaly: AnomalyResult


def classify_vector(session: Session, ctx: Context, tenant: str, policy: Policy, vector: np.ndarray, task: str,
                    modality: str, *, exclude_asset_id: str | None = None) -> Classified:
    """The production kNN, vote and anomaly score for one stored or fresh vector."""
    k = policy.k
    (neighbors,) = repository.nearest_exemplars(session, tenant, ctx.embedder.model_id, ctx.embedder.dims, task,
                                                [vector], k + (1 if exclude_asset_id else 0),
                                                **knn_scan(ctx, cached=False))
    if exclude_asset_id is not None:  # a decided upload that has since joined the bank is not its own evidence
        neighbors = [n for n in neighbors if n.asset_id != exclude_asset_id][:k]
    vote = knn_vote(neighbors, k)
    version = repository.bank_version(session, tenant)
    threshold = anomaly_threshold(session, replace(ctx, policy=policy), tenant, modality, task, version)
    return Classified(neighbors, vote, anomaly.score([n.distance for n in neighbors], k, threshold))


# --- calibration -------------------------------------------------------------------------------

@dataclass
class Evaluated:
    asset_id: str
    truth: str | None
    classified: Classified

    @property
    def scored(self) -> calibration.Scored:
        return calibration.Scored(self.truth, self.classified.vote.label, self.classified.vote.score)


@dataclass
class Calibration:
    items: list[Evaluated]
    rejected: list[tuple[str, str]]
    thresholds: dict[str, calibration.Thresholds]
    report: calibration.Report
    policy: Policy  # the base policy with the calibrated thresholds
    actions: Counter  # what `decide` does under `policy` with the calibration items
    base_version: str

    @property
    def policy_coverage(self) -> float:
        total = sum(self.actions.values())
        return 1 - self.actions.get("review", 0) / total if total else 1.0


def evaluate_items(session: Session, ctx: Context, tenant: str, policy: Policy, raw_items: list[dict],
                   batch_size: int = 64) -> tuple[list[Evaluated], list[tuple[str, str]]]:
    """Embed labelled items (the content cache is read, nothing is stored) and classify them."""
    evaluated, rejected = [], []
    ready: list[tuple[UploadEvent, LoadedAsset, str | None]] = []
    for raw in raw_items:
        name = str(raw.get("asset_id") if isinstance(raw, dict) else raw)
        try:
            if not isinstance(raw, dict):
                raise InvalidEvent("not a JSON object")
            truth = raw.get("label")
            if truth is not None and (not isinstance(truth, str) or not truth):
                raise InvalidEvent("invalid_field: label must be a non-empty string or null")
            event = UploadEvent.parse({**{k: v for k, v in raw.items() if k not in ("label", "polarity")},
                                       "tenant": tenant})
            ready.append((event, load(event, ctx.settings), truth))
        except (InvalidEvent, RejectedInput) as exc:
            rejected.append((name, str(exc)))
    for start in range(0, len(ready), batch_size):
        batch = ready[start:start + batch_size]
        vectors = embed_each(session, ctx.embedder, tenant, [loaded for _, loaded, _ in batch], Task.CLASSIFICATION)
        for (event, loaded, truth), embedded in zip(batch, vectors):
            if isinstance(embedded, EmbeddingError):
                rejected.append((event.asset_id, str(embedded)))
                continue
            classified = classify_vector(session, ctx, tenant, policy, embedded.vector, embedded.task,
                                         loaded.content.modality)
            evaluated.append(Evaluated(event.asset_id, truth, classified))
    return evaluated, rejected


def calibrated_policy(base: Policy, thresholds: dict[str, calibration.Thresholds], version: str) -> Policy:
    labels = dict(base.labels)
    for label, th in thresholds.items():
        labels[label] = replace(base.for_label(label), auto_threshold=th.auto, review_threshold=th.review)
    return replace(base, version=version, labels=labels)


def next_version(base: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    if base.startswith("builtin"):
        return f"calibrated-{stamp}"
    stem = re.sub(r"\+cal-\d{8}T\d{6}$", "", base)[:64 - 21]
    return f"{stem}+cal-{stamp}"


def calibrate(session: Session, ctx: Context, tenant: str, raw_items: list[dict], *,
              target_precision: float = 0.95, review_precision: float = 0.8, min_support: int = 1,
              prior_weight: float = 0.0, base: Policy | None = None, version: str | None = None) -> Calibration:
    """Classify labelled items with the tenant's bank and policy, choose per-label thresholds
    (rule: governance/moderation/calibration.py), and report how the calibrated policy does on them."""
    ctx = for_tenant(session, ctx, tenant)  # the tenant's policy and active model
    base = base or ctx.policy
    items, rejected = evaluate_items(session, ctx, tenant, base, raw_items)
    scored = [item.scored for item in items]
    thresholds = calibration.choose_thresholds(scored, target_precision, review_precision,
                                               min_support=min_support, prior_weight=prior_weight)
    report = calibration.evaluate(scored, thresholds)
    policy = calibrated_policy(base, thresholds, version or next_version(base.version))
    actions = Counter(decide(i.classified.vote, i.classified.neighbors, i.classified.anomaly, policy).action
                      for i in items)
    return Calibration(items, rejected, thresholds, report, policy, actions, base.version)


# --- backtest ----------------------------------------------------------------------------------

@dataclass
class Backtest:
    candidate: str
    current: str
    replayed: int = 0
    stored_to_candidate: Counter = field(default_factory=Counter)  # (stored action, candidate action)
    current_to_candidate: Counter = field(default_factory=Counter)  # (current policy now, candidate)
    examples: dict[tuple[str, str], list[dict]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(n for (a, b), n in self.stored_to_candidate.items() if a != b)


def backtest(session: Session, ctx: Context, tenant: str, candidate: Policy, *, days: float | None = None,
             limit: int = 10_000, examples: int = 5) -> Backtest:
    """Replay the stored vectors of decided uploads through `candidate` with the current bank.

    Each stored decision is compared with what the candidate would decide now, and with what the
    tenant's current policy decides now on the same bank (so policy effects can be told apart
    from bank changes). Nothing is written by this function beyond what classification caches.
    """
    ctx = for_tenant(session, ctx, tenant)  # the tenant's policy and active model
    current = ctx.policy
    since = datetime.now(timezone.utc) - timedelta(days=days) if days else None
    result = Backtest(candidate=candidate.version, current=current.version)
    widest = current if current.k >= candidate.k else candidate
    seen: set[int] = set()
    for decision, modality, task, vector in repository.decisions_with_vectors(
            session, tenant, ctx.embedder.model_id, ctx.embedder.dims, sorted(classification_tasks(ctx)), since,
            limit):
        if decision.id in seen:
            continue
        seen.add(decision.id)
        wide = classify_vector(session, ctx, tenant, widest, vector, task, modality,
                               exclude_asset_id=decision.asset_id)
        now = {}
        # The hash evidence as stored: the bank hashes within the deciding policy's hash distance.
        hashes = [HashMatch.from_dict(m) for m in decision.hash_matches or []]
        for name, policy in (("current", current), ("candidate", candidate)):
            neighbors = wide.neighbors[:policy.k]
            vote = knn_vote(neighbors, policy.k)
            threshold = anomaly_threshold(session, replace(ctx, policy=policy), tenant, modality, task,
                                          repository.bank_version(session, tenant))
            scored = anomaly.score([n.distance for n in neighbors], policy.k, threshold)
            now[name] = (decide(vote, neighbors, scored, policy, hashes), vote)
        outcome, vote = now["candidate"]
        result.replayed += 1
        result.stored_to_candidate[(decision.action, outcome.action)] += 1
        result.current_to_candidate[(now["current"][0].action, outcome.action)] += 1
        key = (decision.action, outcome.action)
        if decision.action != outcome.action and len(result.examples.setdefault(key, [])) < examples:
            result.examples[key].append({
                "event_id": decision.event_id, "asset_id": decision.asset_id, "from": decision.action,
                "to": outcome.action, "stored_label": decision.label, "label": vote.label,
                "score": round(vote.score, 4), "reason": outcome.reason,
            })
    return result


def backtest_report(result: Backtest) -> dict:
    """The JSON form of a backtest (`governance backtest --json` and `POST /v1/policies/backtest`)."""
    return {"candidate": result.candidate, "current": result.current, "replayed": result.replayed,
            "changed": result.changed,
            "stored_to_candidate": [{"from": a, "to": b, "count": n}
                                    for (a, b), n in sorted(result.stored_to_candidate.items())],
            "current_to_candidate": [{"from": a, "to": b, "count": n}
                                     for (a, b), n in sorted(result.current_to_candidate.items())],
            "examples": [row for rows in result.examples.values() for row in rows]}


def format_backtest(result: Backtest) -> str:
    lines = [f"replayed {result.replayed} decided uploads: stored decision -> candidate policy "
             f"{result.candidate!r} (current policy: {result.current!r})",
             f"changed: {result.changed}", "", "stored -> candidate:"]
    for (a, b), n in sorted(result.stored_to_candidate.items()):
        lines.append(f"  {a:>6} -> {b:<6} {n:>6}" + ("" if a != b else "  (unchanged)"))
    lines += ["", "current policy now -> candidate (same bank, policy effect only):"]
    for (a, b), n in sorted(result.current_to_candidate.items()):
        lines.append(f"  {a:>6} -> {b:<6} {n:>6}" + ("" if a != b else "  (unchanged)"))
    for (a, b), rows in sorted(result.examples.items()):
        lines += ["", f"examples {a} -> {b}:"]
        for row in rows:
            lines.append(f"  {row['asset_id']} ({row['event_id']}): label {row['label']} score {row['score']} "
                         f"[{row['reason']}]")
    return "\n".join(lines)


__all__ = ["Backtest", "Calibration", "Classified", "Evaluated", "backtest", "backtest_report", "calibrate", "calibrated_policy",
           "classify_vector", "evaluate_items", "format_backtest", "next_version"]
