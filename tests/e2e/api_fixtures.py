"""A real `governance serve` process (and a real worker beside it) for the HTTP API tests.

Import the fixtures into a test module (`from tests.e2e.api_fixtures import api, api_key, ...`);
the server is per module, so a module that changes its settings starts its own.
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CLI, Worker, cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path
    env: dict

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_api(env: dict, log_path: Path, timeout_s: float = 90) -> ApiServer:
    port = free_port()
    process = subprocess.Popen([CLI, "serve", "--port", str(port)], env=env, stdout=open(log_path, "w"),
                               stderr=subprocess.STDOUT)
    server = ApiServer(f"http://127.0.0.1:{port}", process, log_path, env)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise AssertionError(f"governance serve exited early:\n{server.log()[-3000:]}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"governance serve never answered /healthz:\n{server.log()[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(e2e_env, tmp_path_factory):
    server = start_api(e2e_env, tmp_path_factory.mktemp("api") / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_worker(e2e_env, tmp_path_factory):
    # No beat: the reconciler would re-enqueue what the API failed to enqueue, and hide it.
    worker = Worker(e2e_env, tmp_path_factory.mktemp("api-worker") / "worker.log", concurrency=2, extra=("--no-beat",))
    yield worker
    worker.stop()


def create_key(env: dict, tenant: str, scopes: str = "ingest,read,review,admin", name: str | None = None) -> dict:
    args = ["keys", "create", "--tenant", tenant, "--scopes", scopes, "--json"] + (["--name", name] if name else [])
    return json.loads(cli(env, *args).stdout)


@pytest.fixture
def api_tenant() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api_key(e2e_env, api_tenant) -> dict:
    """A key with every scope for a fresh tenant: {"id", "key", "tenant", "scopes", "name"}."""
    return create_key(e2e_env, api_tenant, name="tests")
