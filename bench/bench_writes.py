"""Bulk writes: 768-d vectors per second through COPY against row-by-row INSERTs, same run.

Both go into fresh scratch tables of the bench's own embedded PostgreSQL over the unix socket,
through psycopg with pgvector's adapter. The row shape is a slimmed `embeddings` row (tenant,
sha256, vector). INSERT is what repository.store_embedding does per event (one statement per
row, prepared, one transaction for the lot so that commit costs do not dominate); COPY is the
bulk path a backfill or an exemplar import could take.

    .venv/bin/python -m bench.bench_writes [--quick]
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from bench.common import Timer, embedded_servers, gaussian_mixture, load_average, psycopg_uri

DIMS = 768
TABLE_SQL = ("CREATE TABLE {name} (id bigserial PRIMARY KEY, tenant text NOT NULL, sha256 text NOT NULL, "
             "vector {kind}(768))")


def connect(url: str):
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(psycopg_uri(url))
    register_vector(conn)
    return conn


def fresh(conn, name: str, kind: str = "vector") -> None:
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(TABLE_SQL.format(name=name, kind=kind))
    conn.commit()


def rows(vectors: np.ndarray) -> list[tuple]:
    return [(f"t{i % 10}", hashlib.sha256(str(i).encode()).hexdigest(), v) for i, v in enumerate(vectors)]


def insert_rows(conn, data: list[tuple]) -> float:
    fresh(conn, "w_insert")
    with Timer() as t, conn.cursor() as cur:
        for row in data:
            cur.execute("INSERT INTO w_insert (tenant, sha256, vector) VALUES (%s, %s, %s)", row, prepare=True)
        conn.commit()
    return t.seconds


def insert_commit_each(conn, data: list[tuple]) -> float:
    """One row per transaction, as the worker stores one embedding per task: each commit waits
    for its WAL flush."""
    fresh(conn, "w_commit")
    with Timer() as t, conn.cursor() as cur:
        for row in data:
            cur.execute("INSERT INTO w_commit (tenant, sha256, vector) VALUES (%s, %s, %s)", row, prepare=True)
            conn.commit()
    return t.seconds


def executemany_rows(conn, data: list[tuple]) -> float:
    """psycopg's executemany pipelines the statements: no round trip per row, still one row each."""
    fresh(conn, "w_many")
    with Timer() as t, conn.cursor() as cur:
        cur.executemany("INSERT INTO w_many (tenant, sha256, vector) VALUES (%s, %s, %s)", data)
        conn.commit()
    return t.seconds


def copy_rows(conn, data: list[tuple], binary: bool, kind: str = "vector") -> float:
    name = f"w_copy_{kind}_{'bin' if binary else 'text'}"
    fresh(conn, name, kind)
    fmt = "(FORMAT BINARY)" if binary else ""
    if kind == "halfvec":
        from pgvector import HalfVector

        data = [(tenant, sha, HalfVector(v)) for tenant, sha, v in data]  # outside the timer
    with Timer() as t, conn.cursor() as cur:
        with cur.copy(f"COPY {name} (tenant, sha256, vector) FROM STDIN {fmt}") as copy:
            if binary:
                copy.set_types(["text", "text", kind])  # binary COPY needs the column types
            for row in data:
                copy.write_row(row)
        conn.commit()
    return t.seconds


def run(quick: bool = False) -> dict:
    n_copy = 20_000 if quick else 100_000
    n_insert = 2_000 if quick else 10_000  # row-by-row is slow; its rate is steady after a few hundred
    n_text = 2_000  # text COPY and commit-per-row are slow, and steady after a few hundred rows
    vectors = gaussian_mixture(n_copy, DIMS, 100, seed=3)
    data = rows(vectors)
    result: dict = {"dims": DIMS, "load_average_start": load_average()}
    with embedded_servers("writes", migrate=False) as servers, connect(servers["database_url"]) as conn:
        # Back to back in one connection, so both see the same (noisy) machine within seconds.
        ins = insert_rows(conn, data[:n_insert])
        each = insert_commit_each(conn, data[:n_text])
        many = executemany_rows(conn, data[:n_insert])
        cbin = copy_rows(conn, data, binary=True)
        ctxt = copy_rows(conn, data[:n_text], binary=False)  # text: every float printed and parsed
        # float32 768-d rows (3 KB) exceed the ~2 KB TOAST threshold and go out of line; halfvec does not.
        chalf = copy_rows(conn, data, binary=True, kind="halfvec")
        size = conn.execute("SELECT pg_total_relation_size('w_copy_vector_bin')").fetchone()[0]
        half_size = conn.execute("SELECT pg_total_relation_size('w_copy_halfvec_bin')").fetchone()[0]
    result.update({
        "insert": {"rows": n_insert, "seconds": round(ins, 2), "rows_per_s": round(n_insert / ins)},
        "insert_commit_each": {"rows": n_text, "seconds": round(each, 2), "rows_per_s": round(n_text / each)},
        "executemany": {"rows": n_insert, "seconds": round(many, 2), "rows_per_s": round(n_insert / many)},
        "copy_binary": {"rows": n_copy, "seconds": round(cbin, 2), "rows_per_s": round(n_copy / cbin)},
        "copy_text": {"rows": n_text, "seconds": round(ctxt, 2), "rows_per_s": round(n_text / ctxt)},
        "copy_halfvec": {"rows": n_copy, "seconds": round(chalf, 2), "rows_per_s": round(n_copy / chalf)},
        "table_mb": round(size / 2**20), "halfvec_table_mb": round(half_size / 2**20),
        "load_average_end": load_average(),
    })
    result["copy_over_insert"] = round(result["copy_binary"]["rows_per_s"] / result["insert"]["rows_per_s"], 1)
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
