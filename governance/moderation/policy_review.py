"""What the console's policy page shows: a line diff between two applied versions, and a preview of
an edited policy (the backtest, what would flip) that applies nothing.

Applying is `policy_store.apply_policy`, the same function `governance policy apply` calls.
"""
from __future__ import annotations

import difflib

from sqlalchemy.orm import Session

from governance.moderation.backtest import backtest, backtest_report
from governance.moderation.pipeline import Context
from governance.moderation.policy_store import parse_policy, stored_policy

PREVIEW_EXAMPLES = 5


def line_diff(older: str, newer: str, older_name: str, newer_name: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) pairs; kind is file, hunk, add, del or same."""
    lines = []
    for line in difflib.unified_diff(older.splitlines(), newer.splitlines(), older_name, newer_name, lineterm=""):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "add", "-": "del"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines


def compare_versions(session: Session, tenant: str, older: str, newer: str) -> list[tuple[str, str]] | None:
    """The diff of two of the tenant's applied versions' TOML source; None when either is not the tenant's."""
    a, b = stored_policy(session, tenant, older), stored_policy(session, tenant, newer)
    if a is None or b is None:
        return None
    return line_diff(a[1], b[1], f"version {a[0]}", f"version {b[0]}")


def preview(session: Session, ctx: Context, tenant: str, text: str, days: float | None = None) -> dict:
    """What the edited policy would change on the tenant's decided uploads (backtest_report).
    Raises PolicyError for a file that is not a valid policy. Run it in a rolled-back transaction."""
    candidate = parse_policy(text).policy
    return backtest_report(backtest(session, ctx, tenant, candidate, days=days, examples=PREVIEW_EXAMPLES))
