"""The console's audit trail on a real PostgreSQL: filters by reviewer, label and date; CSV that a
spreadsheet cannot run."""
import csv
import io
from datetime import datetime, timedelta, timezone

from sqlalchemy import update

from governance.moderation.audit_trail import AuditFilter, audit_csv, audit_rows
from governance.storage import repository
from governance.storage.tables import AuditEntry


def test_filters_and_csv(db, tenant):
    repository.insert_audit(db, tenant=tenant, kind="override", asset_id="a1", event_id="e1", who="alice",
                            before={"action": "review", "label": "spam"}, after={"action": "block", "label": "spam"})
    repository.insert_audit(db, tenant=tenant, kind="escalation", asset_id="a2", event_id="e2", who="bob",
                            before={"label": "nsfw"}, after={"queue": "escalated", "note": "=HYPERLINK(\"x\")"})
    old = repository.insert_audit(db, tenant=tenant, kind="override", asset_id="a3", event_id="e3", who="alice",
                                  before={"action": "review", "label": "nsfw"}, after={"action": "allow", "label": None})
    db.execute(update(AuditEntry).where(AuditEntry.id == old.id).values(at=AuditEntry.at - timedelta(days=10)))
    repository.insert_audit(db, tenant=tenant + "-x", kind="override", who="alice", after={"label": "spam"})
    today = datetime.now(timezone.utc).date()

    assert [r["event_id"] for r in audit_rows(db, tenant, AuditFilter())] == ["e2", "e1", "e3"]
    assert [r["event_id"] for r in audit_rows(db, tenant, AuditFilter(who="alice"))] == ["e1", "e3"]
    assert [r["event_id"] for r in audit_rows(db, tenant, AuditFilter(label="nsfw"))] == ["e2", "e3"]
    assert [r["event_id"] for r in audit_rows(db, tenant, AuditFilter(since=today - timedelta(days=1)))] == [
        "e2", "e1"]
    assert [r["event_id"] for r in audit_rows(db, tenant, AuditFilter(until=today - timedelta(days=5)))] == ["e3"]

    parsed = list(csv.DictReader(io.StringIO(audit_csv(audit_rows(db, tenant, AuditFilter())))))
    assert [p["event_id"] for p in parsed] == ["e2", "e1", "e3"]
    assert parsed[1]["after_action"] == "block" and parsed[1]["after_label"] == "spam" and parsed[1]["who"] == "alice"
    assert parsed[0]["note"] == "'=HYPERLINK(\"x\")"  # quoted: not a formula
