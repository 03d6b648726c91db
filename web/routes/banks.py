"""Exemplar banks over HTTP: what the bank holds, its exemplars page by page, adding one (embedded
and stored by the same `import_exemplars` as `governance exemplars import`), and taking an
asset's exemplars out of the bank or back (`governance exemplars disable|enable`)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from governance.moderation.exemplar_banks import BankError, bank_summary, exemplar_page, import_exemplars, set_enabled
from web.deps import NO_NUL, TenantScope, tenant_scope
from web.pagination import decode_cursor, encode_cursor
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["banks"])


class LabelCounts(BaseModel):
    label: str
    positive: int = Field(description="enabled positive exemplars")
    negative: int = Field(description="enabled negative (allowlist) exemplars")
    disabled: int


class Bank(BaseModel):
    tenant: str
    bank_version: int = Field(description="bumped by every change; each decision names the version it used")
    exemplars: int
    labels: list[LabelCounts]


class Exemplar(BaseModel):
    asset_id: str
    tenant: str
    label: str
    polarity: Literal["positive", "negative"]
    enabled: bool
    source: str = Field(description="import, api or review")
    created_by: str | None
    created_at: str
    modality: str | None
    mime_type: str | None
    sha256: str | None
    uri: str | None = None
    text: str | None = None
    text_excerpt: str | None = None
    title: str | None = None


class ExemplarPage(BaseModel):
    exemplars: list[Exemplar]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class RetroactiveItem(BaseModel):
    review_item: int
    asset_id: str
    event_id: str | None
    label: str
    trigger_asset_id: str
    distance: float


class AddedExemplar(BaseModel):
    asset_id: str
    label: str
    polarity: Literal["positive", "negative"]
    bank_version: int
    retroactive: list[RetroactiveItem] = Field(description="review items opened for recent allows it matches")


class BankEdit(BaseModel):
    asset_id: str
    labels: list[str] = Field(description="the exemplar labels whose state changed (empty: nothing to change)")
    bank_version: int
    retroactive: list[RetroactiveItem]


@router.get("/banks", response_model=Bank, summary="The exemplar bank: its version and counts per label",
            responses=problem_responses(401, 403, 429))
def get_bank(scope: TenantScope = Depends(tenant_scope("read"))):
    with scope.transaction() as session:
        return bank_summary(session, scope.tenant)


@router.get("/exemplars", response_model=ExemplarPage, response_model_exclude_unset=True,
            summary="The bank's exemplars, oldest first",
            responses=problem_responses(401, 403, 422, 429))
def list_exemplars(label: str | None = Query(None, min_length=1, max_length=128, pattern=NO_NUL),
                   limit: int = Query(100, ge=1, le=1000), cursor: str | None = Query(None, max_length=400),
                   scope: TenantScope = Depends(tenant_scope("read"))):
    after = decode_cursor(cursor, int)[0] if cursor else None
    with scope.transaction() as session:
        items, position = exemplar_page(session, scope.tenant, label=label, after=after, limit=limit)
    return {"exemplars": items, "next_cursor": encode_cursor(None if position is None else (position,))}


@router.post("/exemplars", response_model=AddedExemplar, status_code=201,
             summary="Embed an upload event with its `label` (and `polarity`) and add it to the bank",
             responses=problem_responses(400, 401, 403, 422, 429))
def add_exemplar(event: dict[str, Any] = Body(..., description="an upload event plus `label`, optional "
                                                               "`polarity` (positive|negative); tenant from the key"),
                 scope: TenantScope = Depends(tenant_scope("admin"))):
    if event.get("tenant", scope.tenant) != scope.tenant:
        raise Problem("forbidden", f"this key acts for tenant {scope.tenant!r}, not {event.get('tenant')!r}")
    with scope.transaction() as session:
        result = import_exemplars(session, scope.context(), [{**event, "tenant": scope.tenant}], source="api",
                                  created_by=scope.who)
    if not result.imported:
        reason = result.rejected[0][1] if result.rejected else "not imported"
        raise Problem("invalid-request", reason)
    return {"asset_id": event["asset_id"], "label": event["label"], "polarity": event.get("polarity") or "positive",
            "bank_version": result.bank_version, "retroactive": result.retroactive}


def _toggle(enabled: bool):
    def route(asset_id: str = Path(..., min_length=1, max_length=256, pattern=NO_NUL),
              label: str | None = Query(None, min_length=1, max_length=128, pattern=NO_NUL,
                                        description="only the exemplar of this label (default: all)"),
              scope: TenantScope = Depends(tenant_scope("admin"))):
        try:
            with scope.transaction() as session:
                edit = set_enabled(session, scope.context(), scope.tenant, asset_id, enabled, label=label,
                                   who=scope.who)
        except BankError as exc:
            raise Problem("not-found", str(exc)) from None
        return {"asset_id": edit.asset_id, "labels": edit.labels, "bank_version": edit.bank_version,
                "retroactive": edit.retroactive}
    return route


for _verb, _enabled in (("disable", False), ("enable", True)):
    router.add_api_route(f"/exemplars/{{asset_id}}/{_verb}", _toggle(_enabled), methods=["POST"],
                         response_model=BankEdit, name=f"{_verb}_exemplar",
                         summary=f"{_verb.capitalize()} an asset's exemplars (as `governance exemplars {_verb}`)",
                         responses=problem_responses(401, 403, 404, 422, 429))
