"""The Celery adapter around the `governance` domain. Nothing in `governance` imports this."""
