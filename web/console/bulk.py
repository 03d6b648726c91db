"""The cluster page: a cluster's waiting members as a grid, and one decision for all of them once a
random sample was looked at. The sample is drawn here and signed with the session's CSRF token, so
the browser cannot swap in a sample of its own choosing."""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from governance.moderation import bulk_review, review_queue
from governance.moderation.review import ReviewError
from web.console.auth import reviewer_transaction
from web.console.pages import _context
from web.console.rendering import page
from web.problems import Problem

router = APIRouter(include_in_schema=False)


def _signature(csrf_token: str, cluster_id: str, sample: list[str]) -> str:
    message = cluster_id + "\n" + ",".join(sample)
    return hmac.new(csrf_token.encode(), message.encode(), hashlib.sha256).hexdigest()


@router.get("/clusters/{cluster_id}")
def cluster_page(request: Request, cluster_id: str, done: int | None = None, held: int = 0):
    with reviewer_transaction(request) as (session, reviewer):
        batch = bulk_review.cluster_batch(session, _context(request), reviewer.tenant, cluster_id)
    if batch is None:
        raise Problem("not-found", f"no cluster {cluster_id!r} in the latest report")
    sample = bulk_review.draw_sample([i.event_id for i in batch.waiting])
    return page(request, "cluster.html", reviewer=reviewer, batch=batch, sample=sample,
                sample_sig=_signature(reviewer.csrf_token, cluster_id, sample), done=done, held=held,
                group="cluster", key=cluster_id)


@router.post("/clusters/{cluster_id}/decide")
def decide_cluster(request: Request, cluster_id: str, action: str = Form(...), label: str = Form(""),
                   note: str = Form(""), sample: str = Form(""), sample_sig: str = Form(""), viewed: str = Form(""),
                   csrf: str = Form("")):
    drawn = [e for e in sample.split(",") if e]
    try:
        with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
            expected = _signature(reviewer.csrf_token, cluster_id, drawn)
            if not hmac.compare_digest(sample_sig.encode(), expected.encode()):
                raise Problem("invalid-request", "the sample was not drawn by this page")
            result = bulk_review.decide_cluster(
                session, _context(request), reviewer.tenant, cluster_id, action,
                review_queue.Reviewer(reviewer.id, reviewer.who), sample=drawn,
                viewed={e for e in viewed.split(",") if e}, label=label.strip() or None, note=note.strip() or None)
    except review_queue.NotWaiting as exc:
        raise Problem("not-found", str(exc)) from None
    except ReviewError as exc:
        raise Problem("invalid-request", str(exc)) from None
    return RedirectResponse(f"/console/clusters/{quote(cluster_id)}?done={len(result.decided)}&held={len(result.held)}",
                            303)
