"""The console's audit page: every hand-made change, filterable by reviewer, label and date, as a
table or as CSV (`?format=csv`)."""
from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from governance.moderation.audit_trail import AuditFilter, audit_csv, audit_rows
from web.console.auth import reviewer_transaction
from web.console.rendering import SECURITY_HEADERS, page
from web.problems import Problem

router = APIRouter(include_in_schema=False)


def _date(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Problem("invalid-request", f"{name} must be a date (YYYY-MM-DD), got {value[:40]!r}") from None


@router.get("/audit")
def audit(request: Request, who: str = "", label: str = "", since: str = "", until: str = "", format: str = "html"):
    wanted = AuditFilter(who=who.strip()[:256] or None, label=label.strip()[:128] or None,
                         since=_date("since", since), until=_date("until", until))
    with reviewer_transaction(request) as (session, reviewer):
        rows = audit_rows(session, reviewer.tenant, wanted, viewer=reviewer.who)
    if format == "csv":
        return Response(audit_csv(rows), media_type="text/csv; charset=utf-8", headers={
            **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="audit-{reviewer.tenant}.csv"'})
    return page(request, "audit.html", reviewer=reviewer, rows=rows, wanted=wanted,
                csv_query=request.url.include_query_params(format="csv").query)
