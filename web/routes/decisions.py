"""GET /v1/decisions: the tenant's decisions, newest first, in pages behind an opaque cursor."""
from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query

from governance.moderation.decisions import decision_page
from web.deps import TenantScope, tenant_scope
from web.pagination import decode_cursor, encode_cursor
from web.problems import problem_responses
from web.schemas import Action, DecisionPage

router = APIRouter(prefix="/v1", tags=["decisions"])


def _aware(moment: datetime | None) -> datetime | None:
    """A time without an offset is taken as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


@router.get("/decisions", response_model=DecisionPage, summary="Decisions, newest first",
            responses=problem_responses(401, 403, 422, 429))
def list_decisions(action: Action | None = None, label: str | None = Query(None, max_length=128),
                   since: datetime | None = Query(None, description="decided at or after (ISO 8601)"),
                   until: datetime | None = Query(None, description="decided before (ISO 8601)"),
                   limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=400),
                   scope: TenantScope = Depends(tenant_scope("read"))):
    after = decode_cursor(cursor, datetime, int) if cursor else None
    with scope.transaction() as session:
        decisions, position = decision_page(session, scope.tenant, action=action, label=label, since=_aware(since),
                                            until=_aware(until), after=after, limit=limit)
    return {"decisions": decisions, "next_cursor": encode_cursor(position)}
