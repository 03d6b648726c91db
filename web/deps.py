"""What every route shares: the services the app was built with, the key's principal, and one
transaction in the principal's tenant scope.

Authentication is its own short transaction in the cross-tenant scope (the key's hash is all
that is known then, as the worker's cross-tenant reads); the request's work is one transaction
in the key's tenant scope, which the route opens with `TenantScope.transaction()` and leaves
before it enqueues anything, so a task always finds the rows it is sent.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from governance.access.api_keys import Principal, verify_key
from governance.access.rate_limit import RateLimiter
from governance.moderation.pipeline import Context
from governance.platform.config import Settings
from governance.platform.metrics import HttpMetrics
from governance.storage import repository
from governance.storage.db import transaction
from web.problems import Problem

Enqueue = Callable[[list[tuple[str, str]]], None]
NO_NUL = r"^[^\x00]*$"  # for free-text parameters: PostgreSQL text and jsonb cannot hold NUL
RunClusterReport = Callable[[str], None]  # sends one tenant's cluster-report task


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    enqueue: Enqueue
    metrics: HttpMetrics
    limiter: RateLimiter | None
    broker_ping: Callable[[], None] | None
    run_cluster_report: RunClusterReport | None = None
    _context: Context | None = field(default=None, repr=False)
    _context_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def context(self) -> Context:
        """The moderation use cases' collaborators (the configured embedder), built on first use
        so that a server that never embeds never loads a model."""
        with self._context_lock:
            if self._context is None:
                from governance.embedding.factory import build_embedder

                self._context = Context(settings=self.settings, embedder=build_embedder(self.settings))
            return self._context


def services(request: Request) -> Services:
    return request.app.state.services


_bearer = HTTPBearer(auto_error=False, description="An API key from `governance keys create`")


def authenticate(svc: Services, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Problem("unauthorized", "send Authorization: Bearer <key>", headers={"WWW-Authenticate": "Bearer"})
    with transaction(svc.sessions) as session:
        repository.enter_all_tenants(session)  # the key names its tenant; nothing else is read here
        principal = verify_key(session, credentials.credentials)
    if principal is None:
        raise Problem("unauthorized", "unknown or revoked API key",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def principal(scope: str | None) -> Callable[..., Principal]:
    """A dependency: the request's principal, refused unless its key has `scope` (or admin);
    None accepts any valid key."""
    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)
                   ) -> Principal:
        svc = services(request)
        who = authenticate(svc, credentials)
        if svc.limiter is not None:
            wait_s = svc.limiter.admit(who.key_id)
            if wait_s is not None:
                raise Problem("rate-limited", f"this key is over its limit; retry in {wait_s:.1f} s",
                              headers={"Retry-After": str(max(1, math.ceil(wait_s)))})
        if scope is not None and not who.allows(scope):
            raise Problem("forbidden", f"this key lacks the {scope!r} scope")
        request.state.principal = who
        return who
    return dependency


@dataclass
class TenantScope:
    principal: Principal
    services: Services

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def who(self) -> str:
        """The name audit rows record: the key's name, else its id."""
        return self.principal.name or self.principal.key_id

    def context(self) -> Context:
        return self.services.context()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work in the key's tenant: row-level security hides every other tenant's rows."""
        with transaction(self.services.sessions) as session:
            repository.enter_tenant(session, self.principal.tenant)
            yield session

    @contextmanager
    def rolled_back(self) -> Iterator[Session]:
        """As `transaction`, but always rolled back: for evaluations that must write nothing."""
        session = self.services.sessions()
        try:
            repository.enter_tenant(session, self.principal.tenant)
            yield session
        finally:
            session.rollback()
            session.close()

    def enqueue(self, pairs: list[tuple[str, str]]) -> None:
        if pairs:
            self.services.enqueue(pairs)


def tenant_scope(scope: str) -> Callable[..., TenantScope]:
    def dependency(request: Request, who: Principal = Depends(principal(scope))) -> TenantScope:
        return TenantScope(who, services(request))
    return dependency
