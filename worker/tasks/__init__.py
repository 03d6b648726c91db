"""The Celery tasks: uploads.py decides upload events, maintenance.py relays, reconciles, clusters and alerts."""
