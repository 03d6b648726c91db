"""The worker layer's own knobs come from the one typed Settings, like every other setting."""
from __future__ import annotations

from governance.platform.config import Settings

WORKER_ENV = ("GOVERNANCE_TASK_SOFT_TIME_LIMIT_S", "GOVERNANCE_METRICS_PORT", "GOVERNANCE_METRICS_ADDR",
              "GOVERNANCE_LOG_FORMAT")


def test_the_worker_settings_default_to_no_metrics_json_logs_and_a_300_s_soft_limit(monkeypatch):
    for name in WORKER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOVERNANCE_METRICS_PORT", "")  # set but empty: off, as before
    settings = Settings.from_env()
    assert (settings.task_soft_time_limit_s, settings.metrics_port, settings.metrics_addr, settings.log_format) == (
        300, None, "0.0.0.0", "json")


def test_the_worker_settings_are_read_from_the_environment(monkeypatch):
    for name, value in zip(WORKER_ENV, ("12", "9109", "127.0.0.1", "text")):
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert (settings.task_soft_time_limit_s, settings.metrics_port, settings.metrics_addr, settings.log_format) == (
        12, 9109, "127.0.0.1", "text")
