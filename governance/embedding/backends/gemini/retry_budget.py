"""Worst-case time of a task's Gemini calls, so retries provably end inside the task's limits.

Celery over Redis redelivers a message that stays unacknowledged past the broker's visibility
timeout, and a task past its soft time limit is cut off: both would turn a slow but healthy
retry sequence into duplicate or dead work. Every bound below comes from the settings.
"""
from __future__ import annotations

from governance.platform.config import Settings

# The decision pipeline embeds an asset at most twice (classification, then clustering for text).
EMBED_CALLS_PER_UPLOAD = 2
# Database round trips, kNN and the anomaly threshold of one upload, with room to spare.
OTHER_WORK_S = 15.0


def embed_worst_case_s(settings: Settings, waves: int = 1) -> float:
    """One embed() call: every attempt may wait the whole quota bound and then time out, and every
    retry sleeps at most the backoff cap (a server's RetryInfo hint is capped too). `waves`: how
    many rounds of `max_in_flight` parallel calls one embed() needs (1 up to 100 x max_in_flight
    items)."""
    attempts = settings.gemini_max_retries + 1
    quota_wait = settings.gemini_quota_max_wait_s if (settings.gemini_rpm or settings.gemini_tpm) else 0.0
    per_call = attempts * (quota_wait + settings.gemini_timeout_s) + settings.gemini_max_retries * settings.gemini_backoff_cap_s
    return waves * per_call


def upload_worst_case_s(settings: Settings) -> float:
    """One process_upload delivery: fetch the asset (one deadline, redirects included), embed it, the rest."""
    return settings.fetch_deadline_s + EMBED_CALLS_PER_UPLOAD * embed_worst_case_s(settings) + OTHER_WORK_S


def problems(settings: Settings, soft_time_limit_s: float, hard_time_limit_s: float,
             retry_countdown_cap_s: float, visibility_timeout_s: float) -> list[str]:
    """What in these settings breaks the budget; empty when it holds."""
    found = []
    worst = upload_worst_case_s(settings)
    if worst >= soft_time_limit_s:
        found.append(f"an upload's Gemini retries may take {worst:.0f}s, not less than the task's soft time"
                     f" limit of {soft_time_limit_s:g}s: lower GOVERNANCE_GEMINI_TIMEOUT_S,"
                     " GOVERNANCE_GEMINI_MAX_RETRIES, GOVERNANCE_GEMINI_BACKOFF_CAP_S or"
                     " GOVERNANCE_GEMINI_QUOTA_MAX_WAIT_S")
    # A retried task waits out its countdown unacknowledged in a worker (Redis ETA), then runs.
    longest_unacked = retry_countdown_cap_s + hard_time_limit_s
    if longest_unacked >= visibility_timeout_s:
        found.append(f"a retry countdown ({retry_countdown_cap_s:g}s) plus the hard time limit"
                     f" ({hard_time_limit_s:g}s) reaches the broker's visibility timeout ({visibility_timeout_s:g}s):"
                     " the broker would deliver the message a second time")
    return found
