"""API keys under row-level security, as a login role that cannot bypass it (see test_cli_rls.py):
the key's tenant is found by its hash in the cross-tenant scope, and nothing else is visible there
to a tenant-scoped transaction."""
import json
import uuid

from sqlalchemy import text

from governance.access.api_keys import create_key, hash_key, parse_scopes, verify_key, InvalidKeyRequest
from governance.storage import repository
from governance.storage.db import session_factory, transaction
from tests.integration.test_cli_rls import delete_tenants, probe_url, run_cli  # noqa: F401 - fixture
from worker import cli

import pytest


def test_keys_are_created_found_by_hash_and_revoked_as_the_non_bypass_role(probe_url, database_url, capsys):
    a, b = f"key-a-{uuid.uuid4().hex[:8]}", f"key-b-{uuid.uuid4().hex[:8]}"
    try:
        made = {t: run_cli(capsys, "keys", "create", "--tenant", t, "--scopes", "read,ingest", "--json")[0]
                for t in (a, b)}
        assert made[a]["scopes"] == ["ingest", "read"] and made[a]["key"].startswith("gov_")
        sessions = session_factory(probe_url)
        with transaction(sessions) as session:
            repository.enter_all_tenants(session)
            assert session.scalar(text("SELECT current_user")) == repository.APP_ROLE
            who = verify_key(session, made[b]["key"])
            stored = session.scalar(text("SELECT key_hash FROM api_keys WHERE id = :id"), {"id": made[b]["id"]})
            assert verify_key(session, made[b]["key"] + "x") is None
            assert verify_key(session, "not-even-prefixed") is None
        assert (who.key_id, who.tenant, who.scopes) == (made[b]["id"], b, frozenset({"ingest", "read"}))
        assert stored == hash_key(made[b]["key"]) and made[b]["key"] not in stored
        with transaction(sessions) as session:
            repository.enter_tenant(session, a)
            assert [k.id for k in repository.api_keys(session, None)] == [made[a]["id"]]
        assert [k["id"] for k in json.loads(_out(capsys, "keys", "list", "--tenant", b, "--json"))] == [made[b]["id"]]
        assert made[a]["id"] in _out(capsys, "keys", "list")
        assert cli.main(["keys", "revoke", made[b]["id"]]) == 0
        with transaction(sessions) as session:
            repository.enter_all_tenants(session)
            assert verify_key(session, made[b]["key"]) is None
            assert verify_key(session, made[a]["key"]).tenant == a
        assert "revoked 20" in _out(capsys, "keys", "list", "--tenant", b)
    finally:
        delete_tenants(database_url, a, b)


def _out(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def test_scopes_are_validated_and_named_in_a_fixed_order(db):
    assert parse_scopes("review, ingest,review") == ["ingest", "review"]
    for bad in ("", "ingest,root", []):
        with pytest.raises(InvalidKeyRequest):
            parse_scopes(bad)
    repository.enter_tenant(db, "t-scopes")
    with pytest.raises(InvalidKeyRequest, match="longer"):
        create_key(db, "t-scopes", "read", name="x" * 300)
    row, raw = create_key(db, "t-scopes", ["admin"], name="ops")
    assert row.scopes == ["admin"] and row.name == "ops" and len(raw) > 40
