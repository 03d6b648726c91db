"""Fetching content by URI without becoming an SSRF proxy or a path-traversal oracle.

* `file://` is read only below `GOVERNANCE_FILE_ROOTS`, opened from the root down with no symlink followed.
* `http(s)://` resolves the host once, refuses any non-global address (loopback, private,
  link-local such as 169.254.169.254, multicast, reserved and deprecated ranges; IPv4 addresses
  embedded in IPv6 forms are decoded and judged), connects to that pinned address, and re-checks
  every redirect hop the same way. One deadline bounds the whole fetch, redirects included. A
  body is read to the end of the connection and must match its Content-Length.
* `post_http` sends a tenant's webhook under the same rules (no redirect followed), and
  `check_destination` judges such a URL when it is given. What counts as public: public_addresses.py.
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

from governance.ingest.public_addresses import AddressNotPublic, check_public
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


def check_address(address: str, allowed: tuple = ()) -> None:
    """Refuse an address that is not public (unless an allowed range holds it): public_addresses.py."""
    try:
        check_public(address, allowed)
    except AddressNotPublic as exc:
        raise FetchRefused(str(exc)) from None


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


def _pin(host: str, port: int, settings: Settings, deadline: _Deadline, allowed: tuple | None = None) -> str:
    """The address to connect to; `allowed` None: any address (the operator opted out of the check)."""
    addresses = _resolve(host, port, settings, deadline)
    # Every address the name resolves to must be allowed: a mixed answer is a rebinding attempt.
    for address in addresses if allowed is not None else ():
        check_address(address, allowed)
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
        pinned = _pin(parts.hostname, port, settings, deadline, settings.fetch_allow_cidrs)
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


def check_destination(uri: str, settings: Settings, *, allow_private: bool = False) -> None:
    """Refuse an http(s) URI that a POST would refuse, now: for a destination a tenant gives to keep.
    With `allow_private` there is no address to judge, so the name is not looked up."""
    parts, port = _parse(uri)
    if not allow_private:
        _pin(parts.hostname, port, settings, _Deadline(settings.http_timeout_s), ())


def post_http(uri: str, body: bytes, headers: dict[str, str], settings: Settings, *,
              allow_private: bool = False) -> int:
    """POST to an http(s) URI under the fetch's rules, and return the status: the host is resolved and
    judged at send time (a name that passed when it was given may point inward now), the connection
    is pinned to the judged address, one deadline (`http_timeout_s`) bounds the exchange, and no
    redirect is followed. Only the status is read."""
    deadline = _Deadline(settings.http_timeout_s)
    parts, port = _parse(uri)
    pinned = _pin(parts.hostname, port, settings, deadline, None if allow_private else ())
    cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    conn = cls(parts.hostname, port, pinned, deadline)
    try:
        conn.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers={"User-Agent": "governance-worker/0.1", "Connection": "close", **headers})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired or isinstance(exc, TimeoutError):
            raise FetchRefused(f"timeout: no response within the {deadline.seconds:g} s deadline") from exc
        raise FetchRefused(f"unreachable: {parts.hostname}: {exc.__class__.__name__}: {exc}") from exc
    finally:
        conn.release()


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
