"""Stored policy versions."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from governance.storage.tables import PolicyVersion


def policy_version_row(session: Session, tenant: str, version: str) -> PolicyVersion | None:
    return session.scalars(select(PolicyVersion).where(PolicyVersion.tenant == tenant,
                                                       PolicyVersion.version == version)).one_or_none()


def insert_policy_version(session: Session, *, tenant: str, version: str, source: str, document: dict,
                          applied_by: str | None) -> PolicyVersion:
    row = PolicyVersion(tenant=tenant, version=version, source=source, document=document, applied_by=applied_by,
                        applied_at=func.clock_timestamp())
    session.add(row)
    session.flush()
    return row


def reapply_policy_version(session: Session, tenant: str, policy_pk: int, applied_by: str | None) -> None:
    """Make an earlier version current again (rollback): `current` is the latest `applied_at`."""
    session.execute(update(PolicyVersion).where(PolicyVersion.tenant == tenant, PolicyVersion.id == policy_pk)
                    .values(applied_at=func.clock_timestamp(), applied_by=applied_by))


def current_policy_ref(session: Session, tenant: str) -> tuple[int, str] | None:
    """(id, version) of the tenant's current policy: one index probe, cheap enough per decision."""
    row = session.execute(
        select(PolicyVersion.id, PolicyVersion.version).where(PolicyVersion.tenant == tenant)
        .order_by(PolicyVersion.applied_at.desc(), PolicyVersion.id.desc()).limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def policy_source(session: Session, tenant: str, policy_pk: int) -> str | None:
    return session.scalar(select(PolicyVersion.source).where(PolicyVersion.tenant == tenant,
                                                             PolicyVersion.id == policy_pk))


def policy_versions(session: Session, tenant: str) -> list[PolicyVersion]:
    return list(session.scalars(select(PolicyVersion).where(PolicyVersion.tenant == tenant)
                                .order_by(PolicyVersion.applied_at.desc(), PolicyVersion.id.desc())))
