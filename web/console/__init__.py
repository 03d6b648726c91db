"""The review console: server-rendered pages under /console on the same FastAPI app as the API.

Routes parse input, open ONE transaction in the reviewer's tenant scope (the session cookie names
the tenant), call one domain function (governance.moderation.review_queue / review_evidence,
governance.access.console_sessions) and render a Jinja2 template. No JavaScript build chain:
htmx and our own console.js are static files (static/README.md).
"""
from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from web.console import auth, pages

    app.include_router(auth.router, prefix="/console")
    app.include_router(pages.router, prefix="/console")
