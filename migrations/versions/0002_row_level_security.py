"""row-level security: PostgreSQL itself keeps tenants apart

Revision ID: 0002
Revises: 0001, 0003

Every table with a `tenant` column gets ROW LEVEL SECURITY, FORCEd (so the table owner is
subject to it too), and one policy:

    tenant = current_setting('governance.tenant', true)
    OR current_setting('governance.all_tenants', true) = 'on'

The application works as the role `governance_app` (NOLOGIN, no BYPASSRLS): each transaction
runs `SET LOCAL ROLE governance_app` and sets `governance.tenant` locally (see
`repository.enter_tenant`). Jobs that are cross-tenant by design (the outbox relay, the
reconciler, the cluster-report fan-out, the metrics gauges) set `governance.all_tenants = 'on'`
instead (`repository.enter_all_tenants`). Nothing set means no rows, so a forgotten scope fails
closed. A flag separate from the tenant name means no tenant can be named so as to see others.

Trade-off: the flag is an ordinary setting, so this protects against application bugs (a query
missing its tenant filter, a wrong id), not against someone who can run arbitrary SQL on the
application's connection. Superusers bypass RLS altogether; migrations need no exemption
because DDL is not subject to policies.

Later migrations that add tenant tables call `SELECT governance_enable_tenant_rls()` at their
end; tests/integration/test_rls.py fails for any tenant table left without the policy.
"""
from alembic import op

revision = "0002"
# 0003 (moderation tables) also revises 0001; joining both branches here keeps one head and runs
# this after every tenant table exists. If 0003 is re-pointed to revise 0002, make this "0001"
# and end 0003 with `SELECT governance_enable_tenant_rls()`.
down_revision = ("0001", "0003")
branch_labels = None
depends_on = None

APP_ROLE = "governance_app"
POLICY = "tenant_isolation"
CONDITION = ("tenant = current_setting('governance.tenant', true)"
             " OR current_setting('governance.all_tenants', true) = 'on'")

ENABLE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION governance_enable_tenant_rls() RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    t record;
    secured integer := 0;
BEGIN
    FOR t IN
        SELECT c.relname,
               EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped) AS has_tenant
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %I TO {APP_ROLE}', t.relname);
        IF t.has_tenant THEN
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
            IF NOT EXISTS (SELECT 1 FROM pg_policies
                           WHERE schemaname = current_schema() AND tablename = t.relname
                             AND policyname = '{POLICY}') THEN
                EXECUTE format('CREATE POLICY {POLICY} ON %I USING (%s) WITH CHECK (%s)',
                               t.relname, $c${CONDITION}$c$, $c${CONDITION}$c$);
            END IF;
            secured := secured + 1;
        END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {APP_ROLE}', current_schema());
    RETURN secured;
END
$fn$
"""


def upgrade() -> None:
    # Roles belong to the cluster, not the database: another database may have made it already.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        END $$
    """)
    # The login role switches to it per transaction (a superuser may anyway; anyone else needs this).
    op.execute(f"""
        DO $$ BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
            END IF;
        END $$
    """)
    op.execute(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema()); END $$")
    # Tables and sequences that later migrations create are usable by the role without a grant each
    # (they still need `SELECT governance_enable_tenant_rls()` for their policy).
    op.execute(f"ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}")
    op.execute(ENABLE_FUNCTION)
    op.execute("SELECT governance_enable_tenant_rls()")


def downgrade() -> None:
    op.execute(f"""
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT tablename FROM pg_policies
                     WHERE schemaname = current_schema() AND policyname = '{POLICY}' LOOP
                EXECUTE format('DROP POLICY {POLICY} ON %I', t.tablename);
                EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t.tablename);
                EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t.tablename);
            END LOOP;
        END $$
    """)
    op.execute("DROP FUNCTION IF EXISTS governance_enable_tenant_rls()")
    op.execute(f"ALTER DEFAULT PRIVILEGES REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}")
    op.execute(f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM {APP_ROLE}', current_schema()); END $$")
    op.execute(f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {APP_ROLE}', current_schema()); END $$")
    op.execute(f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON SCHEMA %I FROM {APP_ROLE}', current_schema()); END $$")
    # The role may still hold privileges in another database of the cluster; keep it then.
    op.execute(f"""
        DO $$ BEGIN
            DROP ROLE IF EXISTS {APP_ROLE};
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE '{APP_ROLE} is still used elsewhere in this cluster; not dropped';
        END $$
    """)
