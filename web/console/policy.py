"""The policy page: the current version's TOML, every applied version with a diff between any two,
and an editor whose "Preview" backtests the edited policy (in a rolled-back transaction: nothing is
written) and whose "Apply" makes it current exactly as `governance policy apply` does.

Any reviewer may preview; applying needs a session started with an API key that has the `admin`
scope and is still unrevoked (console_sessions.is_admin): a login link names a reviewer, not an
administrator. A file that is not a valid policy is shown as an inline error, never a 500."""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from governance.access.console_sessions import is_admin
from governance.moderation.policy_review import compare_versions, preview
from governance.moderation.policy_store import PolicyError, apply_policy, policy_file, policy_history
from web.console.auth import reviewer_transaction
from web.console.pages import _context
from web.console.rendering import page, pair_to_compare
from web.problems import Problem

router = APIRouter(include_in_schema=False)

MAX_POLICY_CHARS = 256 * 1024  # as POST /v1/policies
NOT_ADMIN = ("Applying a policy needs an administrator: sign in with an API key that has the admin scope "
             "(governance keys create --tenant T --scopes review,admin). You can still preview.")


def _render(request: Request, status_code: int = 200, *, older: str | None = None, newer: str | None = None,
            **extra):
    with reviewer_transaction(request) as (session, reviewer):
        current = policy_file(session, reviewer.tenant)
        versions = policy_history(session, reviewer.tenant)
        older, newer = pair_to_compare([v["version"] for v in versions], older, newer, "versions")
        diff = None
        if older is not None:
            diff = compare_versions(session, reviewer.tenant, older, newer)
            if diff is None:
                raise Problem("not-found", f"no policy versions {older[:64]!r} and {newer[:64]!r}")
        admin = is_admin(session, reviewer)
    extra.setdefault("edited", current["source"])
    return page(request, "policy.html", status_code, reviewer=reviewer, current=current, versions=versions,
                older=older, newer=newer, diff=diff, admin=admin, **extra)


def _too_long(text: str) -> list[str]:
    return [f"a policy file has at most {MAX_POLICY_CHARS} characters"] if len(text) > MAX_POLICY_CHARS else []


@router.get("/policy")
def policy_page(request: Request, older: str | None = None, newer: str | None = None, applied: str | None = None):
    return _render(request, older=older, newer=newer, applied=applied)


@router.post("/policy/preview")
def preview_policy(request: Request, toml: str = Form(""), csrf: str = Form("")):
    errors, result = [], None
    try:
        with reviewer_transaction(request, csrf, state_changing=True, rolled_back=True) as (session, reviewer):
            errors = _too_long(toml)
            if not errors:
                result = preview(session, _context(request), reviewer.tenant, toml)
    except PolicyError as exc:
        errors = exc.errors
    return _render(request, 422 if errors else 200, edited=toml, errors=errors, preview=result)


@router.post("/policy/apply")
def apply_edited_policy(request: Request, toml: str = Form(""), csrf: str = Form("")):
    errors, refused = _too_long(toml), None
    try:
        with reviewer_transaction(request, csrf, state_changing=True) as (session, reviewer):
            if not is_admin(session, reviewer):
                refused = NOT_ADMIN
            elif not errors:
                applied = apply_policy(session, toml, tenant=reviewer.tenant, who=reviewer.who)
    except PolicyError as exc:  # PolicyConflict among them: a version already applied with other content
        errors = exc.errors
    if refused or errors:
        return _render(request, 403 if refused else 422, edited=toml, errors=errors, refused=refused)
    return RedirectResponse(f"/console/policy?applied={quote(applied.version)}", 303)
