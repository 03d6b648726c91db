"""The review loop over HTTP: what waits for a reviewer (oldest first, page by page) and a
reviewer's override of one event's decision, by the same `review` use case as `governance review
decide` (audit row with the key's name as who, exemplar, outbox message, retroactive matching)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from governance.moderation.review import NotDecided, ReviewError, UnknownDecision, decide_event, pending_page
from web.deps import NO_NUL, TenantScope, tenant_scope
from web.pagination import decode_cursor, encode_cursor
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["review"])


class Waiting(BaseModel):
    kind: str = Field(description="decision (it went to review) or retroactive (a new known-bad exemplar matches it)")
    tenant: str
    event_id: str | None
    asset_id: str | None
    label: str | None
    reason: str
    opened_at: str
    action: str | None = None
    score: float | None = None
    policy_version: str | None = None
    bank_version: int | None = None
    review_item: int | None = None
    trigger_asset_id: str | None = None
    distance: float | None = None


class ReviewPage(BaseModel):
    items: list[Waiting]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["allow", "block"]
    label: str | None = Field(None, min_length=1, max_length=128, pattern=NO_NUL,
                              description="default: the decision's label; block needs one")
    note: str | None = Field(None, max_length=2000, pattern=NO_NUL)


class Override(BaseModel):
    audit_id: int
    event_id: str
    asset_id: str | None
    who: str
    before: dict
    after: dict
    message_id: str
    retroactive: list[dict]


@router.get("/review", response_model=ReviewPage, response_model_exclude_unset=True, summary="What waits for a reviewer, oldest first",
            responses=problem_responses(401, 403, 422, 429))
def list_review(limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=400),
                scope: TenantScope = Depends(tenant_scope("review"))):
    after = decode_cursor(cursor, datetime, int, int) if cursor else None
    with scope.transaction() as session:
        items, position = pending_page(session, scope.tenant, limit, after)
    return {"items": items, "next_cursor": encode_cursor(position)}


@router.post("/review/{event_id}", response_model=Override,
             summary="Override an event's decision; the asset becomes an exemplar (see the README's review loop)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 429))
def review_event(verdict: Verdict, event_id: str = Path(..., min_length=1, max_length=256, pattern=NO_NUL),
                 scope: TenantScope = Depends(tenant_scope("review"))):
    try:
        with scope.transaction() as session:
            done = decide_event(session, scope.context(), scope.tenant, event_id, verdict.action,
                                label=verdict.label, who=scope.who, note=verdict.note)
    except UnknownDecision as exc:
        raise Problem("not-found", str(exc)) from None
    except NotDecided as exc:
        raise Problem("conflict", str(exc)) from None
    except ReviewError as exc:
        raise Problem("invalid-request", str(exc)) from None
    return {"audit_id": done.audit_id, "event_id": done.event_id, "asset_id": done.asset_id, "who": scope.who,
            "before": done.before, "after": done.after, "message_id": done.message_id,
            "retroactive": done.retroactive}
