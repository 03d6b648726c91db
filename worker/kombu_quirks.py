"""A narrow workaround for a kombu race on broker connection loss (kombu#582).

When Redis goes away, the consumer tears its connection down: it closes the channels (which try
to restore unacked messages) and runs the acks still pending on its event loop. By then the
channel's transport has dropped its connection info, and kombu's Redis channel raises
AttributeError ('NoneType' object has no attribute 'hostname') while building a client, instead
of a connection error. Both paths only tolerate connection errors, so the AttributeError escapes
and takes the whole worker down.

The fix is at the source: a channel whose transport has no connection info raises redis'
ConnectionError, which kombu and Celery already handle on every path (a failed ack is logged; the
message is redelivered, or recovered from the inbox by the reconciler, and its decision is
committed already, so the redelivery changes nothing).
"""
from __future__ import annotations

import redis
from kombu.transport.redis import Channel

_connparams = Channel._connparams


def _connparams_or_connection_error(self: Channel, asynchronous: bool = False) -> dict:
    transport = getattr(self, "connection", None)
    if transport is None or getattr(transport, "client", None) is None:
        raise redis.exceptions.ConnectionError("the broker connection is closed")
    return _connparams(self, asynchronous=asynchronous)


def install() -> None:
    Channel._connparams = _connparams_or_connection_error
