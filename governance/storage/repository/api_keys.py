"""API keys (migration 0006). A key is found by its hash before its tenant is known, so
`key_by_hash` runs in the cross-tenant scope (`enter_all_tenants`); everything else in one tenant's."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from governance.storage.rows import ApiKeyRow
from governance.storage.tables import ApiKey

# last_used_at is a hint for operators, not an audit log: writing it on every request would turn
# each read into a write, so it moves at most once a minute per key.
LAST_USED_RESOLUTION_S = 60


def _row(key: ApiKey) -> ApiKeyRow:
    return ApiKeyRow(id=key.id, tenant=key.tenant, name=key.name, scopes=list(key.scopes),
                     created_at=key.created_at, revoked_at=key.revoked_at, last_used_at=key.last_used_at)


def insert_api_key(session: Session, *, key_id: str, tenant: str, name: str | None, scopes: list[str],
                   key_hash: str) -> ApiKeyRow:
    key = ApiKey(id=key_id, tenant=tenant, name=name, scopes=scopes, key_hash=key_hash)
    session.add(key)
    session.flush()
    session.refresh(key)
    return _row(key)


def key_by_hash(session: Session, key_hash: str) -> ApiKeyRow | None:
    """The unrevoked key with this hash, its last use noted (at most once a minute)."""
    found = session.execute(select(ApiKey, func.now()).where(ApiKey.key_hash == key_hash,
                                                             ApiKey.revoked_at.is_(None))).first()
    if found is None:
        return None
    key, now = found
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=LAST_USED_RESOLUTION_S):
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now()))
    return _row(key)


def api_keys(session: Session, tenant: str | None) -> list[ApiKeyRow]:
    """Every key of `tenant` (or, in the cross-tenant scope, of every tenant), oldest first."""
    query = select(ApiKey)
    if tenant is not None:
        query = query.where(ApiKey.tenant == tenant)
    return [_row(k) for k in session.scalars(query.order_by(ApiKey.created_at, ApiKey.id))]


def live_key_scopes(session: Session, tenant: str, key_id: str) -> list[str] | None:
    """The scopes of the tenant's unrevoked key `key_id`; None when it is unknown or revoked."""
    scopes = session.scalar(select(ApiKey.scopes).where(ApiKey.tenant == tenant, ApiKey.id == key_id,
                                                        ApiKey.revoked_at.is_(None)))
    return None if scopes is None else list(scopes)


def revoke_api_key(session: Session, key_id: str) -> ApiKeyRow | None:
    """Revoke the key (idempotent: an already revoked key keeps its first revocation time)."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                    .values(revoked_at=func.now()))
    key = session.get(ApiKey, key_id, populate_existing=True)
    return None if key is None else _row(key)
