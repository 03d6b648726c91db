"""Chaos soak: a steady stream of uploads while worker children, workers, Redis and PostgreSQL
are killed and restarted at random; at the end every event is checked against the invariant
of tests/e2e/test_faults.py (README, Guarantees).

The automated fault tests each inject one fault at a chosen point; this mixes them, at random
moments and for as long as asked, which does not fit the test suite's time budget:

    .venv/bin/python scripts/soak.py --minutes 10 --workers 2 --seed 7
    .venv/bin/python scripts/soak.py --minutes 3 --actions kill-child,restart-redis

Everything runs in a fresh temporary data folder (embedded PostgreSQL, a Redis that keeps
nothing on disk, so a restart loses the queue and the reconciler must recover it), with the
offline `hashing` embedder. Exit status 0 when the invariant holds, 1 when it does not.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.test_faults import (  # noqa: E402 - after the path is set
    VolatileRedis, _pg_ctl_stop, _pg_start, assert_invariant, outcome_count, text_events,
)

CLI = str(Path(sys.executable).parent / "governance")
ACTIONS = ("kill-child", "term-worker", "kill-worker", "restart-redis", "restart-postgres")


class Proc:
    def __init__(self, args: list[str], env: dict, log: Path):
        self.args, self.env, self.log = args, env, log
        self.process = subprocess.Popen([CLI, *args], env=env, start_new_session=True,
                                        stdout=open(log, "a"), stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.process.pid, sig)

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


def run(args) -> int:
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="governance-soak-"))
    data_dir = folder / "data"
    data_dir.mkdir()
    broker = VolatileRedis(folder)
    broker.start()
    env = dict(os.environ, GOVERNANCE_DATA_DIR=str(data_dir), GOVERNANCE_EMBEDDER="hashing",
               CELERY_BROKER_URL=broker.url, GOVERNANCE_RECONCILE_AFTER_S=str(args.reconcile_after_s),
               GOVERNANCE_MAX_ATTEMPTS=str(args.max_attempts), PYTHONUNBUFFERED="1")
    for name in ("DATABASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOVERNANCE_TEST_CRASH"):
        env.pop(name, None)
    from governance.embedded import ensure_postgres, stop_embedded

    database_url = ensure_postgres(data_dir)
    subprocess.run([CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
    tenant = f"soak-{uuid.uuid4().hex[:8]}"
    workers = [Proc(["worker", "--no-beat", "--concurrency", "2"], env, folder / f"worker-{i}.log")
               for i in range(args.workers)]
    beat = Proc(["beat"], env, folder / "beat.log")
    actions = [a for a in args.actions.split(",") if a]
    event_ids: list[str] = []
    tally: dict[str, int] = {}
    started = time.monotonic()
    next_fault = started + rng.uniform(*args.fault_every_s)
    batch = 0
    try:
        while time.monotonic() - started < args.minutes * 60:
            events = text_events(tenant, f"b{batch}", args.batch)
            batch += 1
            path = folder / "batch.jsonl"
            path.write_text("".join(json.dumps(e) + "\n" for e in events))
            published = subprocess.run([CLI, "publish", str(path)], env=env, capture_output=True, text=True)
            # A publish that fails to enqueue (broker down) has still accepted its events.
            event_ids += [e["event_id"] for e in events]
            tally["publish_failed"] = tally.get("publish_failed", 0) + (published.returncode != 0)
            for i, w in enumerate(workers):  # a worker stopped by a fault comes back, like under systemd
                if not w.alive():
                    workers[i] = Proc(w.args, env, w.log)
            if time.monotonic() >= next_fault and actions:
                action = rng.choice(actions)
                tally[action] = tally.get(action, 0) + 1
                victim = rng.choice(workers)
                if action == "kill-child" and victim.children():
                    os.kill(rng.choice(victim.children()), signal.SIGKILL)
                elif action == "term-worker":
                    victim.signal(signal.SIGTERM)
                elif action == "kill-worker":  # unacked messages wait for the visibility timeout or the reconciler
                    os.killpg(victim.process.pid, signal.SIGKILL)
                elif action == "restart-redis":
                    broker.stop()
                    time.sleep(rng.uniform(0.5, 3))
                    broker.start()
                elif action == "restart-postgres":
                    _pg_ctl_stop(data_dir)
                    time.sleep(rng.uniform(0.5, 5))
                    _pg_start(data_dir)
                next_fault = time.monotonic() + rng.uniform(*args.fault_every_s)
            time.sleep(args.pause_s)
        # Calm: let the reconciler and the retries finish the work.
        deadline = time.monotonic() + args.drain_s
        while outcome_count(database_url, tenant, event_ids) < len(event_ids) and time.monotonic() < deadline:
            for i, w in enumerate(workers):
                if not w.alive():
                    workers[i] = Proc(w.args, env, w.log)
            time.sleep(1)
        done = outcome_count(database_url, tenant, event_ids)
        summary = {"tenant": tenant, "events": len(event_ids), "with_outcome": done, "faults": tally,
                   "seconds": round(time.monotonic() - started), "logs": str(folder)}
        try:
            assert_invariant(database_url, tenant, event_ids, dead_ok=True)
        except AssertionError as exc:
            print(json.dumps({**summary, "invariant": "BROKEN"}, indent=2))
            print(str(exc)[:5000], file=sys.stderr)
            return 1
        print(json.dumps({**summary, "invariant": "holds"}, indent=2))
        return 0
    finally:
        for w in workers:
            w.stop()
        beat.stop()
        broker.stop()
        stop_embedded(data_dir)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=20, help="events per publish")
    parser.add_argument("--pause-s", type=float, default=1.0, help="pause between publishes")
    parser.add_argument("--fault-every-s", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"))
    parser.add_argument("--actions", default=",".join(ACTIONS), help=f"comma-separated subset of {ACTIONS}")
    parser.add_argument("--reconcile-after-s", type=int, default=15)
    parser.add_argument("--max-attempts", type=int, default=8,
                        help="generous: random faults may hit one event several times")
    parser.add_argument("--drain-s", type=float, default=300)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and its logs")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
