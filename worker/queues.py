"""Queue names and the broker's visibility timeout: a wire contract that the app, the CLI and the signals share.

The names are settings (GOVERNANCE_UPLOADS_QUEUE, GOVERNANCE_MAINTENANCE_QUEUE, GOVERNANCE_EMBED_QUEUE);
these are the defaults. `governance worker --queues` takes the roles below."""
from __future__ import annotations

from governance.platform.config import Settings

UPLOADS_QUEUE = "governance.uploads"
MAINTENANCE_QUEUE = "governance.maintenance"
ROLES = ("uploads", "embed", "maintenance")
# Retry countdowns and task time limits stay far below this (governance/embedding/backends/gemini/retry_budget.py), so a
# message waiting for its retry or still being worked on is never redelivered early.
VISIBILITY_TIMEOUT_S = 3600


def queue_names(settings: Settings) -> dict[str, str]:
    """{role: queue name} of the queues in use: the embed role only when GOVERNANCE_EMBED_QUEUE is set."""
    names = {"uploads": settings.uploads_queue, "maintenance": settings.maintenance_queue}
    if settings.embed_queue:
        names["embed"] = settings.embed_queue
    return names
