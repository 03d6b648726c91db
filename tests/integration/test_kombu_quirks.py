"""The ack race of worker/kombu_quirks.py, on a real Redis: an ack whose broker connection is gone
must be logged, not raised into the worker's event loop."""
from __future__ import annotations

import logging

import pytest
from kombu import Connection

from worker import kombu_quirks


@pytest.fixture
def message_whose_connection_is_gone(broker_url):
    connection = Connection(broker_url)
    queue = connection.SimpleQueue("governance.test.kombu-quirks")
    queue.put({"probe": 1})
    message = queue.get(timeout=5)
    # What a lost connection leaves behind while an ack is still pending on the closing event loop.
    message.channel._disconnect_pools()
    transport_client, message.channel.connection.client = message.channel.connection.client, None
    yield message, connection.connection_errors + connection.channel_errors
    message.channel.connection.client = transport_client
    connection.close()


def test_without_the_workaround_the_ack_raises(message_whose_connection_is_gone):
    message, errors = message_whose_connection_is_gone
    with pytest.raises(AttributeError):
        kombu_quirks._ack_log_error(message, logging.getLogger("test"), errors)


def test_with_the_workaround_the_ack_is_logged(message_whose_connection_is_gone, caplog):
    message, errors = message_whose_connection_is_gone
    kombu_quirks.install()
    message.ack_log_error(logging.getLogger("test"), errors)
    assert "the broker connection is gone" in caplog.text


def test_other_attribute_errors_still_raise(broker_url):
    with Connection(broker_url) as connection:
        queue = connection.SimpleQueue("governance.test.kombu-quirks-2")
        queue.put({"probe": 2})
        message = queue.get(timeout=5)
        kombu_quirks.install()
        def buggy_ack(*args, **kwargs):  # a bug of our own, not the lost-connection race
            raise AttributeError("something else")

        message.channel.basic_ack = buggy_ack
        with pytest.raises(AttributeError, match="something else"):
            message.ack_log_error(logging.getLogger("test"), connection.connection_errors)
