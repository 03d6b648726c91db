"""The console's quality page: agreement of the blind second reviews (Cohen's kappa per reviewer
pair, reviewer and label), the overturn rate, and per-label precision and recall of the automatic
decisions on reviewed items (governance/moderation/review_quality.py)."""
from __future__ import annotations

from fastapi import APIRouter, Request

from governance.moderation.review_quality import quality_report
from web.console.auth import reviewer_transaction
from web.console.rendering import page
from web.deps import services

router = APIRouter(include_in_schema=False)


@router.get("/quality")
def quality(request: Request):
    share = services(request).settings.review_second_share
    with reviewer_transaction(request) as (session, reviewer):
        report = quality_report(session, reviewer.tenant, share)
    return page(request, "quality.html", reviewer=reviewer, report=report)
