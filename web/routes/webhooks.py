"""POST, GET and DELETE /v1/webhooks: the calling tenant's webhook subscriptions (the `admin` scope).

Thin over `governance.delivery.subscriptions`, as `governance webhooks` is: the key fixes the tenant,
so another tenant's subscription is a 404 like one that never existed.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from governance.delivery import subscriptions
from web.deps import TenantScope, tenant_scope
from web.problems import Problem, problem_responses

router = APIRouter(prefix="/v1", tags=["webhooks"])

EventType = Literal[subscriptions.EVENTS]  # one list of event types: the domain's


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=subscriptions.MAX_URL_CHARS,
                     description="http(s) receiver; it must resolve to public addresses only")
    events: list[EventType] = Field(min_length=1, max_length=16, description="the event types to receive")


class Subscription(BaseModel):
    id: str
    tenant: str
    url: str
    events: list[EventType]
    created_at: str


class CreatedSubscription(Subscription):
    secret: str = Field(description="whsec_… signing secret (Standard Webhooks); shown only in this answer")


class SubscriptionList(BaseModel):
    webhooks: list[Subscription]


@router.post("/webhooks", status_code=201, response_model=CreatedSubscription,
             summary="Subscribe a receiver to this tenant's events; the secret is returned once",
             responses=problem_responses(400, 401, 403, 422, 429))
def create_webhook(body: NewSubscription, scope: TenantScope = Depends(tenant_scope("admin"))) -> dict:
    try:
        with scope.transaction() as session:
            created = subscriptions.create(session, scope.settings, scope.tenant, body.url, body.events)
    except subscriptions.SubscriptionRefused as exc:
        raise Problem("invalid-request", f"refused: {exc}", reason=str(exc).split(":", 1)[0]) from None
    return created.to_json()


@router.get("/webhooks", response_model=SubscriptionList, summary="This tenant's live subscriptions (no secrets)",
            responses=problem_responses(401, 403, 429))
def list_webhooks(scope: TenantScope = Depends(tenant_scope("admin"))) -> dict:
    with scope.transaction() as session:
        found = subscriptions.list_subscriptions(session, scope.tenant)
    return {"webhooks": [sub.to_json() for sub in found]}


@router.delete("/webhooks/{subscription_id}", status_code=204, response_class=Response,
               summary="Stop delivering to a subscription", responses=problem_responses(401, 403, 404, 422, 429))
def delete_webhook(subscription_id: str = Path(max_length=64),
                   scope: TenantScope = Depends(tenant_scope("admin"))) -> Response:
    try:
        with scope.transaction() as session:
            subscriptions.delete(session, subscription_id, scope.tenant)
    except subscriptions.SubscriptionNotFound:
        raise Problem("not-found", f"no webhook subscription {subscription_id!r}") from None
    return Response(status_code=204)
