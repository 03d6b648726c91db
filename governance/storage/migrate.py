"""Run Alembic programmatically: `db upgrade` (and the test fixtures) and `db check`."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """What autogenerate compares (migrations/env.py and `check`).

    The HNSW bank indexes are partial expression indexes over a cast (`vector::vector(768)`) that
    autogenerate cannot compare: declared in the tables it would report them changed on every run,
    and left out unexcluded it would drop them. So they are excluded here, and `check` verifies by
    name that each one exists.

    The partitions of the hash-partitioned tables (migration 0012) are left out too: the
    definitions describe the partitioned parent, which carries the columns, keys and indexes.
    """
    from governance.storage.tables import INDEXED_DIMS, PARTITION_NAME, bank_index_name

    if type_ == "table" and reflected and PARTITION_NAME.match(name or ""):
        return False
    return not (type_ == "index" and reflected and name in {bank_index_name(d) for d in INDEXED_DIMS})


def check(database_url: str) -> list[str]:
    """How the migrated database differs from the table definitions; empty when they agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from governance.storage.schema import metadata
    from governance.storage.tables import INDEXED_DIMS, bank_index_name

    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            migration = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                     "include_object": include_object})
            current = set(migration.get_current_heads())
            problems = [] if current == heads else [
                f"revision: the database is at {sorted(current) or 'no revision'}, the migrations at {sorted(heads)}"]
            problems += [f"differs: {diff!r}" for diff in compare_metadata(migration, metadata)]
            present = set(connection.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'"))
                          .scalars())
            problems += [f"missing index: {name}" for name in sorted({bank_index_name(d) for d in INDEXED_DIMS} - present)]
    finally:
        engine.dispose()
    return problems
