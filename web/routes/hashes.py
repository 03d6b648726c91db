"""Hash banks over HTTP: the bank's hashes page by page (the form `governance hashes export`
writes), importing a hash list (read by the same `parse_hash_file` and stored by the same
`import_hashes` as `governance hashes import`), and taking a hash out of matching or back
(`governance hashes disable|enable`)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from governance.moderation.hash_banks import HashBankError, hash_page, import_hashes, set_hashes_enabled
from governance.moderation.hash_files import Defaults, HashFileError, parse_hash_file
from web.bodies import NDJSON_TYPES, media_type, read_limited
from web.deps import NO_NUL, TenantScope, tenant_scope
from web.pagination import decode_cursor, encode_cursor
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["hash banks"])

SignalType = Literal["pdq", "md5", "sha256", "vpdq"]  # vpdq: where the vpdq package is installed
LIST_TYPES = NDJSON_TYPES + ("text/csv", "text/plain")
_LIST_BODY = {"requestBody": {"required": True, "description": "JSONL, CSV with a header, or one hash a line, as "
                                                               "`governance hashes import` reads",
                              "content": {kind: {"schema": {"type": "string"}} for kind in LIST_TYPES}}}
TEXT = {"min_length": 1, "max_length": 128, "pattern": NO_NUL}


class BankHash(BaseModel):
    signal_type: str
    signal: str = Field(description="lowercase hex")
    label: str
    polarity: Literal["positive", "negative"]
    source: str = Field(description="the list it came from")
    enabled: bool
    bank_version: int = Field(description="the hash bank version that last changed it")
    created_by: str | None
    created_at: str
    tenant: str


class HashPage(BaseModel):
    hashes: list[BankHash]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class RetroactiveHashItem(BaseModel):
    review_item: int
    asset_id: str
    event_id: str | None
    label: str
    trigger: str = Field(description="hash:SIGNAL_TYPE:SIGNAL")
    signal_type: str
    distance: int
    source: str


class HashImport(BaseModel):
    imported: int = Field(description="distinct (signal_type, signal, label) entries added or updated")
    by_type: dict[str, int]
    bank_version: int
    retroactive: list[RetroactiveHashItem] = Field(description="review items opened for recent allows it matches")


class HashEdit(BaseModel):
    changed: int = Field(description="bank hashes whose state changed (0: already so)")
    labels: list[str] = Field(description="the labels of the changed hashes")
    bank_version: int
    retroactive: list[RetroactiveHashItem]


@router.get("/hashes", response_model=HashPage, summary="The hash bank's hashes, oldest first",
            responses=problem_responses(401, 403, 422, 429))
def list_hashes(signal_type: SignalType | None = Query(None), label: str | None = Query(None, **TEXT),
                limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=400),
                scope: TenantScope = Depends(tenant_scope("read"))):
    after = decode_cursor(cursor, int)[0] if cursor else None
    with scope.transaction() as session:
        items, position = hash_page(session, scope.tenant, signal_type=signal_type, label=label, after=after,
                                    limit=limit)
    return {"hashes": items, "next_cursor": encode_cursor(None if position is None else (position,))}


@router.post("/hashes", response_model=HashImport, status_code=201, openapi_extra=_LIST_BODY,
             summary="Add a hash list to the bank (as `governance hashes import`); any bad line imports nothing",
             responses=problem_responses(401, 403, 413, 415, 422, 429))
async def post_hashes(request: Request, label: str | None = Query(None, **TEXT, description="for lines naming none"),
                      polarity: Literal["positive", "negative"] | None = Query(None),
                      source: str | None = Query(None, **TEXT, description="provenance (default: import)"),
                      signal_type: SignalType | None = Query(None, description="for lines naming none"),
                      scope: TenantScope = Depends(tenant_scope("admin"))):
    kind = media_type(request)
    if kind not in LIST_TYPES:
        raise Problem("unsupported-media-type", f"send the list as {', '.join(LIST_TYPES)}, not {kind or 'nothing'}")
    body = await read_limited(request, scope.settings.api_max_body_bytes)
    try:
        entries = parse_hash_file(body, Defaults(signal_type=signal_type, label=label, polarity=polarity,
                                                 source=source))
    except HashFileError as exc:
        raise Problem("invalid-request", str(exc)[:2000], errors=exc.errors) from None
    return await run_in_threadpool(_import, scope, entries)


def _import(scope: TenantScope, entries) -> dict:
    with scope.transaction() as session:
        result = import_hashes(session, scope.context(), scope.tenant, entries, who=scope.who)
    return {"imported": result.imported, "by_type": result.by_type, "bank_version": result.bank_version,
            "retroactive": result.retroactive}


def _toggle(enabled: bool):
    def route(signal_type: SignalType = Path(...),
              signal: str = Path(..., pattern=r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{64}$",
                                 description="lowercase hex; for vpdq the key: the SHA-256 of its JSON"),
              label: str | None = Query(None, **TEXT, description="only the hash of this label (default: all)"),
              scope: TenantScope = Depends(tenant_scope("admin"))):
        try:
            with scope.transaction() as session:
                edit = set_hashes_enabled(session, scope.context(), scope.tenant, enabled, signal=signal,
                                          signal_type=signal_type, label=label, who=scope.who)
                if not edit.matched:  # raised inside: the version bump of a no-op is rolled back
                    raise HashBankError(f"no {signal_type} hash {signal.lower()} in the bank"
                                        + (f" with label {label!r}" if label else ""))
        except HashBankError as exc:
            raise Problem("not-found", str(exc)) from None
        return {"changed": len(edit.changed), "labels": sorted({lab for _, _, lab, _ in edit.changed}),
                "bank_version": edit.bank_version, "retroactive": edit.retroactive}
    return route


for _verb, _enabled in (("disable", False), ("enable", True)):
    router.add_api_route(f"/hashes/{{signal_type}}/{{signal}}/{_verb}", _toggle(_enabled), methods=["POST"],
                         response_model=HashEdit, name=f"{_verb}_hash",
                         summary=f"{_verb.capitalize()} a bank hash (as `governance hashes {_verb} --signal`)",
                         responses=problem_responses(401, 403, 404, 422, 429))
