"""A narrow workaround for a kombu race on broker connection loss (kombu#582).

When Redis goes away, the consumer closes its event loop and runs the acks still pending on it.
By then the channel's transport has dropped its connection info, and kombu's Redis channel
raises AttributeError ('NoneType' object has no attribute 'hostname') instead of a connection
error. `ack_log_error` only swallows connection errors, so the AttributeError escapes and takes
the whole worker down. Such an ack cannot succeed anyway: the message is redelivered by the
broker, or recovered from the inbox by the reconciler, and its decision is already committed,
so the redelivery changes nothing. We log it like kombu logs other failed acks.
"""
from __future__ import annotations

from kombu.message import Message

_ack_log_error = Message.ack_log_error
_reject_log_error = Message.reject_log_error


def _connection_gone(message: Message) -> bool:
    transport = getattr(message.channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


def _ack_tolerating_lost_connection(self: Message, logger, errors, multiple: bool = False):
    try:
        return _ack_log_error(self, logger, errors, multiple=multiple)
    except AttributeError as exc:
        if not _connection_gone(self):
            raise
        logger.critical("Couldn't ack %r: the broker connection is gone (%r)", self.delivery_tag, exc)


def _reject_tolerating_lost_connection(self: Message, logger, errors, requeue: bool = False):
    try:
        return _reject_log_error(self, logger, errors, requeue=requeue)
    except AttributeError as exc:
        if not _connection_gone(self):
            raise
        logger.critical("Couldn't reject %r: the broker connection is gone (%r)", self.delivery_tag, exc)


def install() -> None:
    Message.ack_log_error = _ack_tolerating_lost_connection
    Message.reject_log_error = _reject_tolerating_lost_connection
