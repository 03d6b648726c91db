"""Binary COPY into per-connection staging tables: the batch write path's bulk inserts.

COPY has no ON CONFLICT, and the pipeline must stay idempotent (a redelivered batch writes
nothing twice), so a batch is copied into a temporary staging table and moved on from there with
one INSERT … SELECT … ON CONFLICT. The staging tables live as long as the database connection
(`ON COMMIT DELETE ROWS`: empty again at every commit, gone with a rollback's rows too).
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy.orm import Session

# Temporary tables, created on first use in a connection. No constraints: the target table's own
# constraints check the rows when they move on.
STAGING_TABLES = {
    "staged_embeddings": "asset_pk bigint, sha256 text, modality text, task text, in_bank boolean, "
                         "vector vector, vector_half halfvec",
}


def _driver_connection(session: Session):
    return session.connection().connection.driver_connection


def _vector_types(session: Session) -> dict:
    """pgvector's TypeInfos, fetched once per database connection (their oids differ per database)."""
    from psycopg.types import TypeInfo

    info = session.connection().info
    if "pgvector_types" not in info:
        conn = _driver_connection(session)
        info["pgvector_types"] = {name: TypeInfo.fetch(conn, name) for name in ("vector", "halfvec")}
    return info["pgvector_types"]


def copy_into_staging(session: Session, table: str, columns: list[str], types: list[str],
                      rows: Iterable[tuple]) -> None:
    """COPY `rows` in binary into the staging table `table` (one of STAGING_TABLES).

    pgvector's binary dumpers are registered on this cursor only, so nothing else that shares the
    connection (SQLAlchemy's own vector types) sees different adapters."""
    from pgvector.psycopg.halfvec import register_halfvec_info
    from pgvector.psycopg.vector import register_vector_info

    vector_types = _vector_types(session)
    conn = _driver_connection(session)
    with conn.cursor() as cursor:
        # One round trip; IF NOT EXISTS makes it a catalog look-up once the table is there.
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({STAGING_TABLES[table]}) ON COMMIT DELETE ROWS")
        register_vector_info(cursor, vector_types["vector"])
        register_halfvec_info(cursor, vector_types["halfvec"])
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
