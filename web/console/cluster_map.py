"""The clusters pages: the latest (or a chosen) stored report as an interactive map beside the
clusters' waiting counts, and the report history with what changed between two reports.

A report id of another tenant is not found in the reviewer's scope: a 404, like any other miss."""
from __future__ import annotations

from fastapi import APIRouter, Request

from governance.clustering.report_views import compare_reports, report_history, report_map
from governance.moderation import bulk_review
from governance.storage import repository
from web.console.auth import reviewer_transaction
from web.console.pages import _context
from web.console.rendering import page, pair_to_compare
from web.problems import Problem

router = APIRouter(include_in_schema=False)


@router.get("/clusters")
def clusters(request: Request, report: int | None = None):
    with reviewer_transaction(request) as (session, reviewer):
        drawn = report_map(session, reviewer.tenant, report)
        if report is not None and drawn is None:
            raise Problem("not-found", f"no cluster report {report}")
        latest = report is None or (drawn is not None and
                                    drawn.report_id == repository.latest_cluster_report(session, reviewer.tenant).id)
        overview = bulk_review.cluster_overview(session, _context(request), reviewer.tenant) if latest else None
        reveal = repository.reviewer_reveals_media(session, reviewer.tenant, reviewer.who)
    return page(request, "clusters.html", reviewer=reviewer, overview=overview, map=drawn, latest=latest,
                reveal=reveal)


@router.get("/clusters/history")
def cluster_history(request: Request, older: int | None = None, newer: int | None = None):
    with reviewer_transaction(request) as (session, reviewer):
        reports = report_history(session, reviewer.tenant)
        older, newer = pair_to_compare([r["report_id"] for r in reports], older, newer, "reports")
        compared = None
        if older is not None:
            compared = compare_reports(session, reviewer.tenant, older, newer)
            if compared is None:
                raise Problem("not-found", f"no cluster reports {older} and {newer}")
    return page(request, "cluster_history.html", reviewer=reviewer, reports=reports, compared=compared,
                older=older, newer=newer)
