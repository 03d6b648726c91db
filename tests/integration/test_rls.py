"""Tenant isolation enforced by PostgreSQL row-level security (migration 0002), tried from the inside.

The `db` fixture connects as the (superuser) owner, which bypasses RLS; each test seeds rows
that way, then switches to the application role with `repository.enter_tenant` and tries to
read, write, update and delete across the boundary.
"""
import uuid

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from governance.embedding.backends.hashing import HashingEmbedder
from governance.moderation.pipeline import Context
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository
from governance.storage.tables import Decision, Event, OutboxMessage
from tests.integration.helpers import knn_path_served


def tenant_tables(db) -> list[str]:
    return list(db.scalars(text("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1
    """)))


@pytest.fixture
def two_tenants(db):
    a, b = f"rls-a-{uuid.uuid4().hex[:8]}", f"rls-b-{uuid.uuid4().hex[:8]}"
    for tenant in (a, b):
        db.execute(insert(Event).values(tenant=tenant, event_id="e1", asset_id="x", payload={}, status="accepted"))
        db.execute(insert(Decision).values(tenant=tenant, event_id="e1", asset_id="x", action="allow", score=1.0,
                                           labels=[], neighbors=[], reason="seed", policy_version="p"))
        repository.enqueue_outbox(db, [dict(tenant=tenant, kind="decision", message_id=f"decision:{tenant}:e1",
                                  payload={"tenant": tenant})])
    db.flush()
    return a, b


def test_every_tenant_table_forces_rls_with_the_tenant_policy(db):
    tables = tenant_tables(db)
    assert {"events", "assets", "embeddings", "exemplars", "decisions", "dead_letters", "outbox"} <= set(tables)
    rows = db.execute(text("""
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (SELECT string_agg(p.qual || ' / ' || coalesce(p.with_check, ''), ';') FROM pg_policies p
                WHERE p.schemaname = current_schema() AND p.tablename = c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = ANY(:tables)
    """), {"tables": tables}).all()
    unsecured = [r[0] for r in rows if not (r[1] and r[2] and r[3] and "governance.tenant" in r[3])]
    assert unsecured == [], f"tenant tables without forced RLS and the tenant policy: {unsecured}"


def test_the_app_role_cannot_log_in_or_bypass_rls(db):
    role = db.execute(text("SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"),
                      {"r": repository.APP_ROLE}).one()
    assert tuple(role) == (False, False, False)


def test_reads_see_only_the_scoped_tenant(db, two_tenants):
    a, b = two_tenants
    repository.enter_tenant(db, a)
    assert db.scalar(text("SELECT current_user")) == repository.APP_ROLE
    # Asking for B by name, or not filtering at all, both come back with A's rows only.
    assert db.scalar(select(func.count()).select_from(Event).where(Event.tenant == b)) == 0
    assert set(db.scalars(select(Event.tenant).where(Event.tenant.in_([a, b])))) == {a}
    assert set(db.scalars(select(Decision.tenant).where(Decision.tenant.in_([a, b])))) == {a}
    assert repository.decision_exists(db, b, "e1") is False
    assert repository.decision_exists(db, a, "e1") is True
    visible = set(db.scalars(select(OutboxMessage.tenant).where(OutboxMessage.tenant.in_([a, b]))))
    assert visible == {a}


def test_writes_into_another_tenant_are_refused(db, two_tenants):
    a, b = two_tenants
    repository.enter_tenant(db, a)
    with pytest.raises(DBAPIError, match="row-level security"):
        with db.begin_nested():
            db.execute(insert(Event).values(tenant=b, event_id="forged", payload={}, status="accepted"))
    # Moving one's own row into another tenant is refused too (WITH CHECK).
    with pytest.raises(DBAPIError, match="row-level security"):
        with db.begin_nested():
            db.execute(update(Event).where(Event.tenant == a, Event.event_id == "e1").values(tenant=b))
    # Updates and deletes aimed at B touch nothing.
    assert db.execute(update(Event).where(Event.tenant == b).values(status="dead")).rowcount == 0
    assert db.execute(text("DELETE FROM decisions WHERE tenant = :b"), {"b": b}).rowcount == 0
    # Writing one's own tenant still works.
    db.execute(insert(Event).values(tenant=a, event_id="e2", payload={}, status="accepted"))


def test_a_tenant_name_cannot_widen_the_scope(db, two_tenants):
    a, b = two_tenants
    for name in ("*", "%", "' OR 1=1 --", ""):
        with db.begin_nested():
            repository.enter_tenant(db, name)
            assert db.scalar(select(func.count()).select_from(Event).where(Event.tenant.in_([a, b]))) == 0


def test_unscoped_app_role_sees_nothing(db, two_tenants):
    db.execute(text(f"SET LOCAL ROLE {repository.APP_ROLE}"))
    assert db.scalar(select(func.count()).select_from(Event).where(Event.tenant.in_(two_tenants))) == 0


def test_maintenance_scope_sees_every_tenant(db, two_tenants):
    repository.enter_all_tenants(db)
    assert set(db.scalars(select(Event.tenant).where(Event.tenant.in_(two_tenants)))) == set(two_tenants)
    claimed = {m.tenant for m in repository.claim_outbox(db, 10_000) if m.tenant in two_tenants}
    assert claimed == set(two_tenants)


def test_the_pipeline_runs_under_the_app_role(db, knn_settings, knn):
    """What the worker does: seed as owner, then decide an event inside a tenant scope, on both kNN
    paths (the bank cache loads the bank under the tenant's scope too)."""
    from governance.moderation.exemplar_banks import import_exemplars

    tenant = f"rls-p-{uuid.uuid4().hex[:8]}"
    ctx = Context(settings=knn_settings, embedder=HashingEmbedder(768))
    import_exemplars(db, ctx, [{"asset_id": f"ex{i}", "tenant": tenant, "text": t, "label": "weather"}
                               for i, t in enumerate(["rain and wind", "snow and ice", "sunny and warm"])])
    import_exemplars(db, ctx, [{"asset_id": "other", "tenant": tenant + "-other", "text": "rain and wind",
                                "label": "secret-label"}])
    [(_, event_id)] = accept_events(db, [(1, {"asset_id": "u1", "tenant": tenant, "text": "rain and wind"})]).new
    db.flush()
    repository.enter_tenant(db, tenant)
    decision = process_upload(db, ctx, tenant, event_id)
    assert decision["label"] == "weather"
    assert sorted(n["asset_id"] for n in decision["neighbors"]) == ["ex0", "ex1", "ex2"]  # not "other"
    assert knn_path_served(tenant) == knn and knn_path_served(tenant + "-other") == "hnsw"
    # A small tenant is cheaper to sort than to walk the graph for; forbid sorting so the plan
    # shows whether the HNSW index is usable at all under the policy.
    db.execute(text("SET LOCAL enable_sort = off"))
    plan = "\n".join(db.scalars(text(
        "EXPLAIN SELECT asset_pk FROM embeddings e WHERE e.dims = 768 AND e.in_bank AND e.tenant = :t "
        "AND e.model = :m AND e.task = 'any' ORDER BY e.vector::vector(768) <=> CAST(:q AS vector(768)) LIMIT 10"
    ), {"t": tenant, "m": ctx.embedder.model_id, "q": "[" + ",".join(["0.1"] * 768) + "]"}))
    assert "ix_embeddings_bank_hnsw_768" in plan  # the policy does not cost the kNN its index
