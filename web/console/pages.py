"""The console's pages and actions: queues, the item page, decide / escalate / skip, media, settings.

Each route opens one transaction in the reviewer's tenant scope (auth.reviewer_transaction) and
calls one domain function; an action answers with a redirect to the next item of the same queue.
Another tenant's event or asset is simply not found there (row-level security): a 404.
"""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from governance.moderation import review_evidence, review_queue
from governance.moderation.pipeline import Context, for_tenant
from governance.moderation.review import ReviewError
from governance.storage import repository
from web.console.auth import reviewer_transaction
from web.console.rendering import HERE, page
from web.deps import services
from web.problems import Problem

router = APIRouter(include_in_schema=False)

STATIC = {"htmx.min.js": "text/javascript", "console.js": "text/javascript", "console.css": "text/css",
          "cluster-map.js": "text/javascript", "map-and-policy.css": "text/css"}
# What uploaded media may be served as; anything else (SVG among them: it can carry script) is never served.
SERVABLE = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "audio/", "video/", "application/pdf")
MEDIA_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, max-age=300", "Cross-Origin-Resource-Policy": "same-origin"}


def _context(request: Request) -> Context:
    """The moderation context, built once per app (the embedder is loaded on first use)."""
    state = request.app.state
    if getattr(state, "console_context", None) is None:
        from governance.embedding.factory import build_embedder

        settings = services(request).settings
        state.console_context = Context(settings=settings, embedder=build_embedder(settings))
    return state.console_context


def _queue(group: str | None, key: str | None) -> tuple[str | None, str | None]:
    return (group, key) if group in review_queue.GROUPINGS and key is not None else (None, None)


def _query(group: str | None, key: str | None) -> str:
    return "?" + urlencode({"group": group, "key": key}) if group else ""


def _policy(request: Request, session, tenant: str):
    return for_tenant(session, _context(request), tenant).policy


@router.get("/")
def queues(request: Request, group: str | None = None, key: str | None = None, empty: int = 0):
    group, key = _queue(group, key)
    with reviewer_transaction(request) as (session, reviewer):
        policy = _policy(request, session, reviewer.tenant)
        counts = review_queue.queue_counts(session, policy, reviewer.tenant)
        items = review_queue.queue_items(session, policy, reviewer.tenant, group, key, limit=50)
        reveal = repository.reviewer_reveals_media(session, reviewer.tenant, reviewer.who)
    grouped = {g: [c for c in counts if c.grouping == g] for g in review_queue.GROUPINGS}
    return page(request, "queues.html", reviewer=reviewer, grouped=grouped, items=items, group=group, key=key,
                query=_query(group, key), empty=bool(empty), reveal=reveal)


@router.get("/next")
def next_item(request: Request, group: str | None = None, key: str | None = None):
    group, key = _queue(group, key)
    with reviewer_transaction(request) as (session, reviewer):
        item = review_queue.next_item(session, _policy(request, session, reviewer.tenant), reviewer.tenant,
                                      review_queue.Reviewer(reviewer.id, reviewer.who), group, key)
    if item is None:
        return RedirectResponse("/console/" + (_query(group, key) + "&" if group else "?") + "empty=1", 303)
    return RedirectResponse(f"/console/review/{item.event_id}{_query(group, key)}", 303)


@router.get("/review/{event_id}")
def item_page(request: Request, event_id: str, group: str | None = None, key: str | None = None):
    group, key = _queue(group, key)
    ctx = _context(request)
    with reviewer_transaction(request) as (session, reviewer):
        evidence = review_evidence.item_evidence(session, ctx, reviewer.tenant, event_id)
        if evidence is None:
            raise Problem("not-found", f"no event {event_id!r}")
        policy = _policy(request, session, reviewer.tenant)
        held_by, leased = None, False
        if evidence.item is not None:
            try:
                review_queue.claim(session, policy, reviewer.tenant, event_id,
                                   review_queue.Reviewer(reviewer.id, reviewer.who),
                                   services(request).settings.console_lease_s)
                leased = True
            except review_queue.LeaseHeld as held:
                held_by = held.who
        order = [i.event_id for i in review_queue.queue_items(session, policy, reviewer.tenant, group, key, 500)]
        reveal = repository.reviewer_reveals_media(session, reviewer.tenant, reviewer.who)
    at = order.index(event_id) if event_id in order else -1
    nearby = {"prev": order[at - 1] if at > 0 else None,
              "next": order[at + 1] if 0 <= at < len(order) - 1 else (order[0] if at < 0 and order else None)}
    return page(request, "item.html", reviewer=reviewer, ev=evidence, leased=leased, held_by=held_by,
                group=group, key=key, query=_query(group, key), nearby=nearby, reveal=reveal,
                lease_s=services(request).settings.console_lease_s)


def _after_action(group: str | None, key: str | None) -> Response:
    return RedirectResponse(f"/console/next{_query(group, key)}", 303)


def _act(request: Request, csrf: str, action):
    try:
        with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
            return action(session, reviewer, review_queue.Reviewer(reviewer.id, reviewer.who))
    except review_queue.LeaseHeld as exc:
        raise Problem("conflict", str(exc)) from None
    except review_queue.NotWaiting as exc:
        raise Problem("conflict", str(exc)) from None
    except ReviewError as exc:
        raise Problem("invalid-request", str(exc)) from None


@router.post("/review/{event_id}/decide")
def decide(request: Request, event_id: str, action: str = Form(...), label: str = Form(""), note: str = Form(""),
           csrf: str = Form(""), group: str = Form(""), key: str = Form("")):
    ctx = _context(request)
    _act(request, csrf, lambda session, reviewer, who: review_queue.decide(
        session, ctx, reviewer.tenant, event_id, action, who, label=label.strip() or None, note=note))
    return _after_action(*_queue(group or None, key or None))


@router.post("/review/{event_id}/escalate")
def escalate(request: Request, event_id: str, note: str = Form(""), csrf: str = Form(""), group: str = Form(""),
             key: str = Form("")):
    _act(request, csrf, lambda session, reviewer, who: review_queue.escalate(
        session, _policy(request, session, reviewer.tenant), reviewer.tenant, event_id, who, note))
    return _after_action(*_queue(group or None, key or None))


@router.post("/review/{event_id}/skip")
def skip(request: Request, event_id: str, csrf: str = Form(""), group: str = Form(""), key: str = Form("")):
    _act(request, csrf, lambda session, reviewer, who: review_queue.skip(session, reviewer.tenant, event_id, who))
    return _after_action(*_queue(group or None, key or None))


@router.post("/review/{event_id}/lease")
def renew_lease(request: Request, event_id: str, csrf: str = Form("")):
    """Keeps the lease while the page stays open (htmx, every few minutes)."""
    lease_s = services(request).settings.console_lease_s
    _act(request, csrf, lambda session, reviewer, who: review_queue.claim(
        session, _policy(request, session, reviewer.tenant), reviewer.tenant, event_id, who, lease_s))
    return Response(status_code=204)


@router.get("/media/{asset_id:path}")
def media(request: Request, asset_id: str):
    """An asset's bytes through the app (never its original URL), sandboxed, never SVG."""
    settings = services(request).settings
    with reviewer_transaction(request) as (session, reviewer):
        found = review_evidence.asset_media(session, settings, reviewer.tenant, asset_id)
    if found is None or not found[1].startswith(SERVABLE):
        raise Problem("not-found", f"no media for asset {asset_id!r}")
    data, mime = found
    disposition = "attachment" if mime == "application/pdf" else "inline"
    return Response(data, media_type=mime, headers={**MEDIA_HEADERS,
                                                    "Content-Disposition": f'{disposition}; filename="{asset_id[:64]}"'
                                                    if asset_id.isalnum() else disposition})


@router.post("/settings")
def settings(request: Request, reveal_media: str = Form(""), csrf: str = Form(""), back: str = Form("/console/")):
    with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
        repository.set_reviewer_reveals_media(session, reviewer.tenant, reviewer.who, reveal_media == "on")
    target = back if back.startswith("/console/") and "//" not in back and "\\" not in back else "/console/"
    return RedirectResponse(target, 303)


@router.get("/static/{name}")
def static(name: str):
    if name not in STATIC:
        raise Problem("not-found", f"no static file {name!r}")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
