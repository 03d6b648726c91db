"""RFC 9457 problem details: every error the API answers is `application/problem+json` with a
stable `type` URI, so clients branch on the type, never on the wording of `detail`."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://governance.dev/problems/"
MEDIA_TYPE = "application/problem+json"

# slug -> (status, title). The slugs are part of the API contract: add, never rename.
PROBLEMS = {
    "malformed-request": (400, "The request cannot be read"),
    "unauthorized": (401, "A valid API key is required"),
    "forbidden": (403, "The key may not do this"),
    "not-found": (404, "No such resource"),
    "method-not-allowed": (405, "Method not allowed"),
    "conflict": (409, "Conflicts with what is stored"),
    "body-too-large": (413, "The request body is too large"),
    "unsupported-media-type": (415, "Unsupported content type"),
    "invalid-request": (422, "The request is not valid"),
    "rate-limited": (429, "Too many requests for this key"),
    "internal": (500, "Internal error"),
    "unavailable": (503, "A dependency is unavailable"),
}


class Problem(Exception):
    def __init__(self, slug: str, detail: str | None = None, headers: dict[str, str] | None = None, **extra):
        status, title = PROBLEMS[slug]
        super().__init__(detail or title)
        self.slug, self.status, self.title, self.detail = slug, status, title, detail
        self.headers, self.extra = headers or {}, extra


def problem_body(slug: str, detail: str | None = None, instance: str | None = None, **extra) -> dict:
    status, title = PROBLEMS[slug]
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    return {**body, **extra}


def problem_response(slug: str, detail: str | None = None, instance: str | None = None,
                     headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    body = problem_body(slug, detail, instance, **extra)
    return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)


_STATUS_SLUGS = {status: slug for slug, (status, _) in PROBLEMS.items()}


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.slug, exc.detail, request.url.path, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return problem_response("invalid-request", "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)[:1000], request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        slug = _STATUS_SLUGS.get(exc.status_code, "malformed-request" if exc.status_code < 500 else "internal")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(slug, detail, request.url.path, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response("internal", None, request.url.path)


# For the OpenAPI document: what every error response looks like.
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "instance": {"type": "string"}},
}


def problem_responses(*statuses: int) -> dict:
    return {status: {"description": PROBLEMS[_STATUS_SLUGS[status]][1],
                     "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}} for status in statuses}
