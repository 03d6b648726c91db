"""Cluster reports over HTTP: the stored reports' history, the latest report.json, and a report
run now (the worker's `governance.cluster_report` task, sent through the callable the app was
built with, so the web adapter never imports the worker)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from governance.clustering.stored_reports import history, latest_report
from web.deps import TenantScope, services, tenant_scope
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])


class Changes(BaseModel):
    new: list[str]
    gone: list[str]
    resized: dict[str, int]


class StoredReport(BaseModel):
    report_id: int
    generated_at: str
    clusters: int
    noise: int
    alerts: int
    changes: Changes = Field(description="against the report before it")


class LatestReport(BaseModel):
    report_id: int
    stored_at: str
    report: dict[str, Any] = Field(description="the report.json document: clusters, noise, alerts, map, params")


class Queued(BaseModel):
    status: str
    tenant: str


@router.get("/reports", response_model=list[StoredReport], summary="Stored cluster reports, newest first",
            responses=problem_responses(401, 403, 422, 429))
def list_reports(limit: int = Query(20, ge=1, le=200), scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        return history(session, scope.tenant, limit)


@router.get("/reports/latest", response_model=LatestReport, summary="The newest cluster report",
            responses=problem_responses(401, 403, 404, 429))
def get_latest(scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        found = latest_report(session, scope.tenant)
    if found is None:
        raise Problem("not-found", f"tenant {scope.tenant!r} has no cluster report yet")
    return found


@router.post("/reports", response_model=Queued, status_code=202,
             summary="Cluster the recent window now (the worker builds and stores the report)",
             responses=problem_responses(401, 403, 429, 503))
def run_report(request: Request, scope: TenantScope = Depends(tenant_scope("admin"))):
    run = services(request).run_cluster_report
    if run is None:
        raise Problem("unavailable", "this server was started without a worker to run reports")
    try:
        run(scope.tenant)
    except Exception as exc:  # noqa: BLE001 - whatever the broker raises, the report was not queued
        raise Problem("unavailable", f"the broker did not take the task: {type(exc).__name__}") from None
    return {"status": "queued", "tenant": scope.tenant}
