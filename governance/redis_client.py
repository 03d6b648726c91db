"""A redis-py client for a Celery-style Redis URL (`redis://`, `rediss://`, `redis+socket://`)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import redis

SOCKET_SCHEMES = ("redis+socket", "socket")


def redis_from_url(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """kombu spells a unix socket `redis+socket:///path/redis.sock`; redis-py only knows `unix://`."""
    parts = urlsplit(url)
    if parts.scheme in SOCKET_SCHEMES:
        db = parse_qs(parts.query).get("db", ["0"])[0]
        return redis.Redis(unix_socket_path=parts.path, db=int(db), password=parts.password,
                           socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
