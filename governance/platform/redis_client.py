"""A redis-py client for a Celery-style Redis URL (`redis://`, `rediss://`, `redis+socket://`)."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

SOCKET_SCHEMES = ("redis+socket", "socket")
# Celery also accepts the ssl module's constant names; redis-py only the short ones.
CERT_REQS = {"CERT_NONE": "none", "CERT_OPTIONAL": "optional", "CERT_REQUIRED": "required"}


def redis_from_url(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """kombu spells a unix socket `redis+socket:///path/redis.sock`; redis-py only knows `unix://`."""
    parts = urlsplit(url)
    query = urlencode([(k, CERT_REQS.get(v, v) if k == "ssl_cert_reqs" else v) for k, v in parse_qsl(parts.query)])
    if parts.scheme in SOCKET_SCHEMES:  # kombu names the database `virtual_host` there
        url = f"unix://{parts.netloc}{parts.path}" + (f"?{query.replace('virtual_host=', 'db=')}" if query else "")
    else:
        url = urlunsplit(parts._replace(query=query))
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


# The start of every Lua script that keeps time: `now` in milliseconds from the Redis server's clock,
# so all workers share one clock whatever their own say (replicate_commands lets a script that read
# TIME still write, on Redis before 7).
LUA_NOW_MS = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
"""
