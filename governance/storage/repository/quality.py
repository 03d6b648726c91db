"""Blind second reviews and what the quality page measures: the reviewer pairs' outcomes and the
reviewers' labels against the automatic decisions' (governance/moderation/review_quality.py)."""
from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.console_tables import SecondReview

DECIDED = ("agreed", "disagreed", "resolved")


def open_second_review(session: Session, *, tenant: str, event_id: str, asset_id: str, first_audit_id: int,
                       first_who: str, first_action: str, first_label: str | None) -> bool:
    """Sample the event for a second review; False when it already had one (it is sampled once)."""
    stmt = insert(SecondReview).values(tenant=tenant, event_id=event_id, asset_id=asset_id,
                                       first_audit_id=first_audit_id, first_who=first_who,
                                       first_action=first_action, first_label=first_label)
    return session.scalar(stmt.on_conflict_do_nothing(index_elements=["tenant", "event_id"])
                          .returning(SecondReview.id)) is not None


def second_review_of_event(session: Session, tenant: str, event_id: str) -> SecondReview | None:
    return session.scalars(select(SecondReview).where(SecondReview.tenant == tenant,
                                                      SecondReview.event_id == event_id)).first()


def record_second_decision(session: Session, tenant: str, event_id: str, *, who: str, action: str,
                           label: str | None, status: str) -> int:
    """The second reviewer's outcome, on an open second review only (one row, or 0 when none was open)."""
    result = session.execute(update(SecondReview).where(
        SecondReview.tenant == tenant, SecondReview.event_id == event_id, SecondReview.status == "open",
    ).values(second_who=who, second_action=action, second_label=label, second_at=func.clock_timestamp(),
             status=status))
    return result.rowcount or 0


def set_second_review_status(session: Session, tenant: str, event_id: str, status: str, *, were: tuple[str, ...],
                             who: str | None = None) -> int:
    values = {"status": status}
    if status == "resolved":
        values.update(resolved_by=who, resolved_at=func.clock_timestamp())
    result = session.execute(update(SecondReview).where(
        SecondReview.tenant == tenant, SecondReview.event_id == event_id, SecondReview.status.in_(were),
    ).values(**values))
    return result.rowcount or 0


def decided_second_reviews(session: Session, tenant: str, limit: int = 100_000) -> list[SecondReview]:
    """Second reviews both reviewers decided, oldest first."""
    return list(session.scalars(select(SecondReview).where(
        SecondReview.tenant == tenant, SecondReview.status.in_(DECIDED), SecondReview.second_action.is_not(None),
    ).order_by(SecondReview.id).limit(limit)))


def second_review_counts(session: Session, tenant: str) -> dict[str, int]:
    return {status: int(n) for status, n in session.execute(
        select(SecondReview.status, func.count()).where(SecondReview.tenant == tenant).group_by(SecondReview.status))}


def reviewed_decisions(session: Session, tenant: str, limit: int = 100_000) -> list:
    """Per event a reviewer decided, the latest override: (who, the decision's label, the reviewer's label)."""
    return list(session.execute(text("""
        SELECT DISTINCT ON (a.event_id) a.who, a.before ->> 'label' AS predicted, a.after ->> 'label' AS truth
        FROM audit_log a
        WHERE a.tenant = :tenant AND a.kind = 'override' AND a.event_id IS NOT NULL
        ORDER BY a.event_id, a.at DESC, a.id DESC
        LIMIT :limit"""), {"tenant": tenant, "limit": int(limit)}))
