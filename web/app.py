"""The FastAPI application. `create_app` takes everything from outside as arguments (settings and
the function that sends [tenant, event_id] pairs to the workers), so it never needs the worker."""
from __future__ import annotations

import time
from typing import Callable

from fastapi import FastAPI, Request
from sqlalchemy.orm import Session, sessionmaker

from governance.platform.config import Settings
from governance.platform.metrics import HttpMetrics
from governance.storage.db import resolve_database_url, session_factory
from web import console
from web.deps import Enqueue, RunClusterReport, Services
from web.problems import install_handlers
from web.routes import assets, banks, clusters, decisions, events, hashes, health, keys, policies, review, webhooks

API_VERSION = "1"


def create_app(settings: Settings, enqueue: Enqueue, *, sessions: sessionmaker[Session] | None = None,
               broker_ping: Callable[[], None] | None = None,
               run_cluster_report: RunClusterReport | None = None) -> FastAPI:
    """The API. `broker_ping` raises when the broker is unreachable (for /readyz);
    `run_cluster_report(tenant)` sends that tenant's cluster-report task; the rate limiter lives
    in the broker's Redis unless GOVERNANCE_QUOTA_REDIS_URL names another."""
    sessions = sessions or session_factory(resolve_database_url(settings))
    metrics = HttpMetrics(gauges=lambda: health.operational_gauges(sessions))
    app = FastAPI(title="governance", version=API_VERSION,
                  description="Content-governance API: submit upload events, read decisions back.")
    app.state.services = Services(settings=settings, sessions=sessions, enqueue=enqueue, metrics=metrics,
                                  limiter=_limiter(settings), broker_ping=broker_ping,
                                  run_cluster_report=run_cluster_report)
    install_handlers(app)

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        started = time.monotonic()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.request(request.method, getattr(route, "path", "unmatched"), response.status_code,
                        time.monotonic() - started)
        return response

    for routes in (health, keys, events, assets, decisions, webhooks, banks, hashes, policies, review, clusters):
        app.include_router(routes.router)
    console.install(app)  # the review console's pages, under /console
    return app


def _limiter(settings: Settings):
    if settings.api_rate_per_minute <= 0 or not settings.quota_redis_url:
        return None
    from governance.access.rate_limit import RateLimiter
    from governance.platform.redis_client import redis_from_url

    return RateLimiter(redis_from_url(settings.quota_redis_url), settings.api_rate_per_minute,
                       settings.api_rate_burst_s)
