"""The one mapping from a transient failure to a retry with backoff, its metric, and the attempts given back."""
from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError

from governance.embedding.protocol import EmbeddingError
from governance.platform import metrics
from governance.storage import repository
from governance.storage.db import transaction
from worker.runtime import sessions

log = logging.getLogger(__name__)
RETRY_CAP_S = 60


class Transient(Exception):
    """A failure worth retrying later; its metric is counted and its attempts are settled already."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter, capped well below the broker's visibility timeout."""
    return random.uniform(0, min(RETRY_CAP_S, 2 ** retries))


@contextmanager
def transient_failures(tenant: str, counted: list[str], extra: dict, what: str = "") -> Iterator[None]:
    """Raise Transient for a database that is away, a transient embedder failure or the soft time limit;
    every other exception passes through unchanged.

    `counted` are the events whose attempt this work counted: a transient embedder or database failure
    is not a poison delivery, so those attempts are given back; past the soft time limit they stay
    counted, so an input that always runs out of time ends as a dead letter. `what` names the work in
    the log ("" for one event, " the batch" for a batch).
    """
    try:
        yield
    except SoftTimeLimitExceeded as exc:
        metrics.task_retry("soft_time_limit")
        log.warning("soft time limit exceeded; retrying%s", what, extra=extra)
        raise Transient(exc) from exc
    except EmbeddingError as exc:
        if not exc.transient:
            raise
        metrics.task_retry("embedder")
        if counted:
            give_back_attempts(tenant, counted)
        raise Transient(exc) from exc
    except DBAPIError as exc:
        if not database_unavailable(exc):
            raise
        metrics.task_retry("database")
        if counted:
            give_back_attempts(tenant, counted)
        else:  # nothing was counted: the database never saw this delivery
            log.warning("database unavailable; retrying%s", what, extra=extra)
        raise Transient(exc) from exc


def database_unavailable(exc: BaseException) -> bool:
    """Connection-level database failures (server down, restarting, connection cut): retry later."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def give_back_attempts(tenant: str, event_ids: list[str]) -> None:
    try:
        with transaction(sessions()) as session:
            repository.enter_tenant(session, tenant)
            repository.uncount_attempts(session, tenant, event_ids)
    except DBAPIError as exc:
        if not database_unavailable(exc):
            raise
        # The database is down too: the attempts stay counted, which is better than losing the
        # retry (a redelivered batch hands such events to single-event tasks).
        log.warning("could not give the attempts back; database unavailable",
                    extra={"tenant": tenant, "events": len(event_ids)})
