"""API keys: a tenant, a set of scopes, and a secret shown once. Only its SHA-256 is stored: the
secret is 32 random bytes, so a slow password hash would add nothing but latency per request.

Each function takes a Session and flushes; the adapter that owns the session commits.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.storage import repository
from governance.storage.rows import ApiKeyRow

SCOPES = ("ingest", "read", "review", "admin")
KEY_PREFIX = "gov_"
MAX_NAME_LENGTH = 256


class InvalidKeyRequest(ValueError):
    """The key cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the key's id, its tenant, its scopes and its name (for audit logs)."""
    key_id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def parse_scopes(value: str | list[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = {s.strip() for s in items if s.strip()}
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidKeyRequest(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    return [s for s in SCOPES if s in scopes]


def create_key(session: Session, tenant: str, scopes: str | list[str], name: str | None = None) -> tuple[ApiKeyRow, str]:
    """(the stored key, the raw secret): the secret exists only in this return value. The adapter
    has checked the tenant's grammar (governance.ingest.events.valid_tenant, a sibling layer)."""
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise InvalidKeyRequest(f"name is longer than {MAX_NAME_LENGTH} characters")
    key_id = "key_" + secrets.token_hex(8)
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    row = repository.insert_api_key(session, key_id=key_id, tenant=tenant, name=name, scopes=parse_scopes(scopes),
                                    key_hash=hash_key(raw))
    return row, raw


def verify_key(session: Session, raw_key: str) -> Principal | None:
    """The principal of an unrevoked key; None for anything else. The session must be in the
    cross-tenant scope: the tenant is what this finds out."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    row = repository.key_by_hash(session, hash_key(raw_key))
    if row is None:
        return None
    return Principal(key_id=row.id, tenant=row.tenant, scopes=frozenset(row.scopes), name=row.name)


def list_keys(session: Session, tenant: str | None) -> list[ApiKeyRow]:
    return repository.api_keys(session, tenant)


def revoke_key(session: Session, key_id: str) -> ApiKeyRow | None:
    return repository.revoke_api_key(session, key_id)


def key_summary(row: ApiKeyRow) -> dict:
    """A key as `keys list` and the API show it: never its secret or hash."""
    return {"id": row.id, "tenant": row.tenant, "name": row.name, "scopes": row.scopes,
            "created_at": row.created_at.isoformat(), "revoked_at": row.revoked_at and row.revoked_at.isoformat(),
            "last_used_at": row.last_used_at and row.last_used_at.isoformat()}
