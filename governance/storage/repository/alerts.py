"""Anomaly-alert cursors and flagged-decision summaries."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.tables import AlertState, Decision


_FLAGGED = func.coalesce(Decision.anomaly["flagged"].as_boolean(), False)


def tenants_with_flagged_decisions(session: Session, since: datetime) -> list[str]:
    return list(session.scalars(select(Decision.tenant).where(Decision.decided_at >= since, _FLAGGED).distinct()
                                .order_by(Decision.tenant)))


def lock_alert_state(session: Session, tenant: str, kind: str, initial_cursor: datetime) -> AlertState:
    """The tenant's alert cursor, created at `initial_cursor` if new, row-locked against concurrent beats."""
    session.execute(insert(AlertState).values(tenant=tenant, kind=kind, cursor_at=initial_cursor)
                    .on_conflict_do_nothing(index_elements=["tenant", "kind"]))
    return session.scalars(select(AlertState).where(AlertState.tenant == tenant, AlertState.kind == kind)
                           .with_for_update().execution_options(populate_existing=True)).one()


def flagged_summary(session: Session, tenant: str, start: datetime, end: datetime, top: int) -> dict:
    """Counts of anomaly-flagged decisions in [start, end), by action and label, and the top examples."""
    window = (Decision.tenant == tenant, Decision.decided_at >= start, Decision.decided_at < end, _FLAGGED)
    by_action = dict(session.execute(select(Decision.action, func.count()).where(*window)
                                     .group_by(Decision.action)).all())
    by_label = {label or "(none)": n for label, n in session.execute(
        select(Decision.label, func.count()).where(*window).group_by(Decision.label)).all()}
    score = Decision.anomaly["score"].as_float()
    examples = session.execute(
        select(Decision.event_id, Decision.asset_id, Decision.action, Decision.label, score,
               Decision.anomaly["threshold"].as_float(), Decision.decided_at)
        .where(*window).order_by(score.desc(), Decision.id).limit(top)).all()
    return {
        "flagged": sum(by_action.values()), "by_action": by_action, "by_label": by_label,
        "examples": [{"event_id": e, "asset_id": a, "action": act, "label": lab, "score": s, "threshold": t,
                      "decided_at": at.isoformat()} for e, a, act, lab, s, t, at in examples],
    }
