"""Where the outbox relay delivers: a signed webhook and/or a broker queue, as configured."""
from __future__ import annotations

from kombu import Exchange, Queue

from governance.delivery import webhooks
from governance.delivery.outbox_relay import Sink
from governance.platform.config import Settings
from governance.storage.tables import OutboxMessage


def configured_sinks(settings: Settings) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.webhook_url:
        def post_webhook(message: OutboxMessage) -> None:
            webhooks.post(settings.webhook_url, settings.webhook_secret, message.message_id, message.payload,
                          settings.http_timeout_s)
        sinks.append(post_webhook)
    if settings.decision_queue:
        queue_name = settings.decision_queue

        def publish_to_queue(message: OutboxMessage) -> None:
            from celery import current_app as app  # the running worker's app (worker.app would be a cycle)

            queue = Queue(queue_name, Exchange(queue_name, type="direct"), routing_key=queue_name)
            with app.producer_or_acquire() as producer:
                producer.publish(
                    {"message_id": message.message_id, "kind": message.kind, "payload": message.payload},
                    serializer="json", exchange=queue.exchange, routing_key=queue_name, declare=[queue],
                    headers={"message_id": message.message_id}, retry=True,
                )
        sinks.append(publish_to_queue)
    return sinks
