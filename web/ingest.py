"""Accepting events for a key's tenant and, with ?wait=, holding the answer until they are decided.

Used by POST /v1/events and POST /v1/assets: one transaction for the inbox rows (the same
acceptance as `governance publish`), the enqueue after its commit, then the optional wait.
"""
from __future__ import annotations

import time
from typing import Any

from fastapi.responses import JSONResponse

from governance.ingest.inbox import FORBIDDEN_TENANT, accept_for_tenant
from governance.moderation.decisions import event_outcomes
from web.deps import TenantScope
from web.problems import Problem
from web.schemas import AcceptedEvent, IngestResult, RefusedEvent

MAX_WAIT_S = 30.0
FIRST_POLL_S = 0.02
MAX_POLL_S = 0.25


def wait_for_outcomes(scope: TenantScope, event_ids: list[str], wait_s: float) -> dict[str, dict]:
    """The events' outcomes once none is still `accepted`, or as they stand when `wait_s` is up.

    Each look is its own short transaction: a long one would hold a snapshot that never sees the
    worker's commit."""
    deadline = time.monotonic() + min(wait_s, MAX_WAIT_S)
    delay = FIRST_POLL_S
    while True:
        with scope.transaction() as session:
            outcomes = event_outcomes(session, scope.tenant, event_ids)
        remaining = deadline - time.monotonic()
        if all(o["status"] != "accepted" for o in outcomes.values()) or remaining <= 0:
            return outcomes
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, MAX_POLL_S)


def single_refusal(reason: str) -> Problem:
    if reason.startswith(FORBIDDEN_TENANT):
        return Problem("forbidden", reason)
    if reason.startswith("conflict") or reason.startswith("duplicate of"):
        return Problem("conflict", reason)
    return Problem("invalid-request", reason)


def accept_and_answer(scope: TenantScope, items: list[tuple[int, Any]], single: bool,
                      wait_s: float | None) -> JSONResponse:
    with scope.transaction() as session:
        result = accept_for_tenant(session, scope.tenant, items)
    scope.enqueue(result.new)  # after commit, so the worker always finds the rows
    metrics = scope.services.metrics
    metrics.events("accepted", len(result.new))
    metrics.events("duplicate", len(result.accepted) - len(result.new))
    metrics.events("refused", len(result.refused))
    if single and result.refused:
        raise single_refusal(result.refused[0][1])
    accepted = [AcceptedEvent(index=i, event_id=e, asset_id=a, status=s) for i, e, a, s in result.accepted]
    status = 202
    if wait_s is not None and accepted:
        outcomes = wait_for_outcomes(scope, [a.event_id for a in accepted], wait_s)
        for item in accepted:
            outcome = outcomes.get(item.event_id, {})
            item.event_status = outcome.get("status", "accepted")
            item.decision = outcome.get("decision")
        if all(item.event_status != "accepted" for item in accepted):
            status = 200
    body = IngestResult(accepted=accepted, refused=[RefusedEvent(index=i, reason=r) for i, r in result.refused])
    return JSONResponse(body.model_dump(mode="json"), status_code=status)
