"""The beat embedded in `governance worker`: checked before it starts, watched while it runs, and
reconciling as soon as it starts.

Celery runs the embedded beat as a child process whose death is only logged, and a worker without
its beat never reconciles, so nothing would re-enqueue events whose messages the broker lost. A
beat that cannot start, or that dies, stops the worker (warm shutdown) and `governance worker`
exits non-zero with the reason.
"""
from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from pathlib import Path

from celery import signals

from governance.platform.config import Settings

log = logging.getLogger(__name__)
_stopping = threading.Event()
failure: str | None = None  # why the embedded beat stopped, for `cmd_worker`'s exit status


class BeatUnavailable(Exception):
    pass


def schedule_path(settings: Settings) -> Path:
    return settings.data_dir / "celerybeat-schedule"


def prepare_schedule(settings: Settings) -> Path:
    """Create the schedule's folder and prove it writable, or raise BeatUnavailable saying why.
    (dbm writes `celerybeat-schedule.dat` and friends beside it; the folder is what must exist.)"""
    path = schedule_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise BeatUnavailable(f"the beat cannot keep its schedule in {path.parent}: {exc}") from exc
    return path


@signals.beat_init.connect
def _reconcile_at_start(sender=None, **_):
    # Not one interval later: a beat restarted after a broker loss recovers at once, and the
    # heartbeat `governance health` reads exists as soon as a worker runs the pass.
    try:
        sender.app.send_task("governance.reconcile_events")
    except Exception:  # noqa: BLE001 - the schedule sends it again shortly
        log.warning("could not send the first reconciler pass; the schedule will", exc_info=True)


@signals.worker_shutting_down.connect
def _shutting_down(**_):
    _stopping.set()


@signals.worker_ready.connect
def _watch_embedded_beat(sender=None, **_):
    beat = getattr(getattr(sender, "controller", None), "beat", None)
    if beat is not None and hasattr(beat, "is_alive"):  # only the process kind can die unseen
        threading.Thread(target=_watch, args=(beat,), name="beat-watch", daemon=True).start()


def _watch(beat) -> None:
    global failure
    while not _stopping.is_set():
        if not beat.is_alive():
            if _stopping.is_set():  # the worker stopped it
                return
            failure = f"the embedded beat stopped (exit code {beat.exitcode}); see its error above"
            log.error("%s: stopping the worker, which must not run without its beat", failure)
            os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown, in the main thread
            return
        _stopping.wait(1.0)
