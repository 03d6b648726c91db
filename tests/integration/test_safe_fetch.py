"""safe_fetch against real servers on loopback: HTTP, HTTPS with a test CA, and a DNS server the test
answers for, reached through the fetcher's own settings (GOVERNANCE_FETCH_NAMESERVERS,
GOVERNANCE_FETCH_ALLOW_CIDRS, SSL_CERT_FILE). No traffic leaves 127.0.0.1."""
from __future__ import annotations

import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from governance.ingest.safe_fetch import FetchRefused, fetch_http
from governance.platform.config import Settings
from tests.e2e.tls_servers import make_certificates

DRIP_INTERVAL_S = 0.2


class Nameserver:
    """A DNS server on loopback. `answers[name]` lists the addresses of each successive query of a
    type (the last one repeats); a name it does not know is NXDOMAIN."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answers: dict[str, list[list[str]]] = {}
        self.queries: list[tuple[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            question = query.question[0]
            name, rdtype = question.name.to_text(omit_final_dot=True), dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            response = dns.message.make_response(query)
            if name not in self.answers:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                turns = self.answers[name]
                asked = self.queries.count((name, rdtype))
                wanted = [a for a in turns[min(asked, len(turns)) - 1] if (":" in a) == (rdtype == "AAAA")]
                if wanted:
                    response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, wanted))
            self.sock.sendto(response.to_wire(), peer)

    def close(self):
        self.sock.close()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Host")))
        route = self.server.routes[self.path.split("?")[0]]
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher gave up, as it should

    def log_message(self, *args):
        pass


def body(data: bytes, length: int | None = None, status: int = 200):
    def route(handler):
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(data) if length is None else length))
        handler.end_headers()
        handler.wfile.write(data)
    return route


def redirect(location: str, delay_s: float = 0.0):
    def route(handler):
        time.sleep(delay_s)
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


def drip(handler):
    """One byte every DRIP_INTERVAL_S of a declared 1000: each read is quick, the whole is not."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(DRIP_INTERVAL_S)


def endless_continue(handler):
    for _ in range(1000):
        handler.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        handler.wfile.flush()
        time.sleep(DRIP_INTERVAL_S / 2)


def truncated_chunked(handler):
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.write(b"10\r\n0123456789")  # 16 bytes announced, 10 sent, then the connection closes
    handler.close_connection = True


class Server:
    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if tls_context:
            self.http.socket = tls_context.wrap_socket(self.http.socket, server_side=True)
        self.http.routes, self.http.requests = {}, []
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def routes(self):
        return self.http.routes

    @property
    def requests(self):
        return self.http.requests

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def dns_server(monkeypatch):
    server = Nameserver()
    monkeypatch.setenv("GOVERNANCE_FETCH_NAMESERVERS", f"127.0.0.1:{server.port}")
    yield server
    server.close()


@pytest.fixture
def web(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_FETCH_ALLOW_CIDRS", "127.0.0.0/8")
    monkeypatch.setenv("GOVERNANCE_FETCH_DEADLINE_S", "2")
    monkeypatch.setenv("GOVERNANCE_MAX_BYTES", "100000")
    server = Server()
    yield server
    server.close()


def refusal(uri: str) -> str:
    with pytest.raises(FetchRefused) as info:
        fetch_http(uri, Settings.from_env())
    return str(info.value)


# --- resolution, pinning, rebinding -----------------------------------------------------------------

def test_a_name_is_resolved_once_and_the_connection_pinned_to_that_answer(web, dns_server):
    # Asked again, the name would point at the metadata address: only the first answer is used.
    dns_server.answers["uploads.example"] = [["127.0.0.1"], ["169.254.169.254"]]
    web.routes["/a.txt"] = body(b"pinned words")
    data, _ = fetch_http(f"http://uploads.example:{web.port}/a.txt", Settings.from_env())
    assert data == b"pinned words"
    assert web.requests == [("/a.txt", f"uploads.example:{web.port}")]
    assert sorted(dns_server.queries) == [("uploads.example", "A"), ("uploads.example", "AAAA")]


def test_a_mixed_answer_is_refused_as_rebinding_and_nothing_is_requested(web, dns_server):
    # The allowed address sorts first, so a check of the first address alone would let this through.
    dns_server.answers["mixed.example"] = [["127.0.0.1", "169.254.169.254"]]
    web.routes["/a.txt"] = body(b"never served")
    assert refusal(f"http://mixed.example:{web.port}/a.txt") == "ssrf_blocked: 169.254.169.254 is not a public address"
    assert web.requests == []


def test_a_mixed_ipv6_answer_is_refused(web, dns_server):
    dns_server.answers["six.example"] = [["127.0.0.1", "64:ff9b::a9fe:a9fe"]]
    assert refusal(f"http://six.example:{web.port}/") == (
        "ssrf_blocked: 64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64), not a public address")


def test_an_unknown_name_is_a_dns_failure(web, dns_server):
    assert refusal(f"http://nowhere.example:{web.port}/").startswith("dns_failed: nowhere.example: NXDOMAIN: ")


def test_a_redirect_to_a_name_that_resolves_inside_is_refused(web, dns_server):
    dns_server.answers["uploads.example"] = [["127.0.0.1"]]
    dns_server.answers["metadata.example"] = [["169.254.169.254"]]
    web.routes["/r"] = redirect("http://metadata.example/latest/meta-data/")
    assert refusal(f"http://uploads.example:{web.port}/r") == "ssrf_blocked: 169.254.169.254 is not a public address"
    assert web.requests == [("/r", f"uploads.example:{web.port}")]


@pytest.mark.parametrize("location, reason", [
    ("http://169.254.169.254/latest/", "ssrf_blocked: 169.254.169.254 is not a public address"),
    ("http://[::1]/", "ssrf_blocked: ::1 is not a public address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "ssrf_blocked: 64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64), not a public address"),
    ("http://[64:ff9b::7f00:1]/", "ssrf_blocked: 64:ff9b::7f00:1 embeds 127.0.0.1 (NAT64), not a public address"),
    ("http://[2002:7f00:1::]/", "ssrf_blocked: 2002:7f00:1:: embeds 127.0.0.1 (6to4), not a public address"),
    ("http://[::127.0.0.1]/", "ssrf_blocked: ::127.0.0.1 embeds 127.0.0.1 (IPv4-compatible), not a public address"),
    ("http://[::ffff:0:7f00:1]/", "ssrf_blocked: ::ffff:0:7f00:1 embeds 127.0.0.1 (IPv4-translated), not a public address"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
     "ssrf_blocked: 2001:0:4136:e378:8000:63bf:80ff:fffe embeds 127.0.0.1 (Teredo), not a public address"),
    ("http://[fec0::1]/", "ssrf_blocked: fec0::1 is not a public address"),
    ("http://host:99999/x", "invalid_uri: Port out of range 0-65535"),
    ("http://host:abc/x", "invalid_uri: Port could not be cast to integer value as 'abc'"),
    ("http://[::1/x", "invalid_uri: redirect to 'http://[::1/x': Invalid IPv6 URL"),
])
def test_every_redirect_hop_is_checked_again(web, location, reason):
    web.routes["/r"] = redirect(location)
    assert refusal(f"http://127.0.0.1:{web.port}/r") == reason
    assert web.requests == [("/r", f"127.0.0.1:{web.port}")]


def test_loopback_is_refused_without_the_allowlist(monkeypatch):
    monkeypatch.delenv("GOVERNANCE_FETCH_ALLOW_CIDRS", raising=False)
    server = Server()
    try:
        server.routes["/a"] = body(b"local")
        assert refusal(f"http://127.0.0.1:{server.port}/a") == "ssrf_blocked: 127.0.0.1 is not a public address"
        assert server.requests == []
    finally:
        server.close()


# --- HTTPS on the pinned address ---------------------------------------------------------------------

@pytest.fixture
def tls_web(web, dns_server, tmp_path, monkeypatch):
    certs = make_certificates(tmp_path / "certs")  # a server certificate for 127.0.0.1 and localhost
    monkeypatch.setenv("SSL_CERT_FILE", str(certs["ca"]))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["cert"], certs["key"])
    server = Server(context)
    yield server
    server.close()


def test_https_connects_to_the_pinned_address_and_checks_the_certificate_against_the_name(tls_web, dns_server):
    dns_server.answers["localhost"] = [["127.0.0.1"], ["169.254.169.254"]]
    tls_web.routes["/a.txt"] = body(b"over tls")
    data, _ = fetch_http(f"https://localhost:{tls_web.port}/a.txt", Settings.from_env())
    assert data == b"over tls"
    assert tls_web.requests == [("/a.txt", f"localhost:{tls_web.port}")]
    assert sorted(dns_server.queries) == [("localhost", "A"), ("localhost", "AAAA")]


def test_https_to_a_name_the_certificate_does_not_carry_is_refused(tls_web, dns_server):
    dns_server.answers["uploads.example"] = [["127.0.0.1"]]
    tls_web.routes["/a.txt"] = body(b"never read")
    assert refusal(f"https://uploads.example:{tls_web.port}/a.txt").startswith(
        "unreachable: uploads.example: SSLCertVerificationError: ")
    assert tls_web.requests == []


# --- one deadline for the whole fetch ----------------------------------------------------------------

def test_a_body_dripping_one_byte_at_a_time_ends_at_the_deadline(web, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_FETCH_DEADLINE_S", "1")
    web.routes["/drip"] = drip
    assert refusal(f"http://127.0.0.1:{web.port}/drip") == "fetch_timeout: no complete response within the 1 s deadline"


def test_endless_100_continue_lines_end_at_the_deadline(web, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_FETCH_DEADLINE_S", "1")
    web.routes["/continue"] = endless_continue
    assert refusal(f"http://127.0.0.1:{web.port}/continue") == (
        "fetch_timeout: no complete response within the 1 s deadline")


def test_the_deadline_spans_every_redirect_hop(web, monkeypatch):
    # Each hop answers well inside the deadline; together they do not.
    monkeypatch.setenv("GOVERNANCE_FETCH_DEADLINE_S", "1")
    base = f"http://127.0.0.1:{web.port}"
    for hop in range(3):
        web.routes[f"/hop{hop}"] = redirect(f"{base}/hop{hop + 1}", delay_s=0.6)
    web.routes["/hop3"] = body(b"too late")
    assert refusal(f"{base}/hop0") == "fetch_timeout: no complete response within the 1 s deadline"


# --- bodies that do not match what they declare ------------------------------------------------------

def test_a_body_shorter_than_its_content_length_is_incomplete(web):
    web.routes["/short"] = body(b"x" * 10, length=100)
    assert refusal(f"http://127.0.0.1:{web.port}/short") == (
        "incomplete_body: received 10 of the 100 bytes Content-Length declares")


def test_a_body_longer_than_its_content_length_is_refused(web):
    web.routes["/long"] = body(b"x" * 5000, length=10)
    assert refusal(f"http://127.0.0.1:{web.port}/long") == (
        "body_longer_than_declared: received 5000 bytes, Content-Length declares 10")


def test_a_chunked_body_cut_short_is_incomplete(web):
    web.routes["/chunked"] = truncated_chunked
    assert refusal(f"http://127.0.0.1:{web.port}/chunked") == (
        "incomplete_body: the connection closed inside a chunked body")


def test_a_declared_length_over_the_limit_is_refused_before_reading(web):
    web.routes["/big"] = body(b"x" * 10, length=200_000)
    assert refusal(f"http://127.0.0.1:{web.port}/big") == "too_large: Content-Length 200000 exceeds 100000 bytes"


def test_a_body_without_length_is_cut_at_the_limit(web):
    def unbounded(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"x" * 150_000)
    web.routes["/stream"] = unbounded
    assert refusal(f"http://127.0.0.1:{web.port}/stream") == "too_large: body exceeds 100000 bytes"


def test_an_exact_body_is_returned_with_its_type(web):
    def typed(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", "5")
        handler.end_headers()
        handler.wfile.write(b"hello")
    web.routes["/typed"] = typed
    assert fetch_http(f"http://127.0.0.1:{web.port}/typed", Settings.from_env()) == (b"hello", "text/plain; charset=utf-8")


# --- through the pipeline: bad URIs are one reject, on the first delivery ----------------------------

@pytest.mark.parametrize("uri, reason", [
    ("http://host:99999/x", "invalid_uri: Port out of range 0-65535"),
    ("http://host:abc/x", "invalid_uri: Port could not be cast to integer value as 'abc'"),
    ("http://[::1/x", "invalid_uri: Invalid IPv6 URL"),
    ("{root}/ok.txt%00.png", "invalid_uri: NUL byte in file path"),
])
def test_a_malformed_uri_is_decided_reject_on_its_first_delivery(db, settings, tenant, tmp_path, uri, reason):
    from sqlalchemy import func, select

    from governance.embedding.backends.hashing import HashingEmbedder
    from governance.storage.tables import Decision, Event
    from governance.moderation.pipeline import Context
    from governance.ingest.inbox import accept_events
    from governance.moderation.batch_pipeline import process_upload

    (tmp_path / "ok.txt").write_text("fine words")
    uri = uri.replace("{root}", tmp_path.as_uri())
    [(_, event_id)] = accept_events(db, [(0, {"asset_id": "bad-uri", "tenant": tenant, "uri": uri})]).new
    decision = process_upload(db, Context(settings=settings, embedder=HashingEmbedder(768)), tenant, event_id)
    assert (decision["action"], decision["reason"]) == ("reject", reason)
    assert db.scalar(select(Event.status).where(Event.tenant == tenant)) == "decided"
    assert db.scalar(select(func.count()).select_from(Decision).where(Decision.tenant == tenant)) == 1
