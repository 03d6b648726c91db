"""The audit trail as the console shows and exports it: every override, escalation, policy apply and
exemplar change of a tenant, filterable by reviewer, label and date."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy.orm import Session

from governance.storage import repository

CSV_COLUMNS = ("id", "at", "kind", "who", "asset_id", "event_id", "before_action", "before_label", "after_action",
               "after_label", "note", "policy_version")
MAX_ROWS = 5000
# A spreadsheet runs a cell that starts with one of these as a formula: such cells are quoted with '.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditFilter:
    who: str | None = None
    label: str | None = None
    since: date | None = None  # inclusive, UTC days
    until: date | None = None  # inclusive


def _day(value: date | None, after: bool = False) -> datetime | None:
    if value is None:
        return None
    start = datetime.combine(value, time(), tzinfo=timezone.utc)
    return start + timedelta(days=1) if after else start


def audit_rows(session: Session, tenant: str, wanted: AuditFilter, limit: int = MAX_ROWS,
               viewer: str | None = None) -> list[dict]:
    """The rows as the page and the CSV show them. For a `viewer`, an item waiting for its blind
    second review has no rows unless the viewer made its first decision (review_quality.py)."""
    rows = []
    for entry in repository.audit_log_page(session, tenant, who=wanted.who or None, label=wanted.label or None,
                                           since=_day(wanted.since), until=_day(wanted.until, after=True),
                                           limit=limit, viewer=viewer):
        before, after = entry.before or {}, entry.after or {}
        rows.append({"id": entry.id, "at": entry.at.isoformat(), "kind": entry.kind, "who": entry.who,
                     "asset_id": entry.asset_id, "event_id": entry.event_id,
                     "before_action": before.get("action"), "before_label": before.get("label"),
                     "after_action": after.get("action"), "after_label": after.get("label"),
                     "note": after.get("note"), "policy_version": after.get("version") or before.get("policy_version")})
    return rows


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def audit_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()
