"""Fetching content by URI without becoming an SSRF proxy or a path-traversal oracle.

* `file://` is read only below `GOVERNANCE_FILE_ROOTS`, opened from the root down with no symlink followed.
* `http(s)://` resolves the host once, refuses any non-global address (loopback, private,
  link-local such as 169.254.169.254, multicast, reserved and deprecated ranges; IPv4 addresses
  embedded in IPv6 forms are decoded and judged), connects to that pinned address, and re-checks
  every redirect hop the same way. One deadline bounds the whole fetch, redirects included. A
  body is read to the end of the connection and must match its Content-Length.
"""
from __future__ import annotations

import errno
import http.client
import ipaddress
import os
import socket
import ssl
import stat
import threading
import time
from pathlib import Path
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from governance.platform.config import Settings

MAX_REDIRECTS = 3


class FetchRefused(Exception):
    """The URI is not allowed or could not be read; the message is the reject reason."""


def read_file_uri(uri: str, roots: tuple[Path, ...], max_bytes: int) -> bytes:
    """The bytes of a file below one of `roots`, checked on what was opened rather than on a name.

    Resolving a path, checking it and opening it later is a race: a folder swapped for a symlink
    in between makes the open land outside the roots. So the file is opened one component at a
    time from the root's descriptor, never following a symlink, and the final descriptor must be a
    regular file. Every symlink below a root is refused, even one pointing back inside: it can be
    repointed after any check, and refusing all of them needs no judgement of where it leads.
    The roots themselves were resolved once (config), so a root may be named through a symlink.
    """
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise FetchRefused(f"file_remote_host: file URI names host {parts.netloc!r}")
    if not roots:
        raise FetchRefused("file_roots_unset: GOVERNANCE_FILE_ROOTS is empty, file:// URIs are disabled")
    path = unquote(parts.path)
    if "\x00" in path or not path.startswith("/"):
        raise FetchRefused(f"invalid_path: {path!r} is not an absolute path without NUL bytes")
    names = [name for name in path.split("/") if name not in ("", ".")]
    if ".." in names:
        raise FetchRefused(f"path_traversal: {path!r} has a '..' component")
    root, below = _split_at_root(names, roots, path)
    fd = _open_beneath(root, below, path)
    try:
        return _read_regular_file(fd, path, max_bytes)
    finally:
        os.close(fd)


# O_PATH|O_NOFOLLOW opens a symlink itself rather than failing, so fstat names exactly what was met
# (O_DIRECTORY|O_NOFOLLOW would say ENOTDIR for a symlink); without O_PATH (macOS) a symlink is ELOOP.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY | os.O_DIRECTORY) | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would wait for a writer; the fstat check refuses it next.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {stat.S_IFDIR: "folder", stat.S_IFIFO: "FIFO", stat.S_IFCHR: "character device",
          stat.S_IFBLK: "block device", stat.S_IFSOCK: "socket"}


def _split_at_root(names: list[str], roots: tuple[Path, ...], shown: str) -> tuple[Path, list[str]]:
    """(root, the components below it) for the shortest prefix of the path that is a root.

    A prefix is compared after resolving it because only the operator controls what lies above a
    root (/tmp may be a symlink); the shortest match keeps every component below the root subject
    to the no-symlink walk.
    """
    for depth in range(len(names) + 1):
        prefix = Path(os.path.realpath(Path("/", *names[:depth])))
        if prefix in roots:
            return prefix, names[depth:]
    raise FetchRefused(f"path_outside_roots: {shown} is not under GOVERNANCE_FILE_ROOTS")


def _open_beneath(root: Path, names: list[str], shown: str) -> int:
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FetchRefused(f"file_unreadable: root of {shown}: {_errno_name(exc)}") from None
    try:
        for depth, name in enumerate(names):
            last = depth == len(names) - 1
            try:
                child = os.open(name, _FILE_FLAGS if last else _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _open_refusal(exc, name, shown) from None
            os.close(fd)
            fd = child
            if not last:
                _check_folder(fd, name, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_folder(fd: int, name: str, shown: str) -> None:
    # Judged on the descriptor, so the answer is about what was opened, not what is there now.
    mode = os.fstat(fd).st_mode
    if stat.S_ISLNK(mode):
        raise FetchRefused(f"symlink_refused: {shown}: {name!r} is a symlink below the root")
    if not stat.S_ISDIR(mode):
        raise FetchRefused(f"not_a_directory: {shown}: {name!r} is not a folder")


def _open_refusal(exc: OSError, name: str, shown: str) -> FetchRefused:
    if exc.errno == errno.ELOOP:
        return FetchRefused(f"symlink_refused: {shown}: {name!r} is a symlink below the root")
    if exc.errno == errno.ENOENT:
        return FetchRefused(f"file_not_found: {shown}")
    if exc.errno == errno.ENOTDIR:
        return FetchRefused(f"not_a_directory: {shown}: {name!r} is not a folder")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return FetchRefused(f"permission_denied: {shown}")
    return FetchRefused(f"file_unreadable: {shown}: {_errno_name(exc)}")


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno, str(exc.errno))


def _read_regular_file(fd: int, shown: str, max_bytes: int) -> bytes:
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FetchRefused(f"not_a_regular_file: {shown} is a {_KINDS.get(stat.S_IFMT(mode), 'special file')}")
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FetchRefused(f"file_unreadable: {shown}: {_errno_name(exc)}") from None
    if size > max_bytes:
        raise FetchRefused(f"too_large: file exceeds {max_bytes} bytes")
    return b"".join(chunks)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Deprecated ranges that `ipaddress` still calls global: site-local (RFC 3879), the 6bone
# (RFC 3701) and the 6to4 relay anycast prefix (RFC 7526).
_DEPRECATED = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("3ffe::/16"),
               ipaddress.ip_network("192.88.99.0/24"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries, and the form's name; traffic to it reaches that host."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return low32, "NAT64"
    if ip in _NAT64_LOCAL:
        value = int(ip)
        if (value >> 32) & (1 << 48) - 1 == 0:  # the /96 layout: the address in the last 32 bits
            return low32, "NAT64"
        # RFC 6052's layout for a /48 prefix: two octets, the reserved u octet, then two more.
        return ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | ((value >> 40) & 0xFFFF)), "NAT64"
    if ip in _IPV4_TRANSLATED:
        return low32, "IPv4-translated"
    if ip in _IPV4_COMPATIBLE and not (ip.is_loopback or ip.is_unspecified):
        return low32, "IPv4-compatible"
    if ip.sixtofour:
        return ip.sixtofour, "6to4"
    if ip.teredo:
        return ip.teredo[1], "Teredo"
    return None


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)
            and not any(ip in net for net in _DEPRECATED if net.version == ip.version))


def check_address(address: str, allowed: tuple = ()) -> None:
    """Refuse an address that is not public (unless an allowed range holds it), judging the IPv4
    address inside NAT64, 6to4, Teredo, IPv4-compatible, -mapped and -translated forms."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if any(ip in net for net in allowed if net.version == ip.version):
        return
    embedded = _embedded_ipv4(ip) if ip.version == 6 else None
    if embedded and not _is_public(embedded[0]):
        raise FetchRefused(f"ssrf_blocked: {address} embeds {embedded[0]} ({embedded[1]}), not a public address")
    # NAT64 and IPv4-mapped addresses reach the IPv4 host itself; the other forms' own ranges
    # (reserved, deprecated, private) are judged too.
    if embedded and embedded[1] in ("NAT64", "IPv4-mapped"):
        return
    if not _is_public(ip):
        raise FetchRefused(f"ssrf_blocked: {address} is not a public address")


def _parse(uri: str) -> tuple[SplitResult, int]:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:  # a port out of range or not a number, an unclosed IPv6 bracket
        raise FetchRefused(f"invalid_uri: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"unsupported_uri: {parts.scheme or 'no'} scheme")
    if parts.username or parts.password:
        raise FetchRefused("unsupported_uri: credentials in URL")
    if port == 0:
        raise FetchRefused("invalid_uri: port 0")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        raise FetchRefused("invalid_uri: control character or space in URI")
    return parts, port or (443 if parts.scheme == "https" else 80)


class _Deadline:
    """The one deadline of a fetch: DNS, connects, TLS handshakes, headers and bodies of every hop."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self.expired = False

    def remaining(self) -> float:
        left = self._at - time.monotonic()
        if left <= 0:
            raise self.error()
        return left

    def error(self) -> FetchRefused:
        return FetchRefused(f"fetch_timeout: no complete response within the {self.seconds:g} s deadline")


def _resolve(host: str, port: int, settings: Settings, deadline: _Deadline) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    if settings.fetch_nameservers:
        return _ask_nameservers(host, settings.fetch_nameservers, deadline)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise FetchRefused(f"dns_failed: {host}: {exc}") from exc
    return sorted({info[4][0] for info in infos})


def _ask_nameservers(host: str, nameservers: tuple[tuple[str, int], ...], deadline: _Deadline) -> list[str]:
    import dns.exception
    import dns.nameserver
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers]
    try:
        answer = resolver.resolve_name(host, lifetime=deadline.remaining())
    except dns.exception.Timeout as exc:
        raise deadline.error() from exc
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise FetchRefused(f"dns_failed: {host}: {exc.__class__.__name__}: {exc}") from exc
    return sorted(set(answer.addresses()))


def _pin(host: str, port: int, settings: Settings, deadline: _Deadline) -> str:
    addresses = _resolve(host, port, settings, deadline)
    # Every address the name resolves to must be allowed: a mixed answer is a rebinding attempt.
    for address in addresses:
        check_address(address, settings.fetch_allow_cidrs)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the pinned address, and shuts the connection down when the deadline passes.

    A socket timeout bounds each read, not the fetch: a body dripping one byte at a time, endless
    `100 Continue` lines or a stalled TLS handshake would each go on. The watchdog's shutdown ends
    whatever read is blocked, inside http.client or ssl alike."""

    def __init__(self, host, port, pinned, deadline: _Deadline):
        super().__init__(host, port, timeout=deadline.remaining())
        self._pinned, self._deadline = pinned, deadline
        self._guard: socket.socket | None = None
        self._watchdog: threading.Timer | None = None

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self._pinned, self.port), self._deadline.remaining())
        try:
            left = self._deadline.remaining()
        except FetchRefused:
            sock.close()
            raise
        # A duplicate descriptor of our own: shutdown() acts on the connection behind every
        # descriptor, and TLS wrapping detaches the original socket object.
        self._guard = sock.dup()
        self._watchdog = threading.Timer(left, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()
        return sock

    def _expire(self) -> None:
        self._deadline.expired = True
        try:
            self._guard.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by release()

    def connect(self):
        self.sock = self._open()

    def release(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        if self._guard:
            self._guard.close()
        self.close()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    def connect(self):
        # The certificate is checked against the URL's host name, not the pinned address.
        self.sock = ssl.create_default_context().wrap_socket(self._open(), server_hostname=self.host)


def fetch_http(uri: str, settings: Settings) -> tuple[bytes, str | None]:
    """Return (body, content type) of an http(s) URI, or raise FetchRefused with the reject reason."""
    deadline = _Deadline(settings.fetch_deadline_s)
    for _ in range(MAX_REDIRECTS + 1):
        parts, port = _parse(uri)
        pinned = _pin(parts.hostname, port, settings, deadline)
        cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = cls(parts.hostname, port, pinned, deadline)
        try:
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                         headers={"User-Agent": "governance-worker/0.1", "Accept": "*/*", "Connection": "close"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchRefused(f"http_error: redirect {response.status} without Location")
                try:
                    uri = urljoin(uri, location)
                except ValueError as exc:
                    raise FetchRefused(f"invalid_uri: redirect to {location!r}: {exc}") from exc
                continue
            if response.status != 200:
                raise FetchRefused(f"http_error: status {response.status}")
            try:
                body = _read_body(response, settings.max_bytes)
            except FetchRefused:
                if deadline.expired:  # the watchdog's shutdown reads as an early end of the body
                    raise deadline.error() from None
                raise
            if deadline.expired:
                raise deadline.error()
            return body, response.getheader("Content-Type")
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired or isinstance(exc, TimeoutError):
                raise deadline.error() from exc
            if isinstance(exc, http.client.IncompleteRead):
                raise FetchRefused("incomplete_body: the connection closed inside a chunked body") from exc
            raise FetchRefused(f"unreachable: {parts.hostname}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            conn.release()
    raise FetchRefused(f"too_many_redirects: more than {MAX_REDIRECTS}")


def _read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = response.length
    if declared is not None and declared > max_bytes:
        raise FetchRefused(f"too_large: Content-Length {declared} exceeds {max_bytes} bytes")
    # http.client stops at the declared length and says nothing about what follows it; reading to
    # the end of the connection (the request asked to close it) shows a body longer than declared.
    response.length = None
    chunks, size = [], 0
    while chunk := response.read(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise FetchRefused(f"too_large: body exceeds {max_bytes} bytes")
    if declared is not None and size < declared:
        raise FetchRefused(f"incomplete_body: received {size} of the {declared} bytes Content-Length declares")
    if declared is not None and size > declared:
        raise FetchRefused(f"body_longer_than_declared: received {size} bytes, Content-Length declares {declared}")
    return b"".join(chunks)
