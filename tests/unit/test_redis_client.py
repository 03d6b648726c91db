"""Celery-style broker URLs become redis-py clients for the shared quota (no connection is made)."""
from governance.platform.redis_client import redis_from_url


def kwargs(url: str) -> tuple[str, dict]:
    pool = redis_from_url(url).connection_pool
    return pool.connection_class.__name__, pool.connection_kwargs


def test_the_embedded_unix_socket_url():
    kind, options = kwargs("redis+socket:///tmp/gov/redis/redis.sock")
    assert kind == "UnixDomainSocketConnection" and options["path"] == "/tmp/gov/redis/redis.sock"
    assert kwargs("redis+socket:///tmp/r.sock?virtual_host=3")[1]["db"] == 3


def test_tls_with_celery_spelling_of_certificate_requirements():
    kind, options = kwargs("rediss://:s3cret@cache.internal:6380/2?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/ca.pem")
    assert kind == "SSLConnection"
    assert (options["host"], options["port"], options["db"], options["password"]) == ("cache.internal", 6380, 2, "s3cret")
    assert (options["ssl_cert_reqs"], options["ssl_ca_certs"]) == ("required", "/ca.pem")


def test_plain_tcp_with_timeouts():
    kind, options = kwargs("redis://localhost:6379/0")
    assert kind == "Connection" and options["socket_timeout"] == 5.0
