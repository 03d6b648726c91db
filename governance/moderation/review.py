"""The review loop: what waits for a person, a person's override, and what the override teaches.

An override (`decide`) is written to the audit log (who, when, before, after), emitted through the
outbox (kind `override`, message id `override:{tenant}:{event_id}:{audit id}`), and turns the asset
into an exemplar with provenance `review`, so the next similar upload gets the reviewer's answer:

- `block` with a label (the decision's label by default): a positive exemplar of that label;
- `allow` with a label whose policy action is `allow`: a positive exemplar of that label;
- `allow` of a label whose policy action is `block` or `review` (by default the decision's own
  label): a negative exemplar, an allowlist entry that suppresses the label for look-alikes;
- `allow` with no label at all: recorded, no exemplar.

A new positive exemplar of a `block` label (by review, import or re-enabling) re-checks the
assets allowed in the last `retroactive_days` of the policy: those within the label's
`near_duplicate_distance` get a `retroactive` review item (retroactive matching).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from governance.embedding.protocol import Task
from governance.embedding.vector_cache import task_key
from governance.moderation.pipeline import Context, for_tenant
from governance.moderation.policy_rules import Policy
from governance.storage import repository

OVERRIDE_ACTIONS = ("allow", "block")
MODALITIES = ("text", "image", "pdf", "audio", "video")


class ReviewError(ValueError):
    """The override cannot be applied as asked; the message says why."""


class UnknownDecision(ReviewError):
    """No such event or asset in the tenant (another tenant's is unknown too)."""


class NotDecided(ReviewError):
    """The event exists but has no decision to override (still waiting, or dead-lettered)."""


def pending(session: Session, tenant: str, limit: int = 100) -> list[dict]:
    """What waits for a reviewer, oldest first: decisions that went to review and were not yet
    overridden, and open retroactive review items."""
    return pending_page(session, tenant, limit)[0]


def pending_page(session: Session, tenant: str, limit: int = 100, after: repository.ReviewPosition | None = None
                 ) -> tuple[list[dict], repository.ReviewPosition | None]:
    """One page of `pending` starting after a position, and the position of its last item when
    more wait behind it (else None)."""
    decisions = repository.pending_review_decisions(session, tenant, limit + 1, after)
    items = repository.open_review_items(session, tenant, limit + 1, after=after)
    keyed = [((d.decided_at, 0, d.id), {
        "kind": "decision", "tenant": tenant, "event_id": d.event_id, "asset_id": d.asset_id, "action": d.action,
        "label": d.label, "score": d.score, "reason": d.reason, "policy_version": d.policy_version,
        "bank_version": d.bank_version, "opened_at": d.decided_at.isoformat(),
    }) for d in decisions]
    keyed += [((r.created_at, 1, r.id), {
        "kind": r.reason, "tenant": tenant, "review_item": r.id, "event_id": r.event_id, "asset_id": r.asset_id,
        "label": r.label, "trigger_asset_id": r.trigger_asset_id, "distance": round(r.distance, 6),
        "reason": f"{r.reason}: distance {r.distance:.4f} to new {r.label} exemplar {r.trigger_asset_id}",
        "opened_at": r.created_at.isoformat(),
    }) for r in items]
    keyed.sort(key=lambda pair: pair[0])
    page = keyed[:limit]
    return [item for _, item in page], (page[-1][0] if len(keyed) > limit else None)


@dataclass
class Override:
    audit_id: int
    tenant: str
    event_id: str
    asset_id: str
    before: dict
    after: dict
    message_id: str
    exemplar: dict | None = None  # {label, polarity} when the asset joined the bank
    bank_version: int | None = None
    retroactive: list[dict] = field(default_factory=list)  # review items opened by this override


def decide(session: Session, ctx: Context, tenant: str, asset_id: str, action: str, *, label: str | None = None,
           who: str | None = None, note: str | None = None) -> Override:
    """Apply a reviewer's decision to the asset's latest decision (see the module docstring)."""
    check_action(action)
    decision = repository.latest_decision_for_asset(session, tenant, asset_id)
    if decision is None:
        raise UnknownDecision(f"no decision for asset {asset_id!r} in tenant {tenant!r}")
    return _override(session, ctx, tenant, decision, action, label=label, who=who, note=note)


def decide_event(session: Session, ctx: Context, tenant: str, event_id: str, action: str, *,
                 label: str | None = None, who: str | None = None, note: str | None = None) -> Override:
    """Apply a reviewer's decision to one event's decision (as `decide` does for an asset's latest)."""
    check_action(action)
    decision = repository.decision_for_event(session, tenant, event_id)
    if decision is None:
        status = repository.event_status(session, tenant, event_id)
        if status is None:
            raise UnknownDecision(f"no event {event_id!r} in tenant {tenant!r}")
        raise NotDecided(f"event {event_id!r} is {status} and has no decision to override yet")
    return _override(session, ctx, tenant, decision, action, label=label, who=who, note=note)


def check_action(action: str) -> None:
    if action not in OVERRIDE_ACTIONS:
        raise ReviewError(f"action must be one of {', '.join(OVERRIDE_ACTIONS)}, got {action!r}")


def _override(session: Session, ctx: Context, tenant: str, decision, action: str, *, label: str | None,
              who: str | None, note: str | None) -> Override:
    asset_id = decision.asset_id
    ctx = for_tenant(session, ctx, tenant)  # the tenant's policy and active model
    policy = ctx.policy
    chosen = label or decision.label
    if action == "block" and not chosen:
        raise ReviewError("block needs a label (--label): the asset becomes an exemplar of it")

    exemplar, bank_version, retroactive = None, decision.bank_version, []
    vectors = (repository.asset_vectors(session, tenant, decision.asset_pk, ctx.embedder.model_id, ctx.embedder.dims)
               if decision.asset_pk is not None else [])
    if chosen and vectors:
        negative = action == "allow" and policy.for_label(chosen).action != "allow"
        polarity = "negative" if negative else "positive"
        repository.add_exemplar(session, tenant, decision.asset_pk, chosen, polarity=polarity, source="review",
                                created_by=who)
        bank_version = repository.bump_bank_version(session, tenant)
        exemplar = {"label": chosen, "polarity": polarity}
        if polarity == "positive":
            retroactive = retroactive_matches(session, ctx, tenant, policy, [(decision.asset_pk, asset_id, chosen)])

    before = {"action": decision.action, "label": decision.label, "score": decision.score,
              "reason": decision.reason, "policy_version": decision.policy_version,
              "bank_version": decision.bank_version}
    after = {"action": action, "label": None if exemplar and exemplar["polarity"] == "negative" else chosen,
             "exemplar": exemplar, "bank_version": bank_version, "note": note}
    entry = repository.insert_audit(session, tenant=tenant, kind="override", asset_id=asset_id,
                                    event_id=decision.event_id, who=who, before=before, after=after)
    if decision.asset_pk is not None:
        repository.resolve_review_items(session, tenant, decision.asset_pk, who)
    message_id = f"override:{tenant}:{decision.event_id}:{entry.id}"
    repository.enqueue_outbox(session, [dict(tenant=tenant, kind="override", message_id=message_id, payload={
        "event_id": decision.event_id, "asset_id": asset_id, "tenant": tenant, "action": action,
        "label": after["label"], "reason": f"override by {who or 'unknown'}" + (f": {note}" if note else ""),
        "previous": {"action": decision.action, "label": decision.label, "score": decision.score},
        "override": {"audit_id": entry.id, "who": who, "at": entry.at.isoformat()},
        "policy_version": policy.version, "bank_version": bank_version,
        "decided_at": entry.at.isoformat(),
    })])
    return Override(audit_id=entry.id, tenant=tenant, event_id=decision.event_id, asset_id=asset_id, before=before,
                    after=after, message_id=message_id, exemplar=exemplar, bank_version=bank_version,
                    retroactive=retroactive)


def classification_tasks(ctx: Context) -> set[str]:
    """The task keys under which this embedder's classification vectors are stored."""
    return {task_key(ctx.embedder, Task.CLASSIFICATION, modality) for modality in MODALITIES}


def retroactive_matches(session: Session, ctx: Context, tenant: str, policy: Policy,
                        exemplars: list[tuple[int, str, str]], now: datetime | None = None) -> list[dict]:
    """Open review items for recently allowed assets that new positive exemplars, given as
    (asset_pk, asset_id, label), mark as near-duplicates of something known-bad."""
    if policy.retroactive_days <= 0:
        return []
    since = (now or datetime.now(timezone.utc)) - timedelta(days=policy.retroactive_days)
    tasks = classification_tasks(ctx)
    opened: list[dict] = []
    for asset_pk, asset_id, label in exemplars:
        rule = policy.for_label(label)
        if rule.action != "block" or rule.near_duplicate_distance is None:
            continue
        for task, vector in repository.asset_vectors(session, tenant, asset_pk, ctx.embedder.model_id,
                                                     ctx.embedder.dims):
            if task not in tasks:
                continue
            for pk, other_id, event_id, distance in repository.recently_allowed_near(
                    session, tenant, ctx.embedder.model_id, ctx.embedder.dims, [task], vector,
                    rule.near_duplicate_distance, since, exclude_asset_pk=asset_pk):
                item_id = repository.insert_review_item(
                    session, tenant=tenant, asset_pk=pk, asset_id=other_id, event_id=event_id, reason="retroactive",
                    label=label, trigger_asset_id=asset_id, distance=distance)
                if item_id is not None:
                    opened.append({"review_item": item_id, "asset_id": other_id, "event_id": event_id,
                                   "label": label, "trigger_asset_id": asset_id, "distance": round(distance, 6)})
    return opened
