"""The review console: login links, reviewer sessions and settings, and the review queue with its leases.

Times come from the database clock (`clock_timestamp()`), so every process agrees on when a link,
a session or a lease has expired.
"""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from governance.storage.console_tables import ConsoleLoginLink, ConsoleSession, ReviewerSetting, ReviewLease
from governance.storage.tables import Asset


# --- links and sessions -------------------------------------------------------------------------

def insert_login_link(session: Session, *, tenant: str, token_hash: str, who: str, ttl_s: int) -> datetime:
    """Store a link's hash; returns when it expires."""
    expires = func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_s)
    return session.scalar(insert(ConsoleLoginLink).values(tenant=tenant, token_hash=token_hash, who=who,
                                                          expires_at=expires).returning(ConsoleLoginLink.expires_at))


def use_login_link(session: Session, tenant: str, token_hash: str) -> str | None:
    """Mark an unused, unexpired link used and return its reviewer; None when it is void. One
    conditional UPDATE: of two requests racing with the same link, exactly one gets a name."""
    return session.scalar(update(ConsoleLoginLink).where(
        ConsoleLoginLink.tenant == tenant, ConsoleLoginLink.token_hash == token_hash,
        ConsoleLoginLink.used_at.is_(None), ConsoleLoginLink.expires_at > func.clock_timestamp(),
    ).values(used_at=func.clock_timestamp()).returning(ConsoleLoginLink.who))


def insert_console_session(session: Session, *, session_id: str, tenant: str, token_hash: str, who: str, via: str,
                           csrf_token: str, ttl_s: int, api_key_id: str | None = None) -> None:
    session.execute(insert(ConsoleSession).values(
        id=session_id, tenant=tenant, token_hash=token_hash, who=who, via=via, csrf_token=csrf_token,
        api_key_id=api_key_id,
        expires_at=func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_s)))


def live_console_session(session: Session, tenant: str, token_hash: str) -> ConsoleSession | None:
    return session.scalars(select(ConsoleSession).where(
        ConsoleSession.tenant == tenant, ConsoleSession.token_hash == token_hash,
        ConsoleSession.revoked_at.is_(None), ConsoleSession.expires_at > func.clock_timestamp())).first()


def revoke_console_session(session: Session, tenant: str, session_id: str) -> int:
    result = session.execute(update(ConsoleSession).where(
        ConsoleSession.tenant == tenant, ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None),
    ).values(revoked_at=func.clock_timestamp()))
    return result.rowcount or 0


def reviewer_reveals_media(session: Session, tenant: str, who: str) -> bool:
    return bool(session.scalar(select(ReviewerSetting.reveal_media).where(
        ReviewerSetting.tenant == tenant, ReviewerSetting.who == who)))


def set_reviewer_reveals_media(session: Session, tenant: str, who: str, reveal: bool) -> None:
    stmt = insert(ReviewerSetting).values(tenant=tenant, who=who, reveal_media=reveal)
    session.execute(stmt.on_conflict_do_update(index_elements=["tenant", "who"], set_={
        "reveal_media": reveal, "updated_at": func.clock_timestamp()}))


# --- evidence -------------------------------------------------------------------------------------

def assets_by_ids(session: Session, tenant: str, asset_ids: list[str]) -> dict[str, Asset]:
    if not asset_ids:
        return {}
    return {a.asset_id: a for a in session.scalars(
        select(Asset).where(Asset.tenant == tenant, Asset.asset_id.in_(asset_ids)))}


def latest_cluster_of_asset(session: Session, tenant: str, asset_id: str) -> tuple[str, list[str], dict] | None:
    """(cluster_id, members, summary) of the asset's cluster in the tenant's latest report."""
    row = session.execute(text("""
        SELECT c.cluster_id, c.members, c.summary FROM clusters c
        WHERE c.tenant = :tenant AND c.members ? :asset_id AND c.report_pk = (
            SELECT id FROM cluster_reports WHERE tenant = :tenant ORDER BY generated_at DESC, id DESC LIMIT 1)
        LIMIT 1"""), {"tenant": tenant, "asset_id": asset_id}).first()
    return (row.cluster_id, list(row.members), dict(row.summary)) if row else None


# --- leases ---------------------------------------------------------------------------------------

def claim_lease(session: Session, tenant: str, event_id: str, session_id: str, who: str, lease_s: int) -> bool:
    """Claim (or renew) the item for this console session; False when another session holds a live
    lease. One conditional upsert: PostgreSQL locks the conflicting row and re-checks the condition
    against its latest version, so of two racing claimers exactly one wins."""
    expires = func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, lease_s)
    stmt = insert(ReviewLease).values(tenant=tenant, event_id=event_id, session_id=session_id, who=who,
                                      claimed_at=func.clock_timestamp(), expires_at=expires)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "event_id"],
        set_={"session_id": stmt.excluded.session_id, "who": stmt.excluded.who,
              "claimed_at": stmt.excluded.claimed_at, "expires_at": stmt.excluded.expires_at},
        where=(ReviewLease.session_id.is_(None) | (ReviewLease.session_id == session_id)
               | (ReviewLease.expires_at <= func.clock_timestamp())))
    return session.scalar(stmt.returning(ReviewLease.session_id)) is not None


def live_lease(session: Session, tenant: str, event_id: str) -> ReviewLease | None:
    return session.scalars(select(ReviewLease).where(
        ReviewLease.tenant == tenant, ReviewLease.event_id == event_id, ReviewLease.session_id.is_not(None),
        ReviewLease.expires_at > func.clock_timestamp())).first()


def release_lease(session: Session, tenant: str, event_id: str, session_id: str) -> int:
    """Give the item back (decided or escalated)."""
    result = session.execute(update(ReviewLease).where(
        ReviewLease.tenant == tenant, ReviewLease.event_id == event_id, ReviewLease.session_id == session_id,
    ).values(session_id=None, who=None, expires_at=func.clock_timestamp()))
    return result.rowcount or 0


def skip_lease(session: Session, tenant: str, event_id: str, session_id: str) -> bool:
    """Give the item back and remember that this session skipped it (its next pick passes over it);
    False when another session holds a live lease."""
    stmt = insert(ReviewLease).values(tenant=tenant, event_id=event_id, session_id=None, who=None,
                                      expires_at=func.clock_timestamp(), skipped_by=session_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "event_id"],
        set_={"session_id": None, "who": None, "expires_at": func.clock_timestamp(), "skipped_by": session_id},
        where=(ReviewLease.session_id.is_(None) | (ReviewLease.session_id == session_id)
               | (ReviewLease.expires_at <= func.clock_timestamp())))
    return session.scalar(stmt.returning(ReviewLease.event_id)) is not None


# --- the queue ------------------------------------------------------------------------------------

# Everything waiting for a person, one row per event: decisions that went to review and were not
# overridden, and open retroactive review items. `queue` is the reason's first word
# (suggested, no_match, near_tie, anomaly, confirmed, retroactive), or `escalated` once escalated.
_QUEUE = """
WITH waiting AS (
    SELECT d.event_id, d.asset_id, d.label, d.score, split_part(d.reason, ':', 1) AS reason,
           d.reason AS detail, d.decided_at AS opened_at
    FROM decisions d
    WHERE d.tenant = :tenant AND d.action = 'review'
      AND NOT EXISTS (SELECT 1 FROM audit_log o WHERE o.tenant = :tenant AND o.kind = 'override'
                      AND o.event_id = d.event_id)
    UNION ALL
    (SELECT DISTINCT ON (r.event_id) r.event_id, r.asset_id, r.label, 1 - r.distance, 'retroactive',
           'retroactive: distance ' || round(r.distance::numeric, 4) || ' to new ' || r.label
               || ' exemplar ' || r.trigger_asset_id, r.created_at
    FROM review_items r
    WHERE r.tenant = :tenant AND r.status = 'open' AND r.event_id IS NOT NULL
    ORDER BY r.event_id, r.created_at)
), queue AS (
    SELECT w.*,
           CASE WHEN EXISTS (SELECT 1 FROM audit_log x WHERE x.tenant = :tenant AND x.kind = 'escalation'
                             AND x.event_id = w.event_id) THEN 'escalated' ELSE w.reason END AS queue,
           COALESCE((CAST(:severity AS jsonb) ->> w.label)::int, :default_severity) AS severity,
           l.session_id AS lease_session, l.who AS lease_who, l.skipped_by,
           (l.session_id IS NOT NULL AND l.expires_at > clock_timestamp()) AS leased
    FROM waiting w
    LEFT JOIN review_leases l ON l.tenant = :tenant AND l.event_id = w.event_id
), latest_clusters AS (
    SELECT c.cluster_id, jsonb_array_elements_text(c.members) AS asset_id
    FROM clusters c
    WHERE c.tenant = :tenant AND c.report_pk = (
        SELECT id FROM cluster_reports WHERE tenant = :tenant ORDER BY generated_at DESC, id DESC LIMIT 1)
)
"""
_PRIORITY = "severity DESC, score DESC, opened_at, event_id"
_GROUPS = {"reason": "q.queue", "label": "COALESCE(q.label, '')", "cluster": "lc.cluster_id"}


def _params(tenant: str, severity: dict[str, int], default_severity: int) -> dict:
    return {"tenant": tenant, "severity": json.dumps(severity), "default_severity": int(default_severity)}


def review_queue_counts(session: Session, tenant: str, severity: dict[str, int], default_severity: int
                        ) -> dict[str, list[tuple[str, int, datetime]]]:
    """Per grouping (reason, label, cluster): (key, items waiting, oldest opened_at), largest first."""
    out = {}
    for group, key in _GROUPS.items():
        join = "JOIN latest_clusters lc ON lc.asset_id = q.asset_id" if group == "cluster" else ""
        where = "" if group == "reason" else "WHERE q.queue <> 'escalated'"
        rows = session.execute(text(f"""{_QUEUE}
            SELECT {key} AS key, count(*) AS n, min(q.opened_at) AS oldest FROM queue q {join} {where}
            GROUP BY 1 ORDER BY n DESC, key"""), _params(tenant, severity, default_severity))
        out[group] = [(r.key, int(r.n), r.oldest) for r in rows]
    return out


def review_queue_items(session: Session, tenant: str, severity: dict[str, int], default_severity: int, *,
                       group: str | None = None, key: str | None = None, limit: int = 50,
                       available_to: str | None = None) -> list:
    """The queue's rows in priority order (the label's severity, the score, then oldest first).
    `group`/`key` pick one queue; escalated items are only in the `escalated` one. `available_to`
    (a console session id) leaves out what another session holds and what this session skipped."""
    params = {**_params(tenant, severity, default_severity), "limit": int(limit), "key": key,
              "me": available_to}
    join, where = "", ["TRUE"]
    if (group, key) != ("reason", "escalated"):
        where.append("q.queue <> 'escalated'")
    if group is not None:
        if group not in _GROUPS:
            raise ValueError(f"unknown queue grouping {group!r}")
        where.append(f"{_GROUPS[group]} = :key")
        if group == "cluster":
            join = "JOIN latest_clusters lc ON lc.asset_id = q.asset_id"
    if available_to is not None:
        where.append("(NOT q.leased OR q.lease_session = :me) AND q.skipped_by IS DISTINCT FROM :me")
    rows = session.execute(text(f"""{_QUEUE}
        SELECT q.* FROM queue q {join} WHERE {' AND '.join(where)}
        ORDER BY {_PRIORITY} LIMIT :limit"""), params)
    return list(rows)


def review_queue_item(session: Session, tenant: str, event_id: str, severity: dict[str, int],
                      default_severity: int):
    """One event's queue row, or None when it does not wait for a person (any more)."""
    return session.execute(text(f"{_QUEUE} SELECT q.* FROM queue q WHERE q.event_id = :event_id"),
                           {**_params(tenant, severity, default_severity), "event_id": event_id}).first()


def bank_labels(session: Session, tenant: str) -> list[str]:
    """The labels of the tenant's enabled positive exemplars, alphabetically."""
    from governance.storage.tables import Exemplar

    return list(session.scalars(select(Exemplar.label).where(
        Exemplar.tenant == tenant, Exemplar.enabled.is_(True), Exemplar.polarity == "positive",
    ).distinct().order_by(Exemplar.label)))


def audit_log_page(session: Session, tenant: str, *, who: str | None = None, label: str | None = None,
                   since: datetime | None = None, until: datetime | None = None, limit: int = 500) -> list:
    """Hand-made changes (overrides, escalations, policy and exemplar edits), newest first; `label`
    matches the label before or after the change."""
    from governance.storage.tables import AuditEntry

    query = select(AuditEntry).where(AuditEntry.tenant == tenant)
    if who:
        query = query.where(AuditEntry.who == who)
    if label:
        query = query.where((AuditEntry.after["label"].astext == label) | (AuditEntry.before["label"].astext == label))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    return list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


def latest_report_cluster(session: Session, tenant: str, cluster_id: str) -> tuple[list[str], dict] | None:
    """(members, summary) of a cluster of the tenant's latest report; None when it has no such cluster."""
    row = session.execute(text("""
        SELECT c.members, c.summary FROM clusters c
        WHERE c.tenant = :tenant AND c.cluster_id = :cluster_id AND c.report_pk = (
            SELECT id FROM cluster_reports WHERE tenant = :tenant ORDER BY generated_at DESC, id DESC LIMIT 1)
    """), {"tenant": tenant, "cluster_id": cluster_id}).first()
    return (list(row.members), dict(row.summary)) if row else None


def bank_label_counts(session: Session, tenant: str) -> list[tuple[str, str, bool, int]]:
    """(label, polarity, enabled, exemplars) of the tenant's bank."""
    from governance.storage.tables import Exemplar

    return [tuple(r) for r in session.execute(
        select(Exemplar.label, Exemplar.polarity, Exemplar.enabled, func.count())
        .where(Exemplar.tenant == tenant).group_by(Exemplar.label, Exemplar.polarity, Exemplar.enabled)
        .order_by(Exemplar.label, Exemplar.polarity, Exemplar.enabled))]


def bank_exemplars(session: Session, tenant: str, label: str | None, limit: int) -> list[tuple]:
    """(exemplar, asset) of one label (or every label), newest first."""
    from governance.storage.tables import Exemplar

    query = (select(Exemplar, Asset).join(Asset, (Asset.id == Exemplar.asset_pk) & (Asset.tenant == tenant))
             .where(Exemplar.tenant == tenant))
    if label is not None:
        query = query.where(Exemplar.label == label)
    return [tuple(r) for r in session.execute(query.order_by(Exemplar.created_at.desc(), Exemplar.id.desc())
                                              .limit(limit))]
