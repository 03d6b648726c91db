"""Tenant-filtered kNN: the recall of one tenant's queries inside an HNSW graph that tenants share.

A tenant's bank shares its partition's HNSW graph with the other tenants hashed there, so its
queries filter the graph (iterative scans, as repository.nearest_exemplars). This measures what that
costs: the same vectors, spread over `--tenants` tenants, searched unfiltered and as one tenant,
across hnsw.ef_search. It is why ef_search is not chosen by the tenant's own bank size: a small
tenant in a large graph needs the large graph's value, or more.

    .venv/bin/python -m bench.bench_knn_filtered [--size 100000] [--tenants 10]
        [--m 24 --ef-construction 128]
"""
from __future__ import annotations

import json

import numpy as np

from bench.bench_knn import (CLUSTERS, DIMS, EF_CONSTRUCTION, M, SHARED_BUFFERS, build, connect, exact,
                              held_out_queries, load, search)
from bench.common import embedded_servers, gaussian_mixture, load_average, restart_postgres

EF_SEARCH = (40, 100, 200, 500, 1000)
QUERIES = 300
ONE = 3  # the tenant whose queries are filtered


def sweep(conn, vectors: np.ndarray, owner: np.ndarray, queries: np.ndarray, m: int,
          ef_construction: int) -> list[dict]:
    truth, filtered_truth = exact(vectors, queries), exact(vectors, queries, owner == ONE)
    load(conn, "shared", vectors, owner)
    build(conn, "shared", len(vectors), m, ef_construction)
    return [{"ef_search": ef, "unfiltered": search(conn, "shared", queries, truth, ef),
             "one_tenant": search(conn, "shared", queries, filtered_truth, ef, tenant=ONE)} for ef in EF_SEARCH]


def run(size: int = 100_000, tenants: int = 10, m: int = M, ef_construction: int = EF_CONSTRUCTION) -> dict:
    vectors = gaussian_mixture(size, DIMS, CLUSTERS, seed=7)
    owner = np.random.default_rng(size).integers(tenants, size=size)
    result: dict = {"n": size, "tenants": tenants, "tenant_vectors": int((owner == ONE).sum()), "m": m,
                    "ef_construction": ef_construction, "queries": QUERIES, "load_average_start": load_average()}
    with embedded_servers("knnfiltered", migrate=False) as servers:
        with connect(servers["database_url"]) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
        restart_postgres(servers["data_dir"])
        with connect(servers["database_url"]) as conn:
            result["ef_search"] = sweep(conn, vectors, owner, held_out_queries(QUERIES), m, ef_construction)
    result["load_average_end"] = load_average()
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--m", type=int, default=M)
    parser.add_argument("--ef-construction", type=int, default=EF_CONSTRUCTION)
    args = parser.parse_args()
    print(json.dumps(run(args.size, args.tenants, args.m, args.ef_construction), indent=2))
