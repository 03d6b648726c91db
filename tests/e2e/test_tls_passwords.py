"""The whole pipeline on a PostgreSQL and a Redis that demand TLS and a password (issue 6).

`db upgrade`, `publish`, a real `governance worker` (with its beat), `decisions export` and
`health` run against URLs of the form operators write:

    postgresql://user:pa%40ss@127.0.0.1:PORT/db?sslmode=verify-full&sslrootcert=CA
    rediss://:password@127.0.0.1:PORT/0?ssl_cert_reqs=required&ssl_ca_certs=CA

The database login owns its database but is no superuser, so forced row-level security applies
to it: every CLI command has to run in its tenant's scope. How the servers demand TLS (a
TLS-terminating proxy, since neither bundled server has TLS built in) is in tls_servers.py.
"""
from __future__ import annotations

import contextlib
import uuid
from urllib.parse import quote

import pytest

from governance.storage import repository
from tests.e2e.conftest import Worker, cli, wait_for_decisions
from tests.e2e.test_faults import assert_invariant, publish, text_events
from tests.e2e.tls_servers import TlsPostgres, TlsRedis, make_certificates

pytestmark = pytest.mark.e2e

# Characters that must be URL-encoded, so a client that forgets to decode them fails to log in.
PG_PASSWORD = f"pa@ss%:/-{uuid.uuid4().hex[:8]}"
REDIS_PASSWORD = f"re@dis%/-{uuid.uuid4().hex[:8]}"
PG_USER, PG_DATABASE = "governance_owner", "governance_tls"


@pytest.fixture(scope="module")
def tls_servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    certs = make_certificates(folder / "certs")
    impostor = make_certificates(folder / "impostor")  # a CA that did not sign the servers' certificates
    postgres, redis = TlsPostgres(folder / "postgres", certs), TlsRedis(folder / "redis", certs, REDIS_PASSWORD)
    postgres.start()
    try:
        postgres.create_owner(PG_USER, PG_PASSWORD, PG_DATABASE)
        redis.start()
        yield postgres, redis, certs, impostor
    finally:
        redis.stop()
        postgres.stop()


def urls(postgres_port: int, redis_port: int, ca) -> tuple[str, str]:
    return (f"postgresql://{PG_USER}:{quote(PG_PASSWORD, safe='')}@127.0.0.1:{postgres_port}/{PG_DATABASE}"
            f"?sslmode=verify-full&sslrootcert={ca}",
            f"rediss://:{quote(REDIS_PASSWORD, safe='')}@127.0.0.1:{redis_port}/0"
            f"?ssl_cert_reqs=required&ssl_ca_certs={ca}")


def test_the_pipeline_runs_on_tls_and_password_urls_and_the_passwords_stay_out_of_the_logs(
        tls_servers, e2e_env, tmp_path):
    postgres, redis, certs, _ = tls_servers
    database_url, broker_url = urls(postgres.port, redis.port, certs["ca"])
    env = dict(e2e_env, DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url,
               GOVERNANCE_DATA_DIR=str(tmp_path / "data"))
    outputs = [cli(env, "db", "upgrade")]
    worker = Worker(env, tmp_path / "worker.log")
    try:
        tenant = f"tls-{uuid.uuid4().hex[:8]}"
        ids = publish(env, tmp_path / "events.jsonl", text_events(tenant, "tls", 6))
        found = wait_for_decisions(env, tenant, len(ids), timeout_s=120)
        assert sorted(d["event_id"] for d in found) == sorted(ids), worker.log()[-3000:]
        health = cli(env, "health")
        outputs.append(health)
        assert "database  ok" in health.stdout and "broker    ok" in health.stdout, health.stdout
    finally:
        worker.stop()
    with scoped_session(database_url) as session:
        assert_invariant(session, tenant, ids)
    # Everything went through the TLS doors; they turn away clients that skip TLS (see below).
    assert postgres.proxy.handshakes > 0 and redis.proxy.handshakes > 0
    log = worker.log()
    assert "insecure SSL" not in log  # kombu's warning when a rediss:// URL carries no ssl options
    for output in [worker.log(), *(o.stdout + o.stderr for o in outputs)]:
        for secret in (PG_PASSWORD, REDIS_PASSWORD, quote(PG_PASSWORD, safe=""), quote(REDIS_PASSWORD, safe="")):
            assert secret not in output


def test_the_servers_refuse_plaintext_and_wrong_passwords(tls_servers):
    import psycopg
    import redis as redis_client

    postgres, redis, certs, _ = tls_servers
    database_url, broker_url = urls(postgres.port, redis.port, certs["ca"])
    with pytest.raises(psycopg.OperationalError, match="TLS connections only"):
        psycopg.connect(database_url.replace("sslmode=verify-full", "sslmode=disable"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(database_url.replace(quote(PG_PASSWORD, safe=""), "wrong"))
    with psycopg.connect(database_url) as conn:
        assert conn.info.pgconn.ssl_in_use and conn.execute("SELECT current_user").fetchone() == (PG_USER,)
    with pytest.raises(redis_client.ConnectionError):
        redis_client.Redis(host="127.0.0.1", port=redis.port, password=REDIS_PASSWORD, socket_timeout=3).ping()
    with pytest.raises(redis_client.AuthenticationError):
        redis_client.Redis.from_url(broker_url.replace(quote(REDIS_PASSWORD, safe=""), "wrong")).ping()
    assert redis_client.Redis.from_url(broker_url).ping()


def test_health_fails_when_the_certificates_are_not_from_the_trusted_ca(tls_servers, e2e_env, tmp_path):
    postgres, redis, _, impostor = tls_servers
    database_url, broker_url = urls(postgres.port, redis.port, impostor["ca"])
    env = dict(e2e_env, DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url,
               GOVERNANCE_DATA_DIR=str(tmp_path / "data"))
    health = cli(env, "health", check=False)
    assert health.returncode == 1
    lines = {line.split()[0]: line for line in health.stdout.splitlines() if line.strip()}
    assert "FAIL" in lines["database"] and "certificate verify failed" in lines["database"], health.stdout
    assert "FAIL" in lines["broker"], health.stdout


def test_a_rediss_url_without_ssl_options_still_verifies_the_certificate(tls_servers, e2e_env, tmp_path):
    """kombu's own default for a bare rediss:// URL is an unverified connection; ours is not, so
    the test CA, which the system does not trust, is refused."""
    postgres, redis, certs, _ = tls_servers
    database_url, broker_url = urls(postgres.port, redis.port, certs["ca"])
    env = dict(e2e_env, DATABASE_URL=database_url, CELERY_BROKER_URL=broker_url.split("?", 1)[0],
               GOVERNANCE_DATA_DIR=str(tmp_path / "data"))
    health = cli(env, "health", check=False)
    lines = {line.split()[0]: line for line in health.stdout.splitlines() if line.strip()}
    assert "FAIL" in lines["broker"] and "certificate verify failed" in lines["broker"], health.stdout
    assert health.returncode == 1


@contextlib.contextmanager
def scoped_session(database_url: str):
    """A session that sees every tenant: the owner is subject to forced RLS here."""
    import dataclasses

    from sqlalchemy.orm import Session

    from governance.platform.config import Settings
    from governance.storage.db import engine_for, resolve_database_url

    url = resolve_database_url(dataclasses.replace(Settings.from_env(), database_url=database_url))
    with Session(engine_for(url)) as session:
        repository.enter_all_tenants(session)
        yield session


def test_the_log_masking_knows_both_spellings_of_a_url_password(monkeypatch):
    from governance.platform.config import Settings
    from worker.signals import _secrets

    database_url, broker_url = urls(5432, 6379, "/ca.crt")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
    secrets = set(_secrets(Settings.from_env()))
    assert {PG_PASSWORD, quote(PG_PASSWORD, safe=""), REDIS_PASSWORD, quote(REDIS_PASSWORD, safe="")} <= secrets
