"""The review console: server-rendered pages under /console on the same FastAPI app as the API.

Routes parse input, open ONE transaction in the reviewer's tenant scope (the session cookie names
the tenant), call one domain function (governance.moderation.review_queue / review_evidence,
governance.access.console_sessions) and render a Jinja2 template. No JavaScript build chain:
htmx and our own console.js are static files (static/README.md).
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from web.problems import problem_response


def install(app: FastAPI) -> None:
    from web.console import audit, auth, banks, bulk, cluster_map, pages, policy

    @app.exception_handler(auth.NotSignedIn)
    async def _not_signed_in(request: Request, exc: auth.NotSignedIn):
        if request.method == "GET":
            return RedirectResponse("/console/login", status_code=303)
        return problem_response("unauthorized", "sign in to the console first", request.url.path)

    app.include_router(auth.router, prefix="/console")
    app.include_router(pages.router, prefix="/console")
    app.include_router(audit.router, prefix="/console")
    app.include_router(cluster_map.router, prefix="/console")  # before bulk: /clusters/history is no cluster id
    app.include_router(policy.router, prefix="/console")
    app.include_router(bulk.router, prefix="/console")
    app.include_router(banks.router, prefix="/console")
