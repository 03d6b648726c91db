"""A tenant's webhook receiver for the tests: a real threaded HTTP server on a free port that verifies
every delivery with the `standardwebhooks` package (the reference implementation, not ours)."""
from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    """A webhook receiver on a free port: answers `status`, and verifies what it accepts."""

    def __init__(self):
        self.secret: str | None = None
        self.status = 200
        self.received: list[tuple[str, dict]] = []  # (webhook-id, the verified body)
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verified = Webhook(receiver.secret).verify(body, dict(self.headers))
                except WebhookVerificationError:
                    receiver.rejected += 1
                    self.send_response(400)
                else:
                    if receiver.status == 200:
                        receiver.received.append((self.headers["webhook-id"], verified))
                    self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def refused_url() -> str:
    """A port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
