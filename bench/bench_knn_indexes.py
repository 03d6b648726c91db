"""kNN index choice: pgvector HNSW at several settings against pgvectorscale's StreamingDiskANN.

The same clustered 768-d vectors and held-out queries as bench_knn go into one scratch table per
index type (HNSW on halfvec, DiskANN on vector: pgvectorscale 0.9 has no halfvec operator class),
each index is built on a fresh connection, and for each the build time, the index size, the
building backend's peak RSS (VmHWM) and recall@10 / p50 / p99 across its query-time knob come out.
Exact numpy search over the float32 vectors is the recall truth.

    .venv/bin/python -m bench.bench_knn_indexes [--quick] [--sizes 100000 1000000]
        [--hnsw 16/64 24/128] [--no-diskann]

`--hnsw` with no settings measures DiskANN alone.

Each index's entry goes to stderr as soon as it is measured: a 1M run takes hours, and one stopped
part-way still leaves what it measured.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.bench_knn import CLUSTERS, DIMS, EF_CONSTRUCTION, K, M, exact, held_out_queries
from bench.common import Timer, embedded_servers, gaussian_mixture, load_average, percentiles, psycopg_uri, restart_postgres

QUICK_SIZES, FULL_SIZES = (5_000,), (100_000,)  # 1M: --sizes 1000000 (see the README)
QUERIES = 300
SHARED_BUFFERS = "4GB"
HNSW_BUILDS = ((16, 64), (24, 128), (32, 200))  # (m, ef_construction)
HNSW_EF_SEARCH = (100, 200, 500, 1000)
DISKANN_BUILD = {"num_neighbors": 50, "search_list_size": 100}  # pgvectorscale's defaults
DISKANN_QUERY = ((100, 50), (200, 200), (400, 400))  # (query_search_list_size, query_rescore)


def connect(url: str):
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(psycopg_uri(url), autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS vectorscale CASCADE")
    register_vector(conn)
    return conn


def load(conn, table: str, kind: str, vectors: np.ndarray) -> None:
    from pgvector import HalfVector, Vector

    wrap = HalfVector if kind == "halfvec" else Vector
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int4, embedding {kind}({DIMS}))")
    with conn.cursor() as cur, cur.copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", kind])
        for i, v in enumerate(vectors):
            copy.write_row((i, wrap(v)))
    conn.execute(f"VACUUM ANALYZE {table}")


def backend_peak_rss_mb(conn) -> float:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def build(url: str, table: str, using: str, n: int) -> dict:
    """One index on a fresh backend, so its VmHWM is this build's (the parallel helper's is not in it)."""
    with connect(url) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {table}_idx")
        conn.execute(f"SET maintenance_work_mem = '{max(1024, n * 6 * DIMS // 2**20)}MB'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        with Timer() as t:
            conn.execute(f"CREATE INDEX {table}_idx ON {table} USING {using}")
        size = conn.execute(f"SELECT pg_relation_size('{table}_idx')").fetchone()[0]
        return {"build_s": round(t.seconds, 1), "index_mb": round(size / 2**20), "build_rss_mb": round(backend_peak_rss_mb(conn))}


def search(conn, table: str, kind: str, queries: np.ndarray, truth: list[set[int]], settings: dict) -> dict:
    from pgvector import HalfVector, Vector

    wrap = HalfVector if kind == "halfvec" else Vector
    for name, value in settings.items():
        conn.execute(f"SET {name} = {value}")
    sql = f"SELECT id FROM {table} ORDER BY embedding <=> %s LIMIT {K}"
    for q in queries[:20]:  # warm-up: pages into shared_buffers, statement prepared
        conn.execute(sql, (wrap(q),), prepare=True)
    times, recalls = [], []
    for q, want in zip(queries, truth):
        started = time.perf_counter()
        got = {r[0] for r in conn.execute(sql, (wrap(q),), prepare=True).fetchall()}
        times.append(time.perf_counter() - started)
        recalls.append(len(want & got) / K)
    p50, p99 = percentiles(times, 50, 99)
    return {**{k.split(".")[-1]: v for k, v in settings.items()}, "recall_at_10": round(float(np.mean(recalls)), 4),
            "p50_ms": round(p50 * 1e3, 2), "p99_ms": round(p99 * 1e3, 2)}


def report(entry: dict) -> dict:
    print(json.dumps(entry), file=sys.stderr, flush=True)
    return entry


def measure(url: str, n: int, hnsw_builds=HNSW_BUILDS, diskann: bool = True) -> dict:
    vectors = gaussian_mixture(n, DIMS, CLUSTERS, seed=7)
    queries = held_out_queries(QUERIES)
    truth = exact(vectors, queries)
    out: dict = {"n": n, "indexes": []}
    with connect(url) as conn:
        if hnsw_builds:
            load(conn, f"hn_{n}", "halfvec", vectors)
        if diskann:
            load(conn, f"dk_{n}", "vector", vectors)
    for m, efc in hnsw_builds:
        entry = {"n": n, "index": f"hnsw m{m}/efc{efc}", "type": "halfvec",
                 **build(url, f"hn_{n}", f"hnsw (embedding halfvec_cosine_ops) WITH (m = {m}, ef_construction = {efc})", n)}
        with connect(url) as conn:
            entry["queries"] = [search(conn, f"hn_{n}", "halfvec", queries, truth, {"hnsw.ef_search": ef})
                                for ef in HNSW_EF_SEARCH]
        out["indexes"].append(report(entry))
    if diskann:
        options = ", ".join(f"{k} = {v}" for k, v in DISKANN_BUILD.items())
        entry = {"n": n, "index": f"diskann nn{DISKANN_BUILD['num_neighbors']}/sl{DISKANN_BUILD['search_list_size']}",
                 "type": "vector (SBQ-compressed in the index)",
                 **build(url, f"dk_{n}", f"diskann (embedding vector_cosine_ops) WITH ({options})", n)}
        with connect(url) as conn:
            entry["queries"] = [search(conn, f"dk_{n}", "vector", queries, truth,
                                       {"diskann.query_search_list_size": sl, "diskann.query_rescore": rs})
                                for sl, rs in DISKANN_QUERY]
        out["indexes"].append(report(entry))
    with connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS hn_{n}")
        conn.execute(f"DROP TABLE IF EXISTS dk_{n}")
    return out


def best_within(result: dict, p99_ms: float) -> dict | None:
    """The highest-recall (index, knob) whose p99 stays within the budget: the table's pick."""
    pairs = [(q, ix["index"]) for ix in result["indexes"] for q in ix["queries"] if q["p99_ms"] <= p99_ms]
    if not pairs:
        return None
    q, name = max(pairs, key=lambda pair: (pair[0]["recall_at_10"], -pair[0]["p99_ms"]))
    return {"index": name, **q}


def run(quick: bool = False, sizes: tuple[int, ...] | None = None, hnsw_builds=HNSW_BUILDS,
        diskann: bool = True) -> dict:
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    result: dict = {"dims": DIMS, "queries": QUERIES, "shared_buffers": SHARED_BUFFERS,
                    "current_index": f"hnsw m{M}/efc{EF_CONSTRUCTION}",  # what the migrations build
                    "load_average_start": load_average(), "sizes": []}
    with embedded_servers("knnidx", migrate=False) as servers:
        with connect(servers["database_url"]) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
        restart_postgres(servers["data_dir"])
        for n in sizes:
            measured = measure(servers["database_url"], n, hnsw_builds, diskann)
            measured["pick_p99_20ms"] = best_within(measured, 20.0)
            result["sizes"].append(measured)
    result["load_average_end"] = load_average()
    result["targets"] = {"recall_at_10": 0.98, "p99_ms": 20, "applies_at_n": 1_000_000}
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--hnsw", nargs="*", metavar="M/EFC",
                        help="HNSW builds, m/ef_construction (none given: DiskANN alone)")
    parser.add_argument("--no-diskann", action="store_true")
    args = parser.parse_args()
    builds = HNSW_BUILDS if args.hnsw is None else tuple(tuple(int(x) for x in b.split("/")) for b in args.hnsw)
    print(json.dumps(run(args.quick, tuple(args.sizes) if args.sizes else None, builds, not args.no_diskann), indent=2))
