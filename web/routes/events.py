"""POST /v1/events (one event, a JSON array, or NDJSON) and GET /v1/events/{event_id}."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from governance.ingest.events import KNOWN_FIELDS
from governance.moderation.decisions import event_outcomes
from web.bodies import JSON_TYPES, NDJSON_TYPES, media_type, parse_events, read_limited
from web.deps import TenantScope, tenant_scope
from web.ingest import MAX_WAIT_S, accept_and_answer, wait_for_outcomes
from web.problems import Problem, problem_responses
from web.schemas import EventState, IngestResult

router = APIRouter(prefix="/v1", tags=["events"])

WAIT = Query(None, ge=0, le=MAX_WAIT_S, description="hold the answer up to this many seconds for the decision")
EVENT_ID = Path(min_length=1, max_length=256)

_EVENT_SCHEMA = {
    "type": "object",
    "description": "An upload event (README, Event contract); its tenant is the key's.",
    "properties": {
        **{name: {"type": "string"} for name in sorted(KNOWN_FIELDS - {"metadata"})},
        "metadata": {"type": "object"},
    },
    "additionalProperties": False,
}
_EVENTS_BODY = {
    "required": True,
    "content": {
        **{t: {"schema": {"oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA, "maxItems": 1000}]}}
           for t in JSON_TYPES},
        NDJSON_TYPES[0]: {"schema": {"type": "string", "description": "one event per line"}},
    },
}


@router.post("/events", status_code=202, response_model=IngestResult,
             summary="Submit upload events: one object, an array, or NDJSON (up to 1,000)",
             responses={200: {"model": IngestResult, "description": "with ?wait=: every accepted event has an outcome"},
                        **problem_responses(401, 403, 409, 413, 415, 422, 429)},
             openapi_extra={"requestBody": _EVENTS_BODY})
async def submit_events(request: Request, wait: float | None = WAIT,
                        scope: TenantScope = Depends(tenant_scope("ingest"))):
    kind = media_type(request)
    if kind not in JSON_TYPES + NDJSON_TYPES:  # before reading: a wrong type is refused at once
        raise Problem("unsupported-media-type",
                      f"send application/json (an event or an array) or application/x-ndjson, not {kind or 'nothing'}")
    body = await read_limited(request, scope.settings.api_max_body_bytes)
    single, items = parse_events(kind, body, scope.settings.api_max_events)
    return await run_in_threadpool(accept_and_answer, scope, items, single, wait)


@router.get("/events/{event_id}", response_model=EventState, summary="An event's status and decision",
            responses=problem_responses(401, 403, 404, 422, 429))
def get_event(event_id: str = EVENT_ID, wait: float | None = WAIT,
              scope: TenantScope = Depends(tenant_scope("read"))):
    if wait:
        outcome = wait_for_outcomes(scope, [event_id], wait).get(event_id)
    else:
        with scope.transaction() as session:
            outcome = event_outcomes(session, scope.tenant, [event_id]).get(event_id)
    if outcome is None:
        raise Problem("not-found", f"no event {event_id!r}")
    return outcome
