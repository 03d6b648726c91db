"""Fetching content by URI without becoming an SSRF proxy or a path-traversal oracle.

* `file://` is read only below `GOVERNANCE_FILE_ROOTS` (after resolving symlinks).
* `http(s)://` resolves the host once, refuses any non-global address (loopback, private,
  link-local such as 169.254.169.254, multicast, reserved; IPv4-mapped IPv6 included), connects
  to that pinned address, and re-checks every redirect hop the same way. Bodies are streamed
  and cut at the byte limit whatever Content-Length claims.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

MAX_REDIRECTS = 3


class FetchRefused(Exception):
    """The URI is not allowed or could not be read; the message is the reject reason."""


def read_file_uri(uri: str, roots: tuple[Path, ...], max_bytes: int) -> bytes:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise FetchRefused(f"file_remote_host: file URI names host {parts.netloc!r}")
    path = Path(unquote(parts.path))
    if not roots:
        raise FetchRefused("file_roots_unset: GOVERNANCE_FILE_ROOTS is empty, file:// URIs are disabled")
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise FetchRefused(f"path_outside_roots: {path} is not under GOVERNANCE_FILE_ROOTS")
    if not resolved.is_file():
        raise FetchRefused(f"file_not_found: {path}")
    with open(resolved, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FetchRefused(f"too_large: file exceeds {max_bytes} bytes")
    return data


def _check_address(address: str) -> None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise FetchRefused(f"ssrf_blocked: address {ip} is not a public address")


def _resolve_pinned(host: str, port: int) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"dns_failed: {host}: {exc}") from exc
    addresses = sorted({info[4][0] for info in infos})
    # Every address the name resolves to must be public: a mixed answer is a rebinding attempt.
    for address in addresses:
        _check_address(address)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, pinned, timeout):
        super().__init__(host, port, timeout=timeout)
        self._pinned = pinned

    def connect(self):
        self.sock = socket.create_connection((self._pinned, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, pinned, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._pinned = pinned

    def connect(self):
        raw = socket.create_connection((self._pinned, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def fetch_http(uri: str, max_bytes: int, timeout_s: float, *, allow_private: bool = False) -> tuple[bytes, str | None]:
    """Return (body, content type). `allow_private` exists for tests against loopback servers."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused(f"unsupported_uri: {parts.scheme or 'no'} scheme")
        if parts.username or parts.password:
            raise FetchRefused("unsupported_uri: credentials in URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        pinned = _resolve_pinned(parts.hostname, port) if not allow_private else socket.gethostbyname(parts.hostname)
        cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = cls(parts.hostname, port, pinned, timeout_s)
        try:
            path = parts.path or "/"
            conn.request("GET", path + (f"?{parts.query}" if parts.query else ""),
                         headers={"User-Agent": "governance-worker/0.1", "Accept": "*/*"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchRefused(f"http_error: redirect {response.status} without Location")
                uri = urljoin(uri, location)
                continue
            if response.status != 200:
                raise FetchRefused(f"http_error: status {response.status}")
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FetchRefused(f"too_large: body exceeds {max_bytes} bytes")
            return body, response.getheader("Content-Type")
        except (OSError, http.client.HTTPException) as exc:
            raise FetchRefused(f"unreachable: {parts.hostname}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            conn.close()
    raise FetchRefused(f"too_many_redirects: more than {MAX_REDIRECTS}")
