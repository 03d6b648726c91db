"""Real processes: the `governance` CLI and a `celery worker` started through it."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "governance")
# Celery's own lines for a task's life in a worker log: received, then succeeded, retry or raised.
TASK_LINE = re.compile(r"Task (governance\.[\w.]+)\[([0-9a-f-]+)\] (received|succeeded|retry|raised)")


@pytest.fixture(scope="session")
def e2e_env(data_dir, database_url, broker_url, tmp_path_factory) -> dict:
    roots = tmp_path_factory.mktemp("uploads")
    env = dict(os.environ, GOVERNANCE_DATA_DIR=str(data_dir), GOVERNANCE_FILE_ROOTS=str(roots),
               GOVERNANCE_EMBEDDER="hashing", PYTHONUNBUFFERED="1", GOVERNANCE_RECONCILE_AFTER_S="20")
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(name, None)
    env["FILE_ROOT"] = str(roots)
    return env


def cli(env: dict, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([CLI, *args], env=env, input=input_text, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"governance {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


class Worker:
    def __init__(self, env: dict, log_path: Path, concurrency: int = 2, extra: tuple = ()):
        self._start(env, log_path, ["worker", "--concurrency", str(concurrency), *extra], ready="ready")
        if "--no-beat" not in extra and "--queues" not in extra:  # its beat, and the maintenance queue
            # The beat's first reconcile pass, on a broker that has no marker yet (the session's new
            # Redis), re-enqueues every event without an outcome: a test's events published while it
            # runs would be delivered twice, and their attempt counts would depend on the timing.
            self.wait_for_task("governance.reconcile_events", 60)

    def _start(self, env: dict, log_path: Path, argv: list[str], ready: str) -> None:
        self.log_path = log_path
        self.process = subprocess.Popen(
            [CLI, *argv], env=env, start_new_session=True, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
        )
        self.wait_for_log(ready, 60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout_s: float) -> None:
        self._wait_for(lambda log: needle in log, f"logged {needle!r}", timeout_s)

    def wait_for_task(self, name: str, timeout_s: float) -> None:
        """Until a `name` task has ended here (succeeded, raised or retried)."""
        self._wait_for(lambda log: any(n == name and what != "received" for n, _, what in TASK_LINE.findall(log)),
                       f"ended a {name} task", timeout_s)

    def _wait_for(self, seen, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not seen(self.log()):
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker never {what} within {timeout_s:g} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def unfinished(self, prefix: str = "governance.process_upload") -> set[str]:
        """Ids of upload tasks this worker received and has not finished (a task killed with its
        child is received again when redelivered, and its last word is that redelivery's)."""
        last = {}
        for name, task_id, what in TASK_LINE.findall(self.log()):
            if name.startswith(prefix):
                last[task_id] = what
        return {task_id for task_id, what in last.items() if what == "received"}

    def wait_until_finished(self, timeout_s: float = 60) -> None:
        """Wait until every upload task this worker took has ended, so that a late duplicate's
        writes are seen by the assertions that follow instead of landing after them."""
        deadline = time.monotonic() + timeout_s
        while running := self.unfinished():
            if time.monotonic() > deadline:
                raise AssertionError(f"tasks still running after {timeout_s:g} s: {sorted(running)}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60) -> None:
        if self.alive():
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Beat(Worker):
    """`governance beat`: the scheduler on its own, for workers started with --no-beat."""

    def __init__(self, env: dict, log_path: Path):
        self._start(env, log_path, ["beat"], ready="beat: Starting")


@pytest.fixture(autouse=True)
def _no_pending_outbox_left_behind(database_url):
    """E2E tests commit, and the outbox relay is cross-tenant by design: a message one test leaves
    undelivered (no sink configured) would be relayed by a later test's relay and upset its counts.
    Runs after the test's workers are stopped (autouse fixtures are torn down last)."""
    yield
    from sqlalchemy import text

    from governance.storage.db import engine_for

    with engine_for(database_url).begin() as connection:
        connection.execute(text("DELETE FROM outbox WHERE delivered_at IS NULL"))


@pytest.fixture
def worker(e2e_env, tmp_path):
    started = []

    def start(env: dict | None = None, **kwargs) -> Worker:
        w = Worker(env or e2e_env, tmp_path / f"worker-{len(started)}.log", **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def decisions(env: dict, tenant: str) -> list[dict]:
    out = cli(env, "decisions", "export", "--tenant", tenant).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_for_decisions(env: dict, tenant: str, count: int, timeout_s: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = decisions(env, tenant)
        if len({d["event_id"] for d in found}) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
