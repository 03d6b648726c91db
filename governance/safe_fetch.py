"""Fetching content by URI without becoming an SSRF proxy or a path-traversal oracle.

* `file://` is read only below `GOVERNANCE_FILE_ROOTS`, opened from the root down with no symlink followed.
* `http(s)://` resolves the host once, refuses any non-global address (loopback, private,
  link-local such as 169.254.169.254, multicast, reserved; IPv4-mapped IPv6 included), connects
  to that pinned address, and re-checks every redirect hop the same way. Bodies are streamed
  and cut at the byte limit whatever Content-Length claims.
"""
from __future__ import annotations

import errno
import http.client
import ipaddress
import os
import socket
import ssl
import stat
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

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
