"""Chaos soak: a counted stream of uploads while worker children, workers, Redis and PostgreSQL
are killed and restarted on a schedule; at the end every event is checked against the invariant
of tests/e2e/test_faults.py (README, Guarantees), and the workers' memory is shown over time.

The automated fault tests each inject one fault at a chosen point; this mixes them over a long
stream, which does not fit the test suite's time budget (`make soak` runs 100,000 events):

    .venv/bin/python scripts/soak.py --events 100000 --fault-every 1000
    .venv/bin/python scripts/soak.py --events 3000 --fault-every 300 --actions kill-child,restart-redis

The stream is fed in chunks through `governance publish`, keeping at most `--in-flight` events
without an outcome, so a queue lost with Redis is a bounded amount for the reconciler. Every
`--fault-every` events with an outcome (or `--fault-every-s` seconds, if given) the next fault
of a seeded rotation strikes. `--minutes` optionally bounds the feeding time.

Everything runs in a fresh temporary data folder (embedded PostgreSQL, a Redis that keeps
nothing on disk, so a restart loses the queue and the reconciler must recover it), with the
offline `hashing` embedder. `--external` runs as a fresh production machine would: the PostgreSQL
and a memory-only Redis on a loopback port are named by URL, HOME and GOVERNANCE_DATA_DIR point at
folders that do not exist yet, and each worker embeds its beat. For every Redis restart it prints
how long the events published before it took to get an outcome, against what the run's own
throughput would have taken for that backlog: the extra latency the restart cost. It prints `lost=N doubled=N` and the total RSS of each worker's
process tree (main process and pool children) sampled every `--rss-every-s`; exit status 0
only when nothing was lost or doubled and the whole invariant holds.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.test_faults import (  # noqa: E402 - after the path is set
    VolatileRedis, _pg_ctl_stop, _pg_start, assert_invariant, db_session, text_events,
)
from tests.e2e.test_fresh_machine import MemoryRedis  # noqa: E402

CLI = str(Path(sys.executable).parent / "governance")
ACTIONS = ("kill-child", "term-worker", "kill-worker", "restart-redis", "restart-postgres")
MB = 1024 * 1024


class Proc:
    def __init__(self, args: list[str], env: dict, log: Path):
        self.args, self.env, self.log = args, env, log
        self.process = subprocess.Popen([CLI, *args], env=env, start_new_session=True,
                                        stdout=open(log, "a"), stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 60) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def children(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def tree_rss(self) -> int:
        """Resident memory of the worker's main process and all its descendants, in bytes."""
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total


def outcomes_by_event(database_url: str, tenant: str) -> Counter:
    """event_id -> decisions + dead letters, for the whole tenant (no id list: 100k ids would
    exceed PostgreSQL's bind-parameter limit)."""
    from sqlalchemy import select

    from governance.storage.tables import DeadLetter, Decision

    with db_session(database_url) as s:
        found = Counter(s.scalars(select(Decision.event_id).where(Decision.tenant == tenant)))
        found.update(s.scalars(select(DeadLetter.event_id).where(DeadLetter.tenant == tenant)))
    return found


def outcome_total(database_url: str, tenant: str) -> int | None:
    from sqlalchemy import func, select

    from governance.storage.tables import DeadLetter, Decision

    try:
        with db_session(database_url) as s:
            return (s.scalar(select(func.count()).select_from(Decision).where(Decision.tenant == tenant))
                    + s.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.tenant == tenant)))
    except Exception:  # noqa: BLE001 - the database is being restarted: skip this look
        return None


def accepted_count(database_url: str, tenant: str, event_ids: list[str]) -> int:
    from sqlalchemy import func, select

    from governance.storage.tables import Event

    with db_session(database_url) as s:
        return s.scalar(select(func.count()).select_from(Event)
                        .where(Event.tenant == tenant, Event.event_id.in_(event_ids)))


class Soak:
    def __init__(self, args, folder: Path, env: dict, database_url: str, broker, pg_dir: Path):
        self.args, self.folder, self.env, self.database_url, self.broker = args, folder, env, database_url, broker
        self.pg_dir = pg_dir
        self.rng = random.Random(args.seed)
        self.tenant = f"soak-{uuid.uuid4().hex[:8]}"
        beat = [] if args.external else ["--no-beat"]  # external: each worker embeds its beat
        self.workers = [Proc(["worker", *beat, "--concurrency", str(args.concurrency)], env,
                             folder / f"worker-{i}.log") for i in range(args.workers)]
        self.beat = None if args.external else Proc(["beat"], env, folder / "beat.log")
        self.redis_restarts: list[dict] = []  # at, published, backlog, drained_s
        actions = [a for a in args.actions.split(",") if a]
        self.rotation = self.rng.sample(actions, len(actions)) if actions else []
        self.event_ids: list[str] = []
        self.tally: Counter = Counter()
        self.rss: list[tuple[float, int, list[int]]] = []  # (elapsed s, outcomes, RSS per worker)
        self.started = time.monotonic()

    def supervise(self) -> None:
        """A stopped worker comes back, as under systemd or an orchestrator."""
        for i, w in enumerate(self.workers):
            if not w.alive():
                self.workers[i] = Proc(w.args, self.env, w.log)
                self.tally["worker_restarts"] += 1

    def publish_chunk(self, size: int) -> None:
        """Publish until the inbox holds the whole chunk (a publish during a PostgreSQL restart
        accepts nothing; one during a Redis restart accepts but cannot enqueue: the reconciler's)."""
        events = text_events(self.tenant, f"c{len(self.event_ids)}", size)
        ids = [e["event_id"] for e in events]
        path = self.folder / "chunk.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        while True:
            published = subprocess.run([CLI, "publish", str(path)], env=self.env, capture_output=True, text=True)
            self.tally["publish_failed"] += published.returncode != 0
            try:
                if accepted_count(self.database_url, self.tenant, ids) == len(ids):
                    break
            except Exception:  # noqa: BLE001 - the database is restarting
                pass
            time.sleep(1)
        self.event_ids += ids

    def inject(self, action: str) -> None:
        self.tally[action] += 1
        victim = self.rng.choice(self.workers)
        if action == "kill-child" and victim.children():
            os.kill(self.rng.choice(victim.children()), signal.SIGKILL)
        elif action == "term-worker" and victim.alive():
            os.kill(victim.process.pid, signal.SIGTERM)  # warm shutdown of the main process
        elif action == "kill-worker" and victim.alive():
            os.killpg(victim.process.pid, signal.SIGKILL)  # unacked messages: visibility timeout or reconciler
        elif action == "restart-redis":
            done = outcome_total(self.database_url, self.tenant) or 0
            self.redis_restarts.append({"at": time.monotonic(), "published": len(self.event_ids),
                                        "backlog": len(self.event_ids) - done, "drained_s": None})
            self.broker.stop()
            time.sleep(self.rng.uniform(0.5, 3))
            self.broker.start()
        elif action == "restart-postgres":
            _pg_ctl_stop(self.pg_dir)
            time.sleep(self.rng.uniform(0.5, 5))
            _pg_start(self.pg_dir)

    def watch_redis_drains(self) -> None:
        """Time until every event published before a Redis restart has an outcome."""
        waiting = [r for r in self.redis_restarts if r["drained_s"] is None]
        if not waiting:
            return
        try:
            found = outcomes_by_event(self.database_url, self.tenant)
        except Exception:  # noqa: BLE001 - the database is restarting: look again next tick
            return
        for restart in waiting:
            if all(found[e] for e in self.event_ids[:restart["published"]]):
                restart["drained_s"] = time.monotonic() - restart["at"]

    def sample_rss(self, outcomes: int) -> None:
        self.rss.append((time.monotonic() - self.started, outcomes, [w.tree_rss() for w in self.workers]))

    def run(self) -> int:
        args, target = self.args, self.args.events
        done, faults = 0, 0
        next_rss = last_fault = self.started
        feed_until = self.started + args.minutes * 60 if args.minutes else float("inf")
        drain_until = None
        while True:
            self.supervise()
            done = n if (n := outcome_total(self.database_url, self.tenant)) is not None else done
            self.watch_redis_drains()
            now = time.monotonic()
            feeding = len(self.event_ids) < target and now < feed_until
            if feeding and len(self.event_ids) - done < args.in_flight:
                self.publish_chunk(min(args.chunk, target - len(self.event_ids)))
            elif not feeding:
                drain_until = drain_until or now + args.drain_s
                if done >= len(self.event_ids) or now > drain_until:
                    break
            # Faults strike at every `fault_every` outcomes short of the last event (the final stretch
            # is calm, so the reconciler and the retries can finish), or every `fault_every_s` while feeding.
            next_threshold = (faults + 1) * args.fault_every if args.fault_every else None
            due = (next_threshold is not None and done >= next_threshold and next_threshold < len(self.event_ids)) \
                or (feeding and args.fault_every_s and now >= last_fault + args.fault_every_s)
            if due and self.rotation:
                self.inject(self.rotation[faults % len(self.rotation)])
                faults += 1
                last_fault = time.monotonic()
            if time.monotonic() >= next_rss:
                self.sample_rss(done)
                next_rss = time.monotonic() + args.rss_every_s
                print(f"[{time.monotonic() - self.started:6.0f}s] published {len(self.event_ids)}, with outcome "
                      f"{done}, faults {faults}, worker RSS {sum(self.rss[-1][2]) / MB:.0f} MB", file=sys.stderr)
            time.sleep(args.tick_s)
        self.sample_rss(done)
        return self.verdict()

    def verdict(self) -> int:
        found = outcomes_by_event(self.database_url, self.tenant)
        lost = sum(1 for e in self.event_ids if found[e] == 0)
        doubled = sum(1 for e in self.event_ids if found[e] > 1)
        print(rss_table(self.rss, self.args.table_rows))
        print(json.dumps({"tenant": self.tenant, "events": len(self.event_ids), "requested": self.args.events,
                          "with_outcome": sum(1 for e in self.event_ids if found[e]), "faults": dict(self.tally),
                          "seconds": round(time.monotonic() - self.started), "logs": str(self.folder)}))
        rate = sum(1 for e in self.event_ids if found[e]) / max(1e-9, time.monotonic() - self.started)
        for r in self.redis_restarts:
            normal = r["backlog"] / rate
            drained = "never drained" if r["drained_s"] is None else (
                f"drained in {r['drained_s']:.1f} s, extra {r['drained_s'] - normal:.1f} s")
            print(f"redis restart at {r['at'] - self.started:.0f} s: backlog {r['backlog']}, {drained} "
                  f"(at the run's {rate:.0f} events/s: {normal:.1f} s)")
        print(f"lost={lost} doubled={doubled}")
        try:
            assert_invariant(self.database_url, self.tenant, self.event_ids, dead_ok=True)
        except AssertionError as exc:
            print("invariant BROKEN", file=sys.stderr)
            print(str(exc)[:5000], file=sys.stderr)
            return 1
        if len(self.event_ids) < self.args.events:
            print(f"note: --minutes ended the feed after {len(self.event_ids)} of {self.args.events} events")
        return 0 if lost == doubled == 0 else 1

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        if self.beat is not None:
            self.beat.stop()


def rss_table(samples: list[tuple[float, int, list[int]]], rows: int) -> str:
    """At most `rows` evenly spaced samples (the first, the peak and the last always among them)."""
    if not samples:
        return "no RSS samples"
    peak = max(range(len(samples)), key=lambda i: sum(samples[i][2]))
    step = max(1, len(samples) // max(1, rows - 2))
    keep = sorted({0, peak, len(samples) - 1, *range(0, len(samples), step)})
    width = len(samples[0][2])
    lines = ["worker RSS over time (MB; each worker's process tree: main process + pool children)",
             f"{'elapsed_s':>9} {'outcomes':>9} " + " ".join(f"{f'worker-{i}':>9}" for i in range(width))
             + f" {'total':>7}"]
    for i in keep:
        elapsed, outcomes, per_worker = samples[i]
        lines.append(f"{elapsed:9.0f} {outcomes:9d} " + " ".join(f"{r / MB:9.0f}" for r in per_worker)
                     + f" {sum(per_worker) / MB:7.0f}" + ("  peak" if i == peak else ""))
    return "\n".join(lines)


def run(args) -> int:
    from governance.platform.embedded_servers import ensure_postgres, stop_embedded

    folder = Path(tempfile.mkdtemp(prefix="governance-soak-"))
    pg_dir = folder / ("servers" if args.external else "data")  # external: PostgreSQL's folder only
    pg_dir.mkdir()
    database_url = ensure_postgres(pg_dir)
    if args.external:
        (folder / "redis").mkdir()
        broker = MemoryRedis(folder / "redis")
    else:
        broker = VolatileRedis(folder)
    broker.start()
    env = dict(os.environ, GOVERNANCE_EMBEDDER="hashing", CELERY_BROKER_URL=broker.url,
               GOVERNANCE_RECONCILE_AFTER_S=str(args.reconcile_after_s),
               GOVERNANCE_MAX_ATTEMPTS=str(args.max_attempts), PYTHONUNBUFFERED="1")
    for name in ("DATABASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOVERNANCE_TEST_CRASH", "XDG_DATA_HOME"):
        env.pop(name, None)
    if args.external:  # nothing of the data folder exists: the worker must create what it needs
        env.update(DATABASE_URL=database_url, HOME=str(folder / "home"),
                   GOVERNANCE_DATA_DIR=str(folder / "home" / "data"))
    else:
        env["GOVERNANCE_DATA_DIR"] = str(pg_dir)
    subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    soak = Soak(args, folder, env, database_url, broker, pg_dir)
    try:
        return soak.run()
    finally:
        soak.close()
        broker.stop()
        stop_embedded(pg_dir)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="events to publish in all")
    parser.add_argument("--minutes", type=float, default=None, help="optional bound on the feeding time")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--chunk", type=int, default=250, help="events per publish")
    parser.add_argument("--in-flight", type=int, default=1000, help="publish only while fewer lack an outcome")
    parser.add_argument("--fault-every", type=int, default=1000, help="a fault every N events with an outcome (0: off)")
    parser.add_argument("--fault-every-s", type=float, default=0, help="and/or every N seconds (0: off)")
    parser.add_argument("--actions", default=",".join(ACTIONS), help=f"comma-separated subset of {ACTIONS}")
    parser.add_argument("--reconcile-after-s", type=int, default=30)
    parser.add_argument("--max-attempts", type=int, default=8,
                        help="generous: scheduled faults may hit one event several times")
    parser.add_argument("--rss-every-s", type=float, default=30)
    parser.add_argument("--table-rows", type=int, default=25)
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--drain-s", type=float, default=600, help="after the feed, wait at most this long")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and its logs")
    parser.add_argument("--external", action="store_true",
                        help="servers by URL, a fresh HOME and data folder, each worker with its beat")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
