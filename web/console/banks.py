"""The banks page: labels with counts, one label's exemplars as a grid, disable and enable; and
"add this item as an exemplar" from an item page."""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from governance.moderation import bank_view
from governance.moderation.exemplar_banks import BankError, add_stored_asset, set_enabled
from governance.storage import repository
from web.console.auth import reviewer_transaction
from web.console.pages import _context, _policy
from web.console.rendering import page
from web.problems import Problem

router = APIRouter(include_in_schema=False)


@router.get("/banks")
def banks(request: Request, label: str | None = None):
    with reviewer_transaction(request) as (session, reviewer):
        counts = bank_view.label_counts(session, reviewer.tenant)
        chosen = label if label in {c.label for c in counts} else (counts[0].label if counts else None)
        tiles = bank_view.exemplar_tiles(session, reviewer.tenant, chosen) if chosen else []
        version = repository.bank_version(session, reviewer.tenant)
    return page(request, "banks.html", reviewer=reviewer, counts=counts, chosen=chosen, tiles=tiles, version=version)


@router.post("/banks/{asset_id}/{change}")
def change_exemplar(request: Request, asset_id: str, change: str, label: str = Form(...), csrf: str = Form("")):
    if change not in ("enable", "disable"):
        raise Problem("not-found", f"no bank action {change!r}")
    try:
        with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
            set_enabled(session, _context(request), reviewer.tenant, asset_id, change == "enable", label=label,
                        who=reviewer.who)
    except BankError as exc:
        raise Problem("not-found", str(exc)) from None
    return RedirectResponse("/console/banks?" + urlencode({"label": label}), 303)


@router.post("/review/{event_id}/exemplar")
def add_as_exemplar(request: Request, event_id: str, label: str = Form(""), polarity: str = Form("positive"),
                    csrf: str = Form("")):
    """The item's asset joins the bank with a label of the policy (or bank) and a polarity."""
    ctx = _context(request)
    try:
        with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
            decision = repository.decision_for_event(session, reviewer.tenant, event_id)
            if decision is None or not decision.asset_id:
                raise Problem("not-found", f"no event {event_id!r}")
            labels = [*_policy(request, session, reviewer.tenant).labels, *repository.bank_labels(session, reviewer.tenant)]
            add_stored_asset(session, ctx, reviewer.tenant, decision.asset_id, label, polarity, source="console",
                             who=reviewer.who, allowed_labels=labels)
    except BankError as exc:
        raise Problem("invalid-request", str(exc)) from None
    return RedirectResponse("/console/banks?" + urlencode({"label": label.strip()}), 303)
