"""kNN: a halfvec HNSW index in PostgreSQL (pgvector 0.8) against exact numpy search.

Clustered synthetic 768-d vectors are COPYed into a scratch table of the bench's own embedded
PostgreSQL, indexed with HNSW (cosine), and queried from Python over the unix socket. Exact
search (numpy brute force over the same float32 vectors) gives both the recall truth and the
latency baseline. Tenant-filtered queries use iterative index scans, as repository.py does.

    .venv/bin/python -m bench.bench_knn [--quick]
"""
from __future__ import annotations

import json
import time

import numpy as np

from governance.platform.config import Settings

from bench.common import (Timer, embedded_servers, gaussian_mixture, load_average, loglog_exponent, percentiles,
                          psycopg_uri, restart_postgres)

DIMS, K, TENANTS, CLUSTERS = 768, 10, 10, 1_000
M, EF_CONSTRUCTION = 24, 128  # what migration 0013 builds the bank indexes with
EF_SEARCH = Settings.from_env().knn_ef_search  # what the worker sets per kNN transaction (GOVERNANCE_KNN_EF_SEARCH)
EF_SWEEP = (40, 100, 200)
QUERIES, BASELINE_QUERIES = 500, 50  # brute force is slow at 300k+: its latency comes from fewer queries
QUICK_SIZES, FULL_SIZES = (5_000, 10_000, 20_000), (10_000, 100_000)  # full adds 1M or 300k
BUILD_BUDGET_S = 15 * 60  # the 1M build must fit this, or the full run stops at 300k
DEADLINE = float("inf")  # time.monotonic() by which the section should end; the suite runner sets it
SHARED_BUFFERS = "3GB"  # holds a 1M halfvec index (~2 GB); the 128 MB default would make every query a read


def connect(url: str):
    import psycopg
    from pgvector.psycopg import register_vector

    conn = psycopg.connect(psycopg_uri(url), autocommit=True)
    register_vector(conn)
    return conn


def load(conn, table: str, vectors: np.ndarray, tenants: np.ndarray) -> float:
    from pgvector import HalfVector

    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int4, tenant int2, embedding halfvec({DIMS}))")
    with Timer() as t, conn.cursor() as cur:
        # COPY before CREATE INDEX: one bulk graph build instead of N incremental inserts.
        with cur.copy(f"COPY {table} (id, tenant, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int2", "halfvec"])
            for i in range(len(vectors)):
                copy.write_row((i, int(tenants[i]), HalfVector(vectors[i])))
    return t.seconds


def build(conn, table: str, n: int, m: int = M, ef_construction: int = EF_CONSTRUCTION) -> float:
    # The whole graph must fit in maintenance_work_mem or pgvector falls back to a much slower
    # on-disk build; one parallel worker plus the leader uses both cores.
    graph_mb = n * (2 * DIMS + 2 * m * 8 + 64) / 2**20
    conn.execute(f"SET maintenance_work_mem = '{max(1024, int(graph_mb * 2))}MB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    with Timer() as t:
        conn.execute(f"CREATE INDEX ON {table} USING hnsw (embedding halfvec_cosine_ops) "
                     f"WITH (m = {m}, ef_construction = {ef_construction})")
    conn.execute(f"ANALYZE {table}")
    return t.seconds


def exact(vectors: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None) -> list[set[int]]:
    ids = np.arange(len(vectors)) if mask is None else np.flatnonzero(mask)
    pool = vectors[ids]
    out = []
    for start in range(0, len(queries), 100):
        sims = queries[start:start + 100] @ pool.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        out += [set(ids[row].tolist()) for row in top]
    return out


def brute_force_latency(vectors: np.ndarray, queries: np.ndarray) -> list[float]:
    """One query at a time, as a service answering requests would: the baseline latency."""
    times = []
    for q in queries:
        started = time.perf_counter()
        sims = vectors @ q
        top = np.argpartition(-sims, K)[:K]
        top[np.argsort(-sims[top])]
        times.append(time.perf_counter() - started)
    return times


def search(conn, table: str, queries: np.ndarray, truth: list[set[int]], ef: int, tenant: int | None = None,
           iterative: str = "relaxed_order") -> dict:
    from pgvector import HalfVector

    conn.execute(f"SET hnsw.ef_search = {ef}")
    # relaxed_order: keep walking the graph until LIMIT rows pass the filter (pgvector 0.8).
    conn.execute(f"SET hnsw.iterative_scan = {iterative}")
    where = "" if tenant is None else f"WHERE tenant = {int(tenant)}"
    sql = f"SELECT id FROM {table} {where} ORDER BY embedding <=> %s LIMIT {K}"
    for q in queries[:20]:  # warm-up: pages into shared_buffers, statement prepared
        conn.execute(sql, (HalfVector(q),), prepare=True)
    times, recalls, rows = [], [], []
    for q, want in zip(queries, truth):
        started = time.perf_counter()
        got = [r[0] for r in conn.execute(sql, (HalfVector(q),), prepare=True).fetchall()]
        times.append(time.perf_counter() - started)
        recalls.append(len(want & set(got)) / K)
        rows.append(len(got))
    p50, p99 = percentiles(times, 50, 99)
    return {"ef_search": ef, "p50_ms": round(p50 * 1e3, 2), "p99_ms": round(p99 * 1e3, 2),
            "recall_at_10": round(float(np.mean(recalls)), 4), "min_rows": int(min(rows)),
            "share_with_10_rows": round(float(np.mean([r == K for r in rows])), 3)}


def measure(conn, n: int, seed: int, full_detail: bool, sweep: bool = False) -> dict:
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    with Timer() as gen:
        vectors = gaussian_mixture(n, DIMS, CLUSTERS, seed=7)  # same centres at every size
        tenants = rng.integers(TENANTS, size=n)
        queries = held_out_queries(QUERIES)
    table = f"knn_{n}"
    load_s = load(conn, table, vectors, tenants)
    build_s = build(conn, table, n)
    base_ms = percentiles(brute_force_latency(vectors, queries[:BASELINE_QUERIES]), 50, 99)
    truth = exact(vectors, queries)
    index_bytes = conn.execute(f"SELECT pg_relation_size('{table}_embedding_idx')").fetchone()[0]
    result = {"n": n, "generate_s": round(gen.seconds, 1), "copy_s": round(load_s, 1),
              "copy_rows_per_s": round(n / load_s), "build_s": round(build_s, 1),
              "index_mb": round(index_bytes / 2**20),
              "exact_p50_ms": round(base_ms[0] * 1e3, 2), "exact_p99_ms": round(base_ms[1] * 1e3, 2),
              "hnsw": search(conn, table, queries, truth, EF_SEARCH)}
    if sweep:
        result["ef_sweep"] = [search(conn, table, queries, truth, ef) for ef in EF_SWEEP if ef != EF_SEARCH]
    if full_detail:
        one = 3
        filtered_truth = exact(vectors, queries, tenants == one)
        result["tenant_filtered"] = search(conn, table, queries, filtered_truth, EF_SEARCH, tenant=one)
        result["tenant_filtered_no_iterative"] = search(conn, table, queries, filtered_truth, EF_SEARCH,
                                                        tenant=one, iterative="off")
        # A 10% filter means the true top-10 sit ~100 deep in the unfiltered order, so ef_search
        # must grow with 1/selectivity to keep recall: this row shows what doubling it buys.
        result["tenant_filtered_wide"] = search(conn, table, queries, filtered_truth, EF_SEARCH * 2, tenant=one)
    conn.execute(f"DROP TABLE {table}")
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


def held_out_queries(count: int) -> np.ndarray:
    """Queries from the same mixture (same centres and subspace) but never stored."""
    return gaussian_mixture(count, DIMS, CLUSTERS, seed=7, sample_seed=99)


def run(quick: bool = False) -> dict:
    sizes = list(QUICK_SIZES if quick else FULL_SIZES)
    result: dict = {"m": M, "ef_construction": EF_CONSTRUCTION, "ef_search": EF_SEARCH, "dims": DIMS,
                    "type": "halfvec", "shared_buffers": SHARED_BUFFERS, "max_parallel_maintenance_workers": 1,
                    "load_average_start": load_average()}
    with embedded_servers("knn", migrate=False) as servers:
        with connect(servers["database_url"]) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
        restart_postgres(servers["data_dir"])
        with connect(servers["database_url"]) as conn:
            # Quick: filters measured at its largest size, no ef sweep; full: both, at the large size only.
            rows = [measure(conn, n, seed=n, full_detail=(n == sizes[-1] and quick)) for n in sizes]
            if not quick:
                # Extrapolate the 1M build from the growth of the builds so far, and the rest of
                # the work (generate, COPY, exact search, queries) linearly from the 100k run.
                last = rows[-1]
                slope = max(1.0, loglog_exponent([r["n"] for r in rows], [r["build_s"] for r in rows]))
                scale = 1_000_000 / last["n"]
                build_1m = last["build_s"] * scale ** slope
                section_1m = build_1m + (last["total_s"] - last["build_s"]) * scale
                left = DEADLINE - time.monotonic()
                big = 1_000_000 if build_1m <= BUILD_BUDGET_S and section_1m <= left else 300_000
                result["predicted_1m_build_s"] = round(build_1m)
                result["large_size_reason"] = (
                    f"1M: build predicted {build_1m:.0f}s (exponent {slope:.2f} from {last['n']}), section "
                    f"{section_1m:.0f}s; allowed: build {BUILD_BUDGET_S}s, section {left:.0f}s of the suite budget")
                rows.append(measure(conn, big, seed=big, full_detail=True, sweep=True))
    result["sizes"] = rows
    main = rows[-1]
    result["main"] = main
    result["latency_growth_exponent"] = loglog_exponent([r["n"] for r in rows], [r["hnsw"]["p50_ms"] for r in rows])
    result["build_growth_exponent"] = loglog_exponent([r["n"] for r in rows], [r["build_s"] for r in rows])
    result["load_average_end"] = load_average()
    result["targets"] = {"recall_at_10": 0.98, "p99_ms": 20, "applies_at_n": 1_000_000}
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
