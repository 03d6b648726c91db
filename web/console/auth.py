"""Signing in to the console: the one-time link, an API key with the `review` scope, signing out;
and `reviewer_transaction`, the one transaction every console route works in.

The session cookie is HttpOnly, SameSite=Strict, scoped to /console, and Secure when the page was
served over TLS. Every state-changing request must echo the session's CSRF token (form field
`csrf` or header `X-CSRF-Token`), else it is refused with a 403 problem; the API-key form, sent
before any session exists, is protected by a double-submit token in its own short-lived cookie.
"""
from __future__ import annotations

import hmac
import secrets
from contextlib import contextmanager
from typing import Iterator

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from governance.access.api_keys import verify_key
from governance.access.console_sessions import (
    ReviewerSession, cookie_tenant, end_session, redeem_login_link, resume_session, start_session,
)
from governance.ingest.events import TENANT_PATTERN
from governance.storage import repository
from governance.storage.db import transaction
from web.console.rendering import page
from web.deps import services
from web.problems import Problem

SESSION_COOKIE = "governance_console"
LOGIN_COOKIE = "governance_console_login"
COOKIE_PATH = "/console"

router = APIRouter(include_in_schema=False)


class NotSignedIn(Exception):
    """No live console session: pages redirect to the login page, other requests get a 401."""


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def csrf_from(request: Request, form_value: str | None) -> str | None:
    return form_value or request.headers.get("x-csrf-token")


@contextmanager
def _rolled_back(factory) -> Iterator[Session]:
    session = factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@contextmanager
def reviewer_transaction(request: Request, csrf: str | None = None, *, state_changing: bool = False,
                         rolled_back: bool = False) -> Iterator[tuple[Session, ReviewerSession]]:
    """One unit of work in the signed-in reviewer's tenant scope, with the reviewer's session.
    `rolled_back`: for evaluations that must write nothing (a backtest preview)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    tenant = cookie_tenant(cookie)
    if tenant is None or not TENANT_PATTERN.fullmatch(tenant):
        raise NotSignedIn()
    unit = _rolled_back if rolled_back else transaction
    with unit(services(request).sessions) as session:
        repository.enter_tenant(session, tenant)
        reviewer = resume_session(session, cookie)
        if reviewer is None:
            raise NotSignedIn()
        if state_changing and not reviewer.csrf_ok(csrf_from(request, csrf)):
            raise Problem("forbidden", "missing or wrong CSRF token")
        yield session, reviewer


def _signed_in(request: Request, reviewer: ReviewerSession) -> Response:
    response = RedirectResponse("/console/", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, reviewer.cookie, services(request).settings.console_session_s)
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


def _login_form(request: Request, status_code: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", status_code, login_csrf=token, error=error)
    _set_cookie(request, response, LOGIN_COOKIE, token, 3600)
    return response


@router.get("/login")
def login(request: Request, tenant: str | None = None, token: str | None = None):
    """The one-time link (`governance console-link`), or, without a token, the API-key form."""
    if token is None:
        return _login_form(request)
    reviewer = None
    if tenant and TENANT_PATTERN.fullmatch(tenant) and len(token) <= 200:
        svc = services(request)
        with transaction(svc.sessions) as session:
            repository.enter_tenant(session, tenant)
            reviewer = redeem_login_link(session, tenant, token, svc.settings.console_session_s)
    if reviewer is None:
        return _login_form(request, 401, "This login link is void: it was already used or has expired. "
                                         "Ask for a new one (governance console-link).")
    return _signed_in(request, reviewer)


@router.post("/login/key")
def login_with_key(request: Request, api_key: str = Form(""), csrf: str = Form("")):
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not csrf or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise Problem("forbidden", "missing or wrong CSRF token")
    svc = services(request)
    with transaction(svc.sessions) as session:
        repository.enter_all_tenants(session)  # the key names its tenant; nothing else is read here
        principal = verify_key(session, api_key.strip())
    if principal is None or not principal.allows("review"):
        return _login_form(request, 401, "Unknown or revoked key, or a key without the review scope.")
    with transaction(svc.sessions) as session:
        repository.enter_tenant(session, principal.tenant)
        reviewer = start_session(session, principal.tenant, principal.name or principal.key_id, "api_key",
                                 svc.settings.console_session_s, api_key_id=principal.key_id)
    return _signed_in(request, reviewer)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")):
    with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
        end_session(session, reviewer)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
