"""Results out: the outbox relay, signed webhooks and anomaly alerts."""
