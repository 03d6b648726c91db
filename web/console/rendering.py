"""Templates and responses of the console: autoescaped Jinja2, and the headers every page carries.

The page policy allows scripts and styles from this origin only (no inline script, no inline
style), so even markup that slipped past escaping could not run; uploaded media is served with
`Content-Security-Policy: sandbox` on its own responses (pages.py)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from web.problems import Problem

HERE = Path(__file__).parent
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY"}

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                        trim_blocks=True, lstrip_blocks=True)


def age(seconds: float | None) -> str:
    """A short age: 45 s, 12 min, 3 h, 2 d."""
    if seconds is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def since(iso_or_dt) -> str:
    at = datetime.fromisoformat(iso_or_dt) if isinstance(iso_or_dt, str) else iso_or_dt
    return age((datetime.now(timezone.utc) - at).total_seconds())


templates.filters["age"] = age
templates.filters["since"] = since


def page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    html = templates.get_template(name).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def pair_to_compare(newest_first: list, older, newer, what: str) -> tuple:
    """The two versions a comparison page shows: the two asked for, else the two newest (or none)."""
    if (older is None) != (newer is None):
        raise Problem("invalid-request", f"choose two {what} to compare (older and newer)")
    if older is None and len(newest_first) >= 2:
        return newest_first[1], newest_first[0]
    return older, newer
