"""The review queue of the console: what waits, grouped and in priority order, and who holds what.

An item is an event waiting for a person (see `review.pending`): a decision that went to review
and was not overridden, or an open retroactive review item. Its queue is the first word of its
reason (`suggested`, `no_match`, `near_tie`, `anomaly`, `confirmed`, `retroactive`), or `escalated`
once a reviewer escalated it; a reviewer's decision sampled for a blind second review waits in
`second_review` for anyone but that reviewer (review_quality.py). Items are ordered by the severity
of their label's policy action (block before review before allow), then by score, then oldest first.

Opening an item claims a lease on it for one console session (default 10 minutes); deciding,
escalating or skipping releases it, and so does its expiry. A decision is `review.decide`, the
same function `governance review decide` calls; the decision of a second review is only recorded
(review_quality.decide_second).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from governance.moderation import review, review_quality
from governance.moderation.pipeline import Context, for_tenant
from governance.moderation.policy_rules import ACTION_SEVERITY, Policy
from governance.storage import repository

REASON_QUEUES = ("suggested", "no_match", "near_tie", "anomaly", "escalated", "second_review")
GROUPINGS = ("reason", "label", "cluster")
LEASE_S = 600
MAX_NOTE = 2000


class LeaseHeld(review.ReviewError):
    """Another console session holds the item's lease."""

    def __init__(self, event_id: str, who: str | None):
        super().__init__(f"{event_id} is being reviewed by {who or 'another reviewer'}")
        self.who = who


class NotWaiting(review.ReviewError):
    """The event does not wait for a person (unknown, or already decided by a reviewer)."""


class OwnDecision(NotWaiting):
    """The event waits for the blind second review of this reviewer's own decision: not for them."""


@dataclass(frozen=True)
class Reviewer:
    """A console session acting: its id holds leases, its name goes into the audit log."""
    session_id: str
    who: str


@dataclass(frozen=True)
class QueueCount:
    grouping: str  # reason|label|cluster
    key: str
    count: int
    oldest_age_s: float | None


@dataclass(frozen=True)
class QueueItem:
    event_id: str
    asset_id: str | None
    queue: str
    label: str | None
    score: float
    reason: str
    opened_at: datetime
    severity: int
    held_by: str | None  # the reviewer holding a live lease, if any
    held_by_session: str | None
    first_who: str | None = None  # a second review's first reviewer
    second_status: str | None = None  # a second review's status: open, disagreed, escalated

    @property
    def blind(self) -> bool:
        """A second review not decided yet: the first reviewer's action must not show."""
        return self.second_status == "open"


def severities(policy: Policy) -> tuple[dict[str, int], int]:
    """Each policy label's severity, and the default for labels the policy does not list."""
    return ({label: ACTION_SEVERITY.get(rule.action, 0) for label, rule in policy.labels.items()},
            ACTION_SEVERITY.get(policy.default.action, 0))


def _item(row) -> QueueItem:
    return QueueItem(event_id=row.event_id, asset_id=row.asset_id, queue=row.queue, label=row.label,
                     score=float(row.score or 0.0), reason=row.detail, opened_at=row.opened_at,
                     severity=int(row.severity), held_by=row.lease_who if row.leased else None,
                     held_by_session=row.lease_session if row.leased else None, first_who=row.first_who,
                     second_status=row.second_status)


def queue_counts(session: Session, policy: Policy, tenant: str, now: datetime | None = None,
                 who: str | None = None) -> list[QueueCount]:
    """Every queue with its count and the age of its oldest item; the reason queues always appear,
    empty ones with a count of 0. With `who`, as that reviewer sees them (no second reviews of their
    own decisions)."""
    now = now or datetime.now(timezone.utc)
    counts = repository.review_queue_counts(session, tenant, *severities(policy), who=who)
    out = []
    for grouping in GROUPINGS:
        seen = {key: (n, oldest) for key, n, oldest in counts[grouping]}
        keys = list(seen)
        if grouping == "reason":
            keys = [*REASON_QUEUES, *(k for k in keys if k not in REASON_QUEUES)]
        for key in keys:
            n, oldest = seen.get(key, (0, None))
            out.append(QueueCount(grouping, key, n, (now - oldest).total_seconds() if oldest else None))
    return out


def queue_items(session: Session, policy: Policy, tenant: str, grouping: str | None = None, key: str | None = None,
                limit: int = 50, available_to: str | None = None, who: str | None = None) -> list[QueueItem]:
    """One queue (or every item, with no grouping) in priority order; see the module docstring."""
    if grouping is not None and grouping not in GROUPINGS:
        raise review.ReviewError(f"queue grouping must be one of {', '.join(GROUPINGS)}")
    return [_item(r) for r in repository.review_queue_items(
        session, tenant, *severities(policy), group=grouping, key=key, limit=limit, available_to=available_to,
        who=who)]


def waiting_item(session: Session, policy: Policy, tenant: str, event_id: str) -> QueueItem | None:
    row = repository.review_queue_item(session, tenant, event_id, *severities(policy))
    return _item(row) if row is not None else None


def next_item(session: Session, policy: Policy, tenant: str, reviewer: Reviewer, grouping: str | None = None,
              key: str | None = None) -> QueueItem | None:
    """The first item of the queue this reviewer may open: not held by another session, not skipped by this one."""
    found = queue_items(session, policy, tenant, grouping, key, limit=1, available_to=reviewer.session_id,
                        who=reviewer.who)
    return found[0] if found else None


def claim(session: Session, policy: Policy, tenant: str, event_id: str, reviewer: Reviewer,
          lease_s: int = LEASE_S) -> QueueItem:
    """Claim (or renew) the item's lease for this session. Raises NotWaiting when the event waits for
    nobody, LeaseHeld when another session holds it, OwnDecision for the second review of one's own decision."""
    item = waiting_item(session, policy, tenant, event_id)
    if item is None:
        raise NotWaiting(f"{event_id} does not wait for review")
    _check_not_own(item, reviewer)
    if not repository.claim_lease(session, tenant, event_id, reviewer.session_id, reviewer.who, lease_s):
        holder = repository.live_lease(session, tenant, event_id)
        raise LeaseHeld(event_id, holder.who if holder else None)
    return item


def _check_not_own(item: QueueItem, reviewer: Reviewer) -> None:
    if item.blind and item.first_who == reviewer.who:
        raise OwnDecision(f"{reviewer.who} made the first decision on {item.event_id}: "
                          "its second review is for another reviewer")


def _check_holder(session: Session, tenant: str, event_id: str, reviewer: Reviewer) -> None:
    holder = repository.live_lease(session, tenant, event_id)
    if holder is not None and holder.session_id != reviewer.session_id:
        raise LeaseHeld(event_id, holder.who)


def skip(session: Session, tenant: str, event_id: str, reviewer: Reviewer) -> None:
    """Give the item back; this session's next pick passes over it."""
    if not repository.skip_lease(session, tenant, event_id, reviewer.session_id):
        holder = repository.live_lease(session, tenant, event_id)
        raise LeaseHeld(event_id, holder.who if holder else None)


def escalate(session: Session, policy: Policy, tenant: str, event_id: str, reviewer: Reviewer, note: str | None
             ) -> int:
    """Move the item to the `escalated` queue (an audit row with the note); returns the audit id."""
    item = waiting_item(session, policy, tenant, event_id)
    if item is None:
        raise NotWaiting(f"{event_id} does not wait for review")
    _check_not_own(item, reviewer)
    _check_holder(session, tenant, event_id, reviewer)
    note = (note or "").strip()[:MAX_NOTE] or None
    if item.blind:
        review_quality.escalate_second(session, tenant, event_id)
    entry = repository.insert_audit(session, tenant=tenant, kind="escalation", asset_id=item.asset_id,
                                    event_id=event_id, who=reviewer.who,
                                    before={"queue": item.queue, "label": item.label, "score": item.score},
                                    after={"queue": "escalated", "note": note})
    repository.release_lease(session, tenant, event_id, reviewer.session_id)
    return entry.id


def decide(session: Session, ctx: Context, tenant: str, event_id: str, action: str, reviewer: Reviewer, *,
           label: str | None = None, note: str | None = None, sample: bool = True
           ) -> review.Override | review_quality.SecondDecision:
    """A reviewer's decision on the item: exactly `review.decide` (audit row, exemplar, outbox
    message, retroactive matching), then the lease is released, and the decision may be sampled
    for a second review (`sample`; bulk decisions are not). On a second review, the decision is
    only recorded (review_quality)."""
    policy = for_tenant(session, ctx, tenant).policy
    item = waiting_item(session, policy, tenant, event_id)
    if item is None or item.asset_id is None:
        raise NotWaiting(f"{event_id} does not wait for review")
    _check_not_own(item, reviewer)
    _check_holder(session, tenant, event_id, reviewer)
    if item.blind:
        review.check_action(action)
        second = review_quality.decide_second(session, tenant, event_id, item.asset_id, action,
                                              label or (item.label if action == "block" else None), reviewer.who)
        repository.release_lease(session, tenant, event_id, reviewer.session_id)
        return second
    done = review.decide(session, ctx, tenant, item.asset_id, action, label=label, who=reviewer.who,
                         note=(note or "").strip()[:MAX_NOTE] or None)
    repository.release_lease(session, tenant, event_id, reviewer.session_id)
    if item.second_status is not None:
        review_quality.resolve(session, tenant, event_id, reviewer.who)
    elif sample:
        review_quality.sample(session, ctx.settings.review_second_share, tenant, event_id, item.asset_id,
                              audit_id=done.audit_id, who=reviewer.who, action=action, label=done.after["label"])
    return done
