"""Scaling out: end-to-end throughput with 1, 2 and 4 worker processes, two worker nodes that
claim different host names (as two machines would), and embedding and deciding on separate
queues (GOVERNANCE_EMBED_QUEUE), all on one embedded PostgreSQL and Redis.

Every layout decides the same number of events after a warm-up burst on its own fresh workers;
the baseline of each row is the one-process layout of the same run. On a shared 2-core machine
more processes than cores can only share the cores, so what a row shows is whether a layout
loses throughput to contention (locks, connections, the broker), not how far it would scale on
more cores; the load average is recorded at the start and end.

    .venv/bin/python -m bench.bench_scaling [--quick]
"""
from __future__ import annotations

import json

from bench.bench_pipeline import BANK_SIZE, TENANT, WARM_UP, Worker, burst, cli, write_jsonl
from bench.common import embedded_servers, load_average, make_texts

FULL_N, QUICK_N = 6_000, 1_500
EMBED_QUEUE = "governance.embed"
# (name, [(concurrency, extra worker arguments)], extra environment): one entry per worker node.
LAYOUTS = (
    ("1 process", [(1, ())], {}),
    ("2 processes", [(2, ())], {}),
    ("4 processes", [(4, ())], {}),
    ("2 nodes x 1 process (own --hostname)", [(1, ("--hostname", "node-a@bench")),
                                              (1, ("--hostname", "node-b@bench"))], {}),
    ("embed queue + decide queue, 1 process each", [
        (1, ("--hostname", "embed@bench", "--queues", "embed")),
        (1, ("--hostname", "decide@bench", "--queues", "uploads,maintenance"))],
     {"GOVERNANCE_EMBED_QUEUE": EMBED_QUEUE}),
)


def run(quick: bool = False) -> dict:
    from governance.storage.db import engine_for

    n = QUICK_N if quick else FULL_N
    bank_texts, bank_labels = make_texts(BANK_SIZE, seed=11)
    result: dict = {"events": n, "layouts": [], "load_average_start": load_average()}
    with embedded_servers("scaling", redis=True) as servers:
        env, work = servers["env"], servers["data_dir"]
        bank = [{"tenant": TENANT, "asset_id": f"x{i}", "text": t, "label": label}
                for i, (t, label) in enumerate(zip(bank_texts, bank_labels))]
        cli(env, "exemplars", "import", str(write_jsonl(work / "bank.jsonl", bank)))
        engine = engine_for(servers["database_url"])
        try:
            for number, (name, nodes, extra_env) in enumerate(LAYOUTS):
                layout_env = dict(env, **extra_env)
                workers: list[Worker] = []
                try:
                    for k, (concurrency, extra) in enumerate(nodes):
                        workers.append(Worker(layout_env, work / f"worker-{number}-{k}.log", concurrency, extra))
                    first, others = workers[0], tuple(workers[1:])
                    warm_texts, warm_truth = make_texts(WARM_UP * 2, seed=200 + number)
                    burst(layout_env, engine, first, work, f"warm{number}", warm_texts, warm_truth, 300, others)
                    texts, truth = make_texts(n, seed=300 + number)
                    measured = burst(layout_env, engine, first, work, f"l{number}", texts, truth,
                                     400 if quick else 1200, others)
                finally:
                    for w in workers:
                        w.stop()
                result["layouts"].append({
                    "name": name, "processes": sum(c for c, _ in nodes), "nodes": len(nodes),
                    "sustained_events_per_s": measured["sustained_events_per_s"], "drain_s": measured["drain_s"],
                    "latency_p50_s": measured["latency_p50_s"], "load_average": load_average()})
        finally:
            engine.dispose()
    result["load_average_end"] = load_average()
    one = result["layouts"][0]["sustained_events_per_s"]
    for layout in result["layouts"]:
        layout["ratio_to_one_process"] = round(layout["sustained_events_per_s"] / one, 3)
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
