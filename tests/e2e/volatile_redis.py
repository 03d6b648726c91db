"""A redis-server that keeps nothing across a restart (no RDB, no AOF): what a broker that lost its
state looks like. On a unix socket by default, or on a loopback TCP port (`tcp=True`), as a
production broker named by URL would be."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import free_port


class VolatileRedis:
    def __init__(self, folder: Path, tcp: bool = False):
        from governance.platform.embedded_servers import _redis_binary

        self.folder, self.binary = folder, _redis_binary()
        if tcp:
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self._listen = ["--bind", "127.0.0.1", "--port", str(self.port)]
            self._client = {"port": self.port}
        else:
            self.socket = folder / "redis.sock"
            self.url = f"redis+socket://{self.socket}"
            self._listen = ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
            self._client = {"unix_socket_path": str(self.socket)}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, *self._listen, "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=open(self.folder / "redis.log", "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(socket_timeout=1, **self._client).ping():
                    return
            except (redis.RedisError, OSError):
                pass
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
