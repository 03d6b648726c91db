"""The HTTP API: ingest throughput next to `governance publish`, and the latency of ?wait=.

- Latency (first, on an empty queue): single text events `POST /v1/events?wait=10` one after
  another, with a real worker (2 processes) on the offline embedder (MiniLM), after a warm-up;
  p50 and p99 of the round trip.
- Ingest (after the worker stopped): the same N text events accepted through `POST /v1/events`
  in batches of 100 (one client, one connection, a real `governance serve` process), through
  the `governance publish FILE` command as an operator runs it (its interpreter start included),
  and through publish's own function in this process (`publish_file`: one statement for the whole
  file, no process start; the harder baseline), in alternating rounds, the fastest of each kept.
  All write the inbox and enqueue; no worker runs, so they measure acceptance only.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from bench.bench_pipeline import Worker, cli, write_jsonl
from bench.common import CLI, embedded_servers, load_average, make_texts, percentiles

BATCH = 100
ROUNDS = 2
QUICK_N, FULL_N = 2000, 10000
QUICK_SINGLES, FULL_SINGLES = 40, 200
WARM_UP = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, log_path: Path):
        import httpx

        self.base_url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen([CLI, "serve", "--port", self.base_url.rsplit(":", 1)[1],
                                         "--log-level", "warning"], env=env, stdout=open(log_path, "w"),
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"governance serve did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def api_ingest(http, texts: list[str], round_no: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        batch = [{"asset_id": f"r{round_no}-{start + i}", "text": t} for i, t in enumerate(texts[start:start + BATCH])]
        answer = http.post("/v1/events", json=batch)
        if answer.status_code != 202 or len(answer.json()["accepted"]) != len(batch):
            raise RuntimeError(f"POST /v1/events: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - started


def publish_ingest(servers: dict, work: Path, texts: list[str], round_no: int) -> float:
    import os

    os.environ["CELERY_BROKER_URL"] = servers["broker_url"]  # embedded_servers restores it on exit
    from governance.platform.config import Settings
    from worker.cli.publish import publish_file

    path = write_jsonl(work / "publish.jsonl", [{"tenant": "bench-publish", "asset_id": f"r{round_no}-{i}", "text": t}
                                                for i, t in enumerate(texts)])
    settings = Settings.from_env()
    started = time.perf_counter()
    accepted, problems = publish_file(settings, str(path))
    seconds = time.perf_counter() - started
    if len(accepted.new) != len(texts) or problems:
        raise RuntimeError(f"publish accepted {len(accepted.new)} of {len(texts)}: {problems[:3]}")
    return seconds


def publish_cli(env: dict, work: Path, texts: list[str], round_no: int) -> float:
    path = write_jsonl(work / "publish-cli.jsonl", [{"tenant": "bench-publish-cli", "asset_id": f"r{round_no}-{i}",
                                                     "text": t} for i, t in enumerate(texts)])
    started = time.perf_counter()
    accepted = int(cli(env, "publish", str(path)).strip().splitlines()[-1])
    seconds = time.perf_counter() - started
    if accepted != len(texts):
        raise RuntimeError(f"governance publish accepted {accepted} of {len(texts)}")
    return seconds


def wait_latencies(http, count: int) -> dict:
    texts, _ = make_texts(count + WARM_UP, seed=31)
    latencies, held_out = [], 0
    for i, text in enumerate(texts):
        started = time.perf_counter()
        answer = http.post("/v1/events", params={"wait": 10}, json={"asset_id": f"w{i}", "text": text})
        elapsed = time.perf_counter() - started
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"POST /v1/events?wait=10: {answer.status_code} {answer.text[:300]}")
        if i >= WARM_UP:
            latencies.append(elapsed)
            held_out += answer.status_code == 202
    p50, p99 = percentiles(latencies, 50, 99)
    return {"requests": count, "p50_ms": round(p50 * 1000, 1), "p99_ms": round(p99 * 1000, 1),
            "answered_202": held_out}


def run(quick: bool = False) -> dict:
    import httpx

    n = QUICK_N if quick else FULL_N
    texts, _ = make_texts(n, seed=30)
    result: dict = {"events": n, "batch": BATCH, "load_average_start": load_average()}
    with embedded_servers("api", redis=True) as servers:
        env, work = dict(servers["env"], GOVERNANCE_API_RATE_PER_MINUTE="0"), servers["data_dir"]
        key = json.loads(cli(env, "keys", "create", "--tenant", "bench-api", "--scopes", "ingest,read", "--json"))
        server = Server(env, work / "serve.log")
        worker = None
        try:
            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key['key']}"},
                              timeout=60) as http:
                # Latency first, on an empty queue; the ingest runs after the worker stopped, so
                # their messages wait for nobody and no decision work competes with them.
                worker = Worker(dict(env, GOVERNANCE_EMBEDDER="offline"), work / "worker.log")
                result["wait"] = wait_latencies(http, QUICK_SINGLES if quick else FULL_SINGLES)
                worker.stop()
                http.post("/v1/events", json={"asset_id": "warm", "text": "warm up"})
                # Alternating rounds, the faster of each kept: other load on a shared machine only slows.
                runs = [(api_ingest(http, texts, r), publish_cli(env, work, texts, r),
                         publish_ingest(servers, work, texts, r)) for r in range(ROUNDS)]
                api_s, cli_s, function_s = (min(column) for column in zip(*runs))
                result["rounds_s"] = [[round(x, 2) for x in run] for run in runs]
                result["api_events_per_s"] = round(n / api_s, 1)
                result["publish_events_per_s"] = round(n / cli_s, 1)
                result["publish_file_events_per_s"] = round(n / function_s, 1)
                result["ratio"] = round(cli_s / api_s, 3)
                result["ratio_to_publish_file"] = round(function_s / api_s, 3)
        finally:
            if worker is not None:
                worker.stop()
            server.stop()
    result["load_average_end"] = load_average()
    return result
