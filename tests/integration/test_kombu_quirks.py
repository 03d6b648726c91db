"""The connection-loss race of worker/kombu_quirks.py, on a real Redis: an ack or a channel close
whose broker connection is gone must end as a connection error that kombu handles, never as an
AttributeError raised into the worker's event loop."""
from __future__ import annotations

import logging

import pytest
from kombu import Connection
from kombu.common import ignore_errors
from kombu.transport.redis import Channel

from worker import kombu_quirks


@pytest.fixture
def without_workaround():
    patched = Channel._connparams
    Channel._connparams = kombu_quirks._connparams
    yield
    Channel._connparams = patched


@pytest.fixture
def message_whose_connection_is_gone(broker_url):
    connection = Connection(broker_url)
    queue = connection.SimpleQueue("governance.test.kombu-quirks")
    queue.put({"probe": 1})
    message = queue.get(timeout=5)
    # What a lost connection leaves behind while an ack is still pending on the closing event loop.
    message.channel._disconnect_pools()
    transport_client, message.channel.connection.client = message.channel.connection.client, None
    yield connection, message
    message.channel.connection.client = transport_client
    connection.close()


def test_without_the_workaround_the_ack_raises(message_whose_connection_is_gone, without_workaround):
    connection, message = message_whose_connection_is_gone
    with pytest.raises(AttributeError):
        message.ack_log_error(logging.getLogger("test"), connection.connection_errors)


def test_with_the_workaround_the_ack_is_logged(message_whose_connection_is_gone, caplog):
    connection, message = message_whose_connection_is_gone
    kombu_quirks.install()
    message.ack_log_error(logging.getLogger("test"), connection.connection_errors)
    assert "Couldn't ack" in caplog.text and "the broker connection is closed" in caplog.text


def test_with_the_workaround_closing_the_channel_is_a_connection_error(message_whose_connection_is_gone):
    connection, message = message_whose_connection_is_gone
    kombu_quirks.install()
    # The consumer closes a lost connection through ignore_errors, as Celery does.
    ignore_errors(connection, message.channel.close)
    assert message.channel.closed


def test_a_live_channel_still_connects(broker_url):
    kombu_quirks.install()
    with Connection(broker_url) as connection:
        queue = connection.SimpleQueue("governance.test.kombu-quirks-2")
        queue.put({"probe": 2})
        assert queue.get(timeout=5).payload == {"probe": 2}
