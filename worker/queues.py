"""Queue names and the broker's visibility timeout: a wire contract that the app, the CLI and the signals share."""
from __future__ import annotations

UPLOADS_QUEUE = "governance.uploads"
MAINTENANCE_QUEUE = "governance.maintenance"
# Retry countdowns and task time limits stay far below this (governance/embedding/backends/gemini/retry_budget.py), so a
# message waiting for its retry or still being worked on is never redelivered early.
VISIBILITY_TIMEOUT_S = 3600
