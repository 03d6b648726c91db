"""Migrations 0012 and 0013 on the embedded PostgreSQL: embeddings and decisions become hash partitions by
tenant with their rows, ids, row-level security and HNSW kNN intact, and the downgrade undoes it;
then every partition's bank index is rebuilt with m=24 under its name, and back.

Runs on a scratch database of its own, migrated to 0011 and seeded with plain SQL (the repository
code at head expects the partitioned keys), then upgraded and downgraded in place.
"""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from governance.storage import repository
from governance.storage.migrate import alembic_config, upgrade
from governance.storage.repository._sql import vector_literal

BEFORE, AFTER = "0011_second_review", "0012_partition"
DIMS, MODEL, TASK = 768, "m-test", "RETRIEVAL_DOCUMENT"
TENANTS = ("part-a", "part-b", "part-c")
ASSETS_PER_TENANT = 60
BANK_PER_TENANT = 40


@pytest.fixture
def scratch(database_url):
    name = f"part_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = database_url.replace("/governance?", f"/{name}?")
    upgrade(url, BEFORE)
    engine = create_engine(url)
    yield url, engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(engine) -> None:
    rng = np.random.default_rng(11)
    with engine.begin() as connection:
        for tenant in TENANTS:
            for i in range(ASSETS_PER_TENANT):
                asset_pk = connection.execute(text(
                    "INSERT INTO assets (tenant, asset_id, sha256, modality, mime_type, size_bytes, metadata, status) "
                    "VALUES (:t, :a, :s, 'text', 'text/plain', 10, '{}', 'embedded') RETURNING id"),
                    {"t": tenant, "a": f"{tenant}-{i}", "s": f"{i:064d}"}).scalar_one()
                vector = rng.standard_normal(DIMS)
                connection.execute(text(
                    "INSERT INTO embeddings (tenant, asset_pk, sha256, modality, model, dims, task, in_bank, vector) "
                    "VALUES (:t, :pk, :s, 'text', :m, :d, :task, :bank, CAST(:v AS vector))"),
                    {"t": tenant, "pk": asset_pk, "s": f"{i:064d}", "m": MODEL, "d": DIMS, "task": TASK,
                     "bank": i < BANK_PER_TENANT, "v": vector_literal(vector / np.linalg.norm(vector))})
                if i < BANK_PER_TENANT:
                    connection.execute(text(
                        "INSERT INTO exemplars (tenant, asset_pk, label, polarity, source, enabled) "
                        "VALUES (:t, :pk, :label, 'positive', 'import', true)"),
                        {"t": tenant, "pk": asset_pk, "label": f"label{i % 4}"})
                connection.execute(text(
                    "INSERT INTO decisions (tenant, event_id, asset_id, asset_pk, action, score, labels, neighbors, "
                    "reason, policy_version) VALUES (:t, :e, :a, :pk, 'allow', 1.0, '[]', '[]', 'seed', 'p1')"),
                    {"t": tenant, "e": f"e{i}", "a": f"{tenant}-{i}", "pk": asset_pk})


def _rows(engine, table: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            f"SELECT id, tenant, asset_pk, {'vector::text' if table == 'embeddings' else 'event_id'} "
            f"FROM {table} ORDER BY id"))]


def _partitions(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = CAST(:t AS regclass)"),
                                  {"t": table}).scalar_one()


def _neighbours(engine, tenant: str, queries: list[np.ndarray]) -> list[list[tuple[str, float]]]:
    """The HNSW path of the kNN (what GOVERNANCE_KNN_CACHE_VECTORS=0 serves), inside the tenant's RLS scope."""
    with Session(engine) as session, session.begin():
        repository.enter_tenant(session, tenant)
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table would not use the index otherwise
        found = repository.nearest_exemplars(session, tenant, MODEL, DIMS, TASK, queries, k=5, ef_search=100,
                                             iterative_scan="relaxed_order")
    return [[(n.asset_id, round(n.distance, 5)) for n in row] for row in found]


def _plan(engine, tenant: str, query: np.ndarray) -> str:
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        return "\n".join(connection.execute(text(
            f"EXPLAIN SELECT id FROM embeddings WHERE dims = {DIMS} AND in_bank AND tenant = :t "
            f"ORDER BY vector::vector({DIMS}) <=> CAST(:q AS vector({DIMS})) LIMIT 5"),
            {"t": tenant, "q": vector_literal(query)}).scalars())


def _hnsw_index_of(engine, partition: str) -> str:
    with engine.connect() as connection:
        return connection.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename = :p AND indexdef LIKE '%hnsw%' "
            f"AND indexdef LIKE '%vector({DIMS})%'"), {"p": partition}).scalar_one()


def _visible(engine, tenant: str) -> dict[str, set[str]]:
    with Session(engine) as session, session.begin():
        repository.enter_tenant(session, tenant)
        return {table: set(session.scalars(text(f"SELECT DISTINCT tenant FROM {table}")))
                for table in ("embeddings", "decisions")}


def test_upgrade_partitions_by_tenant_keeping_rows_isolation_and_knn_and_downgrade_undoes_it(scratch):
    url, engine = scratch
    _seed(engine)
    rows = {table: _rows(engine, table) for table in ("embeddings", "decisions")}
    assert len(rows["embeddings"]) == len(rows["decisions"]) == len(TENANTS) * ASSETS_PER_TENANT
    rng = np.random.default_rng(3)
    queries = [v / np.linalg.norm(v) for v in rng.standard_normal((6, DIMS))]
    before = {tenant: _neighbours(engine, tenant, queries) for tenant in TENANTS}
    assert all(len(row) == 5 for found in before.values() for row in found)

    command.upgrade(alembic_config(url), AFTER)
    assert _partitions(engine, "embeddings") == _partitions(engine, "decisions") == 8
    assert {table: _rows(engine, table) for table in rows} == rows  # every row, with its id
    assert {tenant: _neighbours(engine, tenant, queries) for tenant in TENANTS} == before
    plan = _plan(engine, "part-a", queries[0])
    scanned = set(re.findall(r" on (embeddings_p\d+)", plan))
    assert len(scanned) == 1, plan  # pruned to the tenant's one partition
    assert _hnsw_index_of(engine, scanned.pop()) in plan, plan
    for tenant in TENANTS:
        assert _visible(engine, tenant) == {"embeddings": {tenant}, "decisions": {tenant}}
    with Session(engine) as session, session.begin():
        repository.enter_tenant(session, "part-a")
        with pytest.raises(DBAPIError, match="row-level security"):
            session.execute(text("INSERT INTO decisions (tenant, event_id, action, score, labels, neighbors, reason, "
                                 "policy_version) VALUES ('part-b', 'x', 'allow', 1, '[]', '[]', 'r', 'p')"))
    # New rows continue the old ids, and the asset delete still clears only the decision's asset.
    with engine.begin() as connection:
        fresh = connection.execute(text(
            "INSERT INTO decisions (tenant, event_id, action, score, labels, neighbors, reason, policy_version) "
            "VALUES ('part-a', 'fresh', 'allow', 1, '[]', '[]', 'r', 'p') RETURNING id")).scalar_one()
        connection.execute(text("DELETE FROM assets WHERE tenant = 'part-c' AND asset_id = 'part-c-0'"))
        orphan = connection.execute(text(
            "SELECT tenant, asset_pk FROM decisions WHERE tenant = 'part-c' AND event_id = 'e0'")).one()
        gone = connection.execute(text(
            "SELECT count(*) FROM embeddings e JOIN assets a ON a.id = e.asset_pk WHERE a.asset_id = 'part-c-0'"
        )).scalar_one()
    assert fresh > max(r[0] for r in rows["decisions"])
    assert tuple(orphan) == ("part-c", None) and gone == 0

    command.downgrade(alembic_config(url), BEFORE)
    assert _partitions(engine, "embeddings") == _partitions(engine, "decisions") == 0
    after_down = _rows(engine, "embeddings")
    assert len(after_down) == len(rows["embeddings"]) - 1  # the deleted asset's embedding went with it
    assert {r[0] for r in _rows(engine, "decisions")} == {r[0] for r in rows["decisions"]} | {fresh}
    assert {t: _neighbours(engine, t, queries) for t in ("part-a", "part-b")} == \
        {t: before[t] for t in ("part-a", "part-b")}
    for tenant in TENANTS:
        assert _visible(engine, tenant) == {"embeddings": {tenant}, "decisions": {tenant}}


def _bank_index_options(engine) -> dict[str, tuple[str, ...]]:
    """Each 768-d bank HNSW index, the parent's and every partition's attached copy, with its build options."""
    with engine.connect() as connection:
        return {name: tuple(options) for name, options in connection.execute(text(
            "SELECT c.relname, c.reloptions FROM pg_class c WHERE c.oid = CAST(:ix AS regclass) "
            "OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = CAST(:ix AS regclass))"),
            {"ix": "ix_embeddings_bank_hnsw_768"})}


def test_0013_rebuilds_every_partitions_bank_index_with_m24_under_its_name_and_the_downgrade_restores_16(scratch):
    url, engine = scratch
    _seed(engine)
    command.upgrade(alembic_config(url), AFTER)
    rng = np.random.default_rng(5)
    queries = [v / np.linalg.norm(v) for v in rng.standard_normal((6, DIMS))]
    before = {tenant: _neighbours(engine, tenant, queries) for tenant in TENANTS}
    names = {f"ix_embeddings_bank_hnsw_768_p{n}" for n in range(8)} | {"ix_embeddings_bank_hnsw_768"}
    assert _bank_index_options(engine) == {name: ("m=16", "ef_construction=64") for name in names}

    command.upgrade(alembic_config(url), "0013_bank_hnsw_m24")
    assert _bank_index_options(engine) == {name: ("m=24", "ef_construction=128") for name in names}
    assert {tenant: _neighbours(engine, tenant, queries) for tenant in TENANTS} == before
    plan = _plan(engine, "part-b", queries[0])
    scanned = set(re.findall(r" on (embeddings_p\d+)", plan))
    assert len(scanned) == 1 and _hnsw_index_of(engine, scanned.pop()) in plan, plan

    command.downgrade(alembic_config(url), AFTER)
    assert _bank_index_options(engine) == {name: ("m=16", "ef_construction=64") for name in names}
    assert {tenant: _neighbours(engine, tenant, queries) for tenant in TENANTS} == before
