"""Structured logs: one JSON object per line, carrying the tenant, event and task ids.

The worker layer binds the ids of the task being run (`bind`/`clear`, from Celery's task
signals); every record logged meanwhile carries them, as do ids passed explicitly with
`extra={...}`. Known secret values are masked in every line, whatever logged them: a last line
of defence behind "secrets are never put in messages" (the embedders already scrub their errors).
No Celery imports: the domain package must not depend on the worker layer.
"""
from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterable

CONTEXT_FIELDS = ("tenant", "event_id", "task_id", "task_name")
MASK = "***"
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_context: ContextVar[dict] = ContextVar("governance_log_context", default={})


def bind(**fields) -> None:
    """Attach ids (tenant, event_id, task_id, task_name…) to every record logged from now on."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def clear() -> None:
    _context.set({})


def current() -> dict:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record, without overriding ids given explicitly."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _Masking:
    def __init__(self, secrets: Iterable[str | None] = ()):
        # Longest first, so a secret that contains another is masked whole. Very short values
        # would mask innocent text and are not secrets worth the name.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Iterable[str | None] = ()):
        super().__init__()
        self._masking = _Masking(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return self._masking.mask(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """The plain format, with the same ids appended and the same masking."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._masking = _Masking(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None))
        return self._masking.mask(f"{line} [{ids}]" if ids else line)


def configure(level: int | str = logging.INFO, fmt: str = "json", secrets: Iterable[str | None] = (),
              stream=None) -> logging.Handler:
    """Replace the root logger's handlers with one structured handler; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(TextFormatter(secrets) if fmt == "text" else JsonFormatter(secrets))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
