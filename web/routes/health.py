"""Liveness, readiness and metrics: unauthenticated, for orchestrators and Prometheus."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from governance.storage import repository
from governance.storage.db import transaction
from web.deps import services
from web.problems import problem_response, problem_responses

router = APIRouter(tags=["health"])


def operational_gauges(sessions: sessionmaker[Session]) -> dict[str, float]:
    with transaction(sessions) as session:
        repository.enter_all_tenants(session)  # gauges are totals over every tenant by design
        return repository.operational_counts(session)


@router.get("/healthz", summary="The process is up")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the broker are reachable", responses=problem_responses(503))
def readyz(request: Request):
    svc = services(request)
    checks = {}
    try:
        with transaction(svc.sessions) as session:
            repository.enter_all_tenants(session)  # also proves the login role may act as the app role
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"FAIL: {type(exc).__name__}"
    if svc.broker_ping is not None:
        try:
            svc.broker_ping()
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"FAIL: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        return problem_response("unavailable", ", ".join(f"{k}: {v}" for k, v in checks.items()),
                                "/readyz", checks=checks)
    return {"status": "ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus(request: Request) -> Response:
    body, content_type = services(request).metrics.exposition()
    return Response(body, media_type=content_type)
