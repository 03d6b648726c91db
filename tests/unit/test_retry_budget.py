"""Retries end inside the task's soft time limit, and retried messages inside the visibility timeout."""
from __future__ import annotations

import dataclasses

import pytest

from governance.embedding.backends.gemini.retry_budget import (
    EMBED_CALLS_PER_UPLOAD, OTHER_WORK_S, embed_worst_case_s, problems, upload_worst_case_s,
)
from governance.platform.config import Settings

GEMINI_ENV = ("GOVERNANCE_GEMINI_TIMEOUT_S", "GOVERNANCE_GEMINI_MAX_RETRIES", "GOVERNANCE_GEMINI_BACKOFF_CAP_S",
              "GOVERNANCE_GEMINI_QUOTA_MAX_WAIT_S", "GOVERNANCE_GEMINI_RPM", "GOVERNANCE_GEMINI_TPM",
              "GOVERNANCE_FETCH_DEADLINE_S", "GOVERNANCE_TASK_SOFT_TIME_LIMIT_S")


@pytest.fixture
def worker_app(monkeypatch, tmp_path):
    """worker.signals with the default limits; a broker URL so importing the app starts no server."""
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("GOVERNANCE_DATA_DIR", str(tmp_path))
    import worker.app
    import worker.signals

    return worker.signals


def test_the_default_settings_fit_the_worker_limits_with_a_quota_configured(worker_app, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_GEMINI_RPM", "3000")
    settings = Settings.from_env()
    assert worker_app.retry_budget_problems(settings) == []
    # The arithmetic, spelled out: 4 attempts x (5 s quota wait + 20 s timeout) + 3 x 8 s backoff.
    assert embed_worst_case_s(settings) == 4 * (5 + 20) + 3 * 8


def test_a_budget_that_does_not_fit_is_reported(worker_app):
    settings = dataclasses.replace(Settings.from_env(), gemini_timeout_s=60.0, gemini_max_retries=3)
    [problem] = worker_app.retry_budget_problems(settings)
    assert "soft time limit of 300s" in problem


def test_retry_countdowns_beyond_the_visibility_timeout_are_reported():
    found = problems(Settings.from_env(), soft_time_limit_s=300, hard_time_limit_s=360,
                     retry_countdown_cap_s=3300, visibility_timeout_s=3600)
    assert len(found) == 1 and "visibility timeout" in found[0]


def test_quota_waits_only_count_when_a_limit_is_set(monkeypatch):
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    unlimited = Settings.from_env()
    limited = dataclasses.replace(unlimited, gemini_tpm=100_000)
    assert embed_worst_case_s(limited) - embed_worst_case_s(unlimited) == 4 * unlimited.gemini_quota_max_wait_s


def test_an_upload_counts_the_whole_fetch_deadline_not_a_read_timeout(monkeypatch):
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOVERNANCE_FETCH_DEADLINE_S", "40")
    monkeypatch.setenv("GOVERNANCE_HTTP_TIMEOUT_S", "1")
    settings = Settings.from_env()
    assert upload_worst_case_s(settings) == 40 + EMBED_CALLS_PER_UPLOAD * embed_worst_case_s(settings) + OTHER_WORK_S
