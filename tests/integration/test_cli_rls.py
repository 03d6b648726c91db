"""The CLI works under row-level security, as the worker's tasks do (migration 0002).

The test database's owner is a superuser, and superusers bypass RLS: a command that forgot its
scope would still pass there. So these commands run in-process as a login role that is neither
superuser nor owner and holds no privilege of its own, only membership in `governance_app`:
a transaction that does not enter its scope fails, and one that does sees its tenant only.
(tests/e2e/test_tls_passwords.py runs the CLI as a non-superuser owner, under FORCE.)
"""
import json
import uuid

import pytest
from sqlalchemy import insert, select, text

from governance import repository
from governance.db import engine_for
from governance.models import Decision, Event
from worker import cli

PROBE_ROLE = "governance_cli_probe"


@pytest.fixture
def probe_url(database_url, monkeypatch, settings) -> str:
    with engine_for(database_url).begin() as connection:
        connection.execute(text(f"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PROBE_ROLE}') THEN
                    CREATE ROLE {PROBE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
                END IF;
            END $$"""))
        # Without INHERIT the role's only way to the tables is `SET ROLE governance_app`.
        connection.execute(text(f"GRANT {repository.APP_ROLE} TO {PROBE_ROLE} WITH INHERIT FALSE"))
    url = database_url.replace("://postgres@", f"://{PROBE_ROLE}@", 1)
    assert url != database_url
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def two_tenants(database_url):
    """Committed rows of two tenants (the CLI opens its own connections), removed afterwards."""
    a, b = f"cli-a-{uuid.uuid4().hex[:8]}", f"cli-b-{uuid.uuid4().hex[:8]}"
    with engine_for(database_url).begin() as connection:
        for tenant in (a, b):
            connection.execute(insert(Event).values(tenant=tenant, event_id="e1", asset_id="x", payload={},
                                                    status="decided"))
            connection.execute(insert(Decision).values(tenant=tenant, event_id="e1", asset_id="x", action="allow",
                                                       score=1.0, labels=[], neighbors=[], reason=f"seed {tenant}",
                                                       policy_version="p"))
    yield a, b
    with engine_for(database_url).begin() as connection:
        tables = connection.execute(text("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped
            WHERE n.nspname = current_schema() AND c.relkind = 'r'
            ORDER BY c.relname = 'assets', c.relname""")).scalars().all()
        for table in tables:  # assets last: the others refer to it
            connection.execute(text(f'DELETE FROM "{table}" WHERE tenant IN (:a, :b)'), {"a": a, "b": b})


def run_cli(capsys, *argv: str) -> list[dict]:
    assert cli.main(list(argv)) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_without_a_scope_the_probe_role_reads_nothing(probe_url, two_tenants):
    """The premise: the probe role can only work through `governance_app`'s scope."""
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError, match="permission denied"):
        with engine_for(probe_url).connect() as connection:
            connection.execute(select(Decision.tenant)).all()


def test_decisions_export_for_one_tenant_runs_as_the_app_role_and_sees_only_that_tenant(
        probe_url, two_tenants, capsys):
    a, b = two_tenants
    assert [(d["tenant"], d["reason"]) for d in run_cli(capsys, "decisions", "export", "--tenant", a)] \
        == [(a, f"seed {a}")]
    assert [d["tenant"] for d in run_cli(capsys, "decisions", "export", "--tenant", b)] == [b]


def test_a_tenant_scoped_cli_transaction_cannot_see_another_tenant_even_by_plain_sql(probe_url, two_tenants):
    a, b = two_tenants
    settings = cli.prepare_environment()
    with cli.transaction(cli._sessions(settings)) as session:
        cli._enter(session, a)
        assert session.scalar(text("SELECT current_user")) == repository.APP_ROLE
        assert session.scalar(text("SELECT count(*) FROM decisions WHERE tenant = :b"), {"b": b}) == 0
        assert set(session.scalars(text("SELECT tenant FROM events WHERE tenant IN (:a, :b)"),
                                   {"a": a, "b": b})) == {a}


def test_cross_tenant_commands_import_for_every_tenant_and_tenant_commands_stay_apart(
        probe_url, two_tenants, capsys, tmp_path):
    a, b = two_tenants
    exemplars = tmp_path / "exemplars.jsonl"
    exemplars.write_text("".join(json.dumps({"asset_id": f"ex-{t}", "tenant": t, "text": f"words of {t}",
                                             "label": "weather"}) + "\n" for t in (a, b)))
    assert cli.main(["exemplars", "import", str(exemplars)]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert [e["asset_id"] for e in run_cli(capsys, "exemplars", "export", "--tenant", a)] == [f"ex-{a}"]
    assert [e["asset_id"] for e in run_cli(capsys, "exemplars", "export", "--tenant", b)] == [f"ex-{b}"]
    assert run_cli(capsys, "clusters", "history", "--tenant", a) == []
    assert run_cli(capsys, "review", "list", "--tenant", a) == []
    assert cli.main(["policy", "list", "--tenant", a]) == 0 and capsys.readouterr().out == ""
    assert cli.main(["clusters", "report", "--tenant", a, "--out", str(tmp_path / "report")]) == 0
    assert json.loads((tmp_path / "report" / "report.json").read_text())["clusters"] == []
    capsys.readouterr()
    assert cli.main(["health"]) == 0  # database, broker (the embedded Redis of the data folder) and embedder
    assert "database  ok" in capsys.readouterr().out
