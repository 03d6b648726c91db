"""The fault-injection hook of the crash tests (tests/e2e/test_faults.py, test_batches.py)."""
from __future__ import annotations

import hashlib
import logging
import os
import signal

from governance.platform.config import Settings

log = logging.getLogger(__name__)


def fault_injection_point(settings: Settings, point: str, tenant: str, event_id: str) -> None:
    """FAULT INJECTION for the crash tests: SIGKILL this process at a named point. Off unless
    GOVERNANCE_TEST_CRASH (Settings.test_crash) is set.

    GOVERNANCE_TEST_CRASH is a comma-separated list of `point:match:times` rules: an event whose id
    contains `match` is killed at `point` (`after_embed`, `after_commit`) on its first `times`
    passes (an integer, counted in files under GOVERNANCE_TEST_CRASH_DIR) or on every pass (`always`).
    """
    rules = settings.test_crash
    if not rules:
        return
    for rule in rules.split(","):
        rule_point, match, times = rule.strip().split(":")
        if rule_point != point or match not in event_id:
            continue
        if times != "always":
            key = hashlib.sha256(f"{point}|{tenant}|{event_id}".encode()).hexdigest()[:32]
            marker = settings.test_crash_dir / key
            if marker.exists() and marker.stat().st_size >= int(times):
                continue
            with open(marker, "ab") as handle:  # one byte per crash
                handle.write(b"x")
        log.warning("fault injection: SIGKILL at %s", point, extra={"tenant": tenant, "event_id": event_id})
        os.kill(os.getpid(), signal.SIGKILL)
