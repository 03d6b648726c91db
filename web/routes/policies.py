"""Policies over HTTP: the applied versions, the current file, applying a TOML file (validated by
the same `apply_policy` as `governance policy apply`) and backtesting one (the report of
`governance backtest --json`, in a transaction that is rolled back)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from governance.moderation.backtest import backtest, backtest_report
from governance.moderation.policy_store import PolicyConflict, PolicyError, apply_policy, parse_policy, policy_file
from governance.moderation.policy_store import policy_history
from web.deps import TenantScope, tenant_scope
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["policies"])

MAX_POLICY_BYTES = 256 * 1024
TOML_TYPES = ("application/toml", "text/plain")
TOML_BODY = {"requestBody": {"required": True, "content": {
    media_type: {"schema": {"type": "string", "maxLength": MAX_POLICY_BYTES}} for media_type in TOML_TYPES}}}


async def toml_body(request: Request) -> str:
    """The request body as policy text: TOML (or plain text) in UTF-8, at most MAX_POLICY_BYTES."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in TOML_TYPES:
        raise Problem("unsupported-media-type", f"send the policy as {' or '.join(TOML_TYPES)}, not "
                                                f"{media_type or 'no content type'!r}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_POLICY_BYTES:
            raise Problem("body-too-large", f"a policy file has at most {MAX_POLICY_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem("invalid-request", "the policy is not UTF-8 text", errors=["not UTF-8 text"]) from None


def _invalid(exc: PolicyError) -> Problem:
    return Problem("invalid-request", str(exc)[:2000], errors=exc.errors)


class PolicyVersion(BaseModel):
    version: str
    applied_at: str
    applied_by: str | None
    current: bool


class PolicyFile(BaseModel):
    version: str
    applied: bool = Field(description="false while the builtin policy is in use (no file applied)")
    source: str = Field(description="the TOML text as applied")
    document: dict[str, Any] = Field(description="the validated policy with every label's every field")


class Applied(BaseModel):
    version: str
    tenant: str
    created: bool = Field(description="false: this exact version was applied before and is current again")


class Transition(BaseModel):
    from_: str = Field(alias="from")
    to: str
    count: int


class BacktestReport(BaseModel):
    candidate: str
    current: str
    replayed: int
    changed: int
    stored_to_candidate: list[Transition]
    current_to_candidate: list[Transition]
    examples: list[dict[str, Any]]


@router.get("/policies", response_model=list[PolicyVersion], summary="Every applied policy version, current first",
            responses=problem_responses(401, 403, 429))
def list_policies(scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        return policy_history(session, scope.tenant)


@router.get("/policies/current", response_model=PolicyFile, summary="The policy that decides uploads now",
            responses=problem_responses(401, 403, 429))
def current_policy(scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        return policy_file(session, scope.tenant)


@router.post("/policies", response_model=Applied, status_code=201, openapi_extra=TOML_BODY,
             summary="Validate a TOML policy file and make it current (re-applying a version: 200, a rollback)",
             responses={200: {"model": Applied, "description": "an earlier version is current again"},
                        **problem_responses(401, 403, 409, 413, 415, 422, 429)})
def post_policy(scope: TenantScope = Depends(tenant_scope("admin")), text: str = Depends(toml_body)):
    try:
        with scope.transaction() as session:
            applied = apply_policy(session, text, tenant=scope.tenant, who=scope.who)
    except PolicyConflict as exc:
        raise Problem("conflict", str(exc)) from None
    except PolicyError as exc:
        raise _invalid(exc) from None
    body = {"version": applied.version, "tenant": applied.tenant, "created": applied.created}
    return body if applied.created else JSONResponse(body, status_code=200)


@router.post("/policies/backtest", response_model=BacktestReport, openapi_extra=TOML_BODY,
             summary="Replay decided uploads through a candidate TOML policy; writes nothing",
             responses=problem_responses(401, 403, 413, 415, 422, 429))
def post_backtest(scope: TenantScope = Depends(tenant_scope("read")), text: str = Depends(toml_body),
                  days: float | None = Query(None, gt=0, le=3650), limit: int = Query(10_000, ge=1, le=100_000),
                  examples: int = Query(5, ge=0, le=100)):
    try:
        candidate = parse_policy(text).policy
    except PolicyError as exc:
        raise _invalid(exc) from None
    with scope.rolled_back() as session:
        return backtest_report(backtest(session, scope.context(), scope.tenant, candidate, days=days, limit=limit,
                                        examples=examples))
