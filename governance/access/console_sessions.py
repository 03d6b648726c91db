"""Getting into the review console: one-time login links and reviewer sessions.

A login link (`governance console-link`) carries a random token of which only a SHA-256 is stored;
it is void after its first use or its ttl. Using it starts a session: the cookie holds the tenant
and another random token (again only its hash is stored), and the session carries the CSRF token
that every form and state-changing request of the console must echo. An API key with the `review`
scope can start a session too (the web adapter checks the key, then calls `start_session`); such a
session remembers its key, and admin-only console actions check that key's scopes (`is_admin`).

The cookie names its tenant so that the lookup runs inside that tenant's row-level-security scope,
like every other query: a cookie for tenant A can never find a session of tenant B.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from governance.storage import repository

LINK_TTL_S = 900
SESSION_TTL_S = 12 * 3600
COOKIE_SEPARATOR = "."  # tenant names may contain dots; tokens (URL-safe base64) never do


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoginLink:
    tenant: str
    who: str
    token: str  # shown once, never stored
    expires_at: datetime

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/console/login?{urlencode({'tenant': self.tenant, 'token': self.token})}"


@dataclass(frozen=True)
class ReviewerSession:
    id: str
    tenant: str
    who: str
    via: str  # link|api_key
    csrf_token: str
    cookie: str | None = None  # only when the session was just started: the value to set
    api_key_id: str | None = None  # via api_key: the key it was started with

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


def create_login_link(session: Session, tenant: str, who: str, ttl_s: int = LINK_TTL_S) -> LoginLink:
    if ttl_s <= 0:
        raise ValueError("the link's ttl must be positive")
    token = secrets.token_urlsafe(32)
    expires = repository.insert_login_link(session, tenant=tenant, token_hash=hash_token(token), who=who, ttl_s=ttl_s)
    return LoginLink(tenant=tenant, who=who, token=token, expires_at=expires)


def start_session(session: Session, tenant: str, who: str, via: str, ttl_s: int = SESSION_TTL_S,
                  api_key_id: str | None = None) -> ReviewerSession:
    token = secrets.token_urlsafe(32)
    started = ReviewerSession(id=secrets.token_hex(16), tenant=tenant, who=who, via=via,
                              csrf_token=secrets.token_urlsafe(32), cookie=f"{tenant}{COOKIE_SEPARATOR}{token}",
                              api_key_id=api_key_id)
    repository.insert_console_session(session, session_id=started.id, tenant=tenant, token_hash=hash_token(token),
                                      who=who, via=via, csrf_token=started.csrf_token, ttl_s=ttl_s,
                                      api_key_id=api_key_id)
    return started


def redeem_login_link(session: Session, tenant: str, token: str, ttl_s: int = SESSION_TTL_S
                      ) -> ReviewerSession | None:
    """Spend the link and start its reviewer's session; None when the link is unknown, used or expired."""
    who = repository.use_login_link(session, tenant, hash_token(token))
    return start_session(session, tenant, who, "link", ttl_s) if who is not None else None


def cookie_tenant(cookie: str | None) -> str | None:
    """The tenant a session cookie names (to enter its scope before `resume_session`)."""
    if not cookie or COOKIE_SEPARATOR not in cookie:
        return None
    tenant, _, token = cookie.rpartition(COOKIE_SEPARATOR)
    return tenant if tenant and token else None


def resume_session(session: Session, cookie: str) -> ReviewerSession | None:
    """The live session a cookie belongs to, looked up in the current (the cookie's tenant's) scope."""
    tenant, _, token = cookie.rpartition(COOKIE_SEPARATOR)
    row = repository.live_console_session(session, tenant, hash_token(token))
    if row is None:
        return None
    return ReviewerSession(id=row.id, tenant=row.tenant, who=row.who, via=row.via, csrf_token=row.csrf_token,
                           api_key_id=row.api_key_id)


def is_admin(session: Session, reviewer: ReviewerSession) -> bool:
    """Whether the session may take admin actions (apply a policy): it was started with an API key
    that has the `admin` scope and is still unrevoked now. A login link never grants admin: it
    names a reviewer, not a key holder."""
    if reviewer.api_key_id is None:
        return False
    scopes = repository.live_key_scopes(session, reviewer.tenant, reviewer.api_key_id)
    return scopes is not None and "admin" in scopes


def end_session(session: Session, reviewer: ReviewerSession) -> None:
    repository.revoke_console_session(session, reviewer.tenant, reviewer.id)
