"""Use cases. Each takes a Session and flushes; the worker or CLI that owns the session commits."""
from __future__ import annotations

import hashlib
import logging
import os
import signal
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy.orm import Session

from governance.embedding.protocol import Embedder
from governance.embedding.tenant_models import tenant_embedder
from governance.ingest.assets import LoadedAsset
from governance.ingest.events import InvalidEvent, UploadEvent, identify
from governance.moderation import anomaly
from governance.moderation.policy_rules import Policy, decide
from governance.moderation.policy_store import current_policy
from governance.moderation.vote import knn_vote
from governance.platform.config import Settings
from governance.storage import repository

log = logging.getLogger(__name__)
ANOMALY_SAMPLE = 5000


@dataclass
class Context:
    """The collaborators a use case needs, built once per process by the caller."""

    settings: Settings
    embedder: Embedder
    policy: Policy = field(default_factory=Policy)  # used for tenants that have applied no policy
    wrap_embedder: Callable[[Embedder], Embedder] | None = None  # e.g. metrics, for tenant embedders too


def for_tenant(session: Session, ctx: Context, tenant: str) -> Context:
    """The context with the tenant's current applied policy (cached per process; see policy_store.py)
    and the tenant's active embedder (see tenant_models.py)."""
    policy = current_policy(session, tenant, ctx.policy)
    embedder = tenant_embedder(session, ctx.settings, ctx.embedder, tenant, ctx.wrap_embedder)
    if policy is ctx.policy and embedder is ctx.embedder:
        return ctx
    return replace(ctx, policy=policy, embedder=embedder)


# --- accepting events ---------------------------------------------------------------------

@dataclass
class Accepted:
    new: list[tuple[str, str]]
    duplicates: int  # identical to an event accepted before this call: nothing to do, nothing lost
    refused: list[tuple[int, str]]  # (line, reason) of every other line that was not recorded


def accept_events(session: Session, raw_events: Iterable[tuple[int, Any]]) -> Accepted:
    """Record every nameable event in the inbox; refuse only what cannot even be named or stored.

    The first line with an id wins, within one call as across calls; a later line with the same
    id is refused as a duplicate (with a conflict when its content differs), except an identical
    re-send of an event accepted earlier, which is only counted.
    """
    first: dict[tuple[str, str], tuple[int, dict]] = {}
    refused = []
    for line_no, raw in raw_events:
        try:
            tenant, event_id, asset_id = identify(raw)
        except InvalidEvent as exc:
            refused.append((line_no, str(exc)))
            continue
        earlier = first.setdefault((tenant, event_id), (line_no, dict(
            tenant=tenant, event_id=event_id, asset_id=asset_id, payload=raw, status="accepted")))
        if earlier[0] != line_no:
            conflict = " with a conflict: its content differs" if earlier[1]["payload"] != raw else ""
            refused.append((line_no, f"duplicate of line {earlier[0]} (event_id {event_id}){conflict}; "
                                     "the first is kept"))
    new = repository.record_events(session, [row for _, row in first.values()])
    taken = set(first) - set(new)
    stored = repository.event_payloads(session, taken) if taken else {}
    duplicates = 0
    for key in taken:
        line_no, row = first[key]
        if stored.get(key) == row["payload"]:
            duplicates += 1
        else:
            refused.append((line_no, f"conflict: event_id {key[1]} was accepted earlier with other content; "
                                     "the earlier event is kept"))
    return Accepted(new=new, duplicates=duplicates, refused=sorted(refused))


# --- the moderation pipeline -----------------------------------------------------------------

def count_delivery(session: Session, ctx: Context, tenant: str, event_id: str) -> bool:
    """Count a delivery before work starts; False when the event is poison and was dead-lettered.

    The caller commits this on its own, so a delivery that kills its process still counts.
    """
    attempts = repository.count_attempt(session, tenant, event_id)
    if attempts is None or attempts <= ctx.settings.max_attempts:
        return True
    event = next(iter(repository.lock_events(session, tenant, [event_id])), None)
    if event is not None and event.status == "accepted":
        dead_letter(session, tenant, event_id, f"max_attempts: {attempts - 1} deliveries ended without an outcome",
                    attempts - 1, event.payload)
    return False


def dead_letter(session: Session, tenant: str, event_id: str, reason: str, attempts: int, payload: dict | None) -> None:
    repository.insert_dead_letter(session, tenant=tenant, event_id=event_id, reason=reason, attempts=attempts,
                                  payload=payload)
    repository.set_event_status(session, tenant, event_id, "dead")


def reject_row(ctx: Context, tenant: str, event_id: str, asset_id: str | None, reason: str) -> dict:
    return dict(tenant=tenant, event_id=event_id, asset_id=asset_id, asset_pk=None, action="reject", label=None,
                score=0.0, labels=[], anomaly=None, neighbors=[], reason=reason,
                embedding_model=None, policy_version=ctx.policy.version, bank_version=None)


def knn_scan(ctx: Context, cached: bool = True) -> dict:
    """The kNN settings: HNSW search settings for each kNN transaction (Settings.knn_ef_search) and,
    unless `cached` is False, the in-process bank cache's size (knn_cache.py)."""
    scan = {"ef_search": ctx.settings.knn_ef_search, "iterative_scan": ctx.settings.knn_iterative_scan}
    return {**scan, "cache_vectors": ctx.settings.knn_cache_vectors} if cached else scan


def decision_row(ctx: Context, upload: UploadEvent, asset_pk: int, neighbors: list, threshold: float,
                 version: int) -> dict:
    """The vote, anomaly score and policy outcome for one upload's neighbours, as a decision row."""
    vote = knn_vote(neighbors, ctx.policy.k)
    scored = anomaly.score([n.distance for n in neighbors], ctx.policy.k, threshold)
    outcome = decide(vote, neighbors, scored, ctx.policy)
    return dict(
        tenant=upload.tenant, event_id=upload.event_id, asset_id=upload.asset_id, asset_pk=asset_pk,
        action=outcome.action, label=vote.label, score=round(vote.score, 6),
        labels=[{"label": label, "score": round(score, 6)} for label, score in vote.labels],
        anomaly=scored.as_dict(),
        neighbors=[{"asset_id": n.asset_id, "label": n.label, "distance": round(n.distance, 6),
                    **({"polarity": n.polarity} if n.polarity != "positive" else {})} for n in neighbors],
        reason=outcome.reason, embedding_model=ctx.embedder.model_id, policy_version=ctx.policy.version,
        bank_version=version,
    )


def asset_fields(upload: UploadEvent, loaded: LoadedAsset) -> dict:
    return dict(sha256=loaded.sha256, modality=loaded.content.modality, mime_type=loaded.content.mime_type,
                size_bytes=loaded.size_bytes, source_uri=loaded.source_uri, title=upload.title,
                extra=upload.metadata, text_excerpt=loaded.text_excerpt, status="embedded")


def anomaly_threshold(session: Session, ctx: Context, tenant: str, modality: str, task: str, version: int) -> float:
    """The bank's threshold for this modality, computed once per bank version and cached."""
    model, dims, k = ctx.embedder.model_id, ctx.embedder.dims, ctx.policy.k
    cached = repository.anomaly_threshold(session, tenant, model, dims, modality, version, k)
    if cached is not None:
        return cached
    vectors = repository.bank_vectors(session, tenant, model, dims, task, modality, ANOMALY_SAMPLE)
    threshold = anomaly.bank_threshold(vectors, k, ctx.settings.anomaly_quantile)
    repository.store_anomaly_threshold(session, tenant=tenant, model=model, dims=dims, modality=modality,
                                       bank_version=version, k=k, threshold=threshold, sample_size=len(vectors))
    return threshold


def decision_message(public: dict) -> dict:
    """The outbox row that writes a decision back; its id is stable, so receivers deduplicate."""
    return dict(tenant=public["tenant"], kind="decision", message_id=f"decision:{public['tenant']}:{public['event_id']}",
                payload=public)


def decision_payload(row: dict) -> dict:
    """The public decision contract (see README): what export and write-back both emit."""
    decided_at = row["decided_at"]
    return {
        "event_id": row["event_id"], "asset_id": row["asset_id"], "tenant": row["tenant"],
        "action": row["action"], "label": row["label"], "score": row["score"], "labels": row["labels"],
        "anomaly": row["anomaly"], "neighbors": row["neighbors"], "reason": row["reason"],
        "embedding_model": row["embedding_model"], "policy_version": row["policy_version"],
        "bank_version": row.get("bank_version"),
        "decided_at": decided_at.isoformat() if isinstance(decided_at, datetime) else decided_at,
    }


def export_decisions(session: Session, tenant: str) -> Iterable[dict]:
    for d in repository.iter_decisions(session, tenant):
        yield decision_payload({c: getattr(d, c) for c in (
            "event_id", "asset_id", "tenant", "action", "label", "score", "labels", "anomaly", "neighbors",
            "reason", "embedding_model", "policy_version", "bank_version", "decided_at")})


def stale_events(session: Session, ctx: Context, broker_lost_state: bool = False,
                 limit: int = 1000) -> list[tuple[str, str]]:
    """Accepted events with no outcome after the timeout, or all of them at once when the broker
    lost its state (their messages are gone); the caller re-enqueues them after commit. Each is
    touched, so the age rule leaves it alone for another GOVERNANCE_RECONCILE_AFTER_S."""
    if broker_lost_state:
        return repository.touch_all_pending(session)
    keys = repository.stale_events(session, ctx.settings.reconcile_after_s, limit)
    repository.touch_events(session, keys)
    return keys


# --- fault injection (tests only) -------------------------------------------------------------

def fault_injection_point(point: str, tenant: str, event_id: str) -> None:
    """FAULT INJECTION for the crash tests: SIGKILL this process at a named point. Off unless
    GOVERNANCE_TEST_CRASH is set.

    GOVERNANCE_TEST_CRASH is a comma-separated list of `point:match:times` rules: an event whose id
    contains `match` is killed at `point` (`after_embed`, `after_commit`) on its first `times`
    passes (an integer, counted in files under GOVERNANCE_TEST_CRASH_DIR) or on every pass (`always`).
    """
    rules = os.environ.get("GOVERNANCE_TEST_CRASH")
    if not rules:
        return
    for rule in rules.split(","):
        rule_point, match, times = rule.strip().split(":")
        if rule_point != point or match not in event_id:
            continue
        if times != "always":
            key = hashlib.sha256(f"{point}|{tenant}|{event_id}".encode()).hexdigest()[:32]
            marker = Path(os.environ["GOVERNANCE_TEST_CRASH_DIR"]) / key
            if marker.exists() and marker.stat().st_size >= int(times):
                continue
            with open(marker, "ab") as handle:  # one byte per crash
                handle.write(b"x")
        log.warning("fault injection: SIGKILL at %s", point, extra={"tenant": tenant, "event_id": event_id})
        os.kill(os.getpid(), signal.SIGKILL)
