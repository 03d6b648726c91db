"""Blind second review, and the quality page's numbers.

**Sampling.** After a reviewer decides an item in the console, `GOVERNANCE_REVIEW_SECOND_SHARE` of
the events (chosen from a hash of the event id, `quality.sampled_for_second_review`, so a rerun
picks the same ones) wait in the `second_review` queue. The reviewer who decided first never gets
it: the queue leaves it out for them and the console refuses them the item (review_queue.OwnDecision).

**Blind.** The second reviewer sees the item as the automatic decision left it: its evidence, not
the first reviewer's action (review_evidence hides the hand-made history while the review is open).

**What a second decision does.** It is an agreement measurement only: recorded (a `second_review`
audit row and the `second_reviews` row), with no exemplar, outbox message or retroactive matching.
When the outcomes (allow, or block with which label) differ, the item goes to the `escalated`
queue; whoever decides it there applies a normal decision (`review.decide`, with its side effects),
which resolves the disagreement.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.moderation import quality, review
from governance.storage import repository

NOTE = "second review disagrees with the first"


@dataclass(frozen=True)
class SecondDecision:
    audit_id: int
    event_id: str
    agreed: bool


def sample(session: Session, share: float, tenant: str, event_id: str, asset_id: str, *, audit_id: int,
           who: str, action: str, label: str | None) -> bool:
    """Open a second review of a reviewer's decision when the event is sampled; True when opened."""
    if not who or not quality.sampled_for_second_review(event_id, share):
        return False
    return repository.open_second_review(session, tenant=tenant, event_id=event_id, asset_id=asset_id,
                                         first_audit_id=audit_id, first_who=who, first_action=action,
                                         first_label=label)


def decide_second(session: Session, tenant: str, event_id: str, asset_id: str | None, action: str,
                  label: str | None, who: str) -> SecondDecision:
    """Record the second reviewer's outcome; a disagreement escalates the item (see the module docstring)."""
    opened = repository.second_review_of_event(session, tenant, event_id)
    if opened is None or opened.status != "open":
        raise review.ReviewError(f"{event_id} has no open second review")
    if opened.first_who == who:
        raise review.ReviewError(f"{who} made the first decision on {event_id}: its second review is for someone else")
    if action == "block" and not label:
        raise review.ReviewError("block needs a label")
    first = quality.outcome(opened.first_action, opened.first_label)
    second = quality.outcome(action, label)
    agreed = first == second
    repository.record_second_decision(session, tenant, event_id, who=who, action=action,
                                      label=label if action == "block" else None,
                                      status="agreed" if agreed else "disagreed")
    entry = repository.insert_audit(session, tenant=tenant, kind="second_review", asset_id=asset_id,
                                    event_id=event_id, who=who, before={"queue": "second_review"},
                                    after={"action": action, "label": label if action == "block" else None,
                                           "agreed": agreed, "first_audit_id": opened.first_audit_id})
    if not agreed:
        repository.insert_audit(session, tenant=tenant, kind="escalation", asset_id=asset_id, event_id=event_id,
                                who=who, before={"queue": "second_review"},
                                after={"queue": "escalated", "note": NOTE})
    return SecondDecision(entry.id, event_id, agreed)


def escalate_second(session: Session, tenant: str, event_id: str) -> None:
    """The second reviewer escalated instead of deciding: the item leaves `second_review` for `escalated`."""
    repository.set_second_review_status(session, tenant, event_id, "escalated", were=("open",))


def resolve(session: Session, tenant: str, event_id: str, who: str) -> None:
    """A decision was applied after a disagreement (or an escalated second review)."""
    repository.set_second_review_status(session, tenant, event_id, "resolved", were=("disagreed", "escalated"),
                                        who=who)


@dataclass(frozen=True)
class QualityReport:
    share: float
    second_reviews: dict[str, int]  # status -> count
    by_pair: list[quality.Agreement]
    by_reviewer: list[quality.Agreement]
    by_label: list[quality.Agreement]
    overturns: quality.Overturns
    overturns_by_reviewer: list[quality.Overturns]
    labels: list[quality.LabelScore]


def quality_report(session: Session, tenant: str, share: float) -> QualityReport:
    """The quality page: agreement of the second reviews, and the automatic decisions on reviewed items."""
    pairs = [quality.SecondReview(r.first_who, quality.outcome(r.first_action, r.first_label),
                                  r.second_who or "", quality.outcome(r.second_action or "", r.second_label))
             for r in repository.decided_second_reviews(session, tenant)]
    reviewed = [quality.Reviewed(r.who, r.predicted, r.truth) for r in repository.reviewed_decisions(session, tenant)]
    return QualityReport(share=share, second_reviews=repository.second_review_counts(session, tenant),
                         by_pair=quality.agreement_by_pair(pairs), by_reviewer=quality.agreement_by_reviewer(pairs),
                         by_label=quality.agreement_by_label(pairs), overturns=quality.overturn_rate(reviewed),
                         overturns_by_reviewer=quality.overturns_by_reviewer(reviewed),
                         labels=quality.label_scores(reviewed))
