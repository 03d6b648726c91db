"""`governance worker` and `governance beat`: the long-running Celery processes."""
from __future__ import annotations

import argparse

from governance.storage.db import resolve_database_url
from worker.cli.common import fail, prepare_environment


def cmd_worker(args) -> int:
    settings = prepare_environment(need_broker=True)
    from governance.storage.migrate import upgrade
    from worker import beat_watch
    from worker.app import app
    from worker.queues import queue_names

    queues = queue_names(settings)
    roles = [r.strip() for r in args.queues.split(",") if r.strip()] if args.queues else list(queues)
    unknown = [r for r in roles if r not in queues]
    if unknown or not roles:
        return fail(f"--queues takes roles among {', '.join(queues)} (embed only with GOVERNANCE_EMBED_QUEUE set), "
                    f"got {args.queues!r}", 2)
    argv = ["worker", "--loglevel", args.loglevel, "--concurrency", str(args.concurrency),
            "-Q", ",".join(queues[r] for r in roles), "--without-gossip", "--without-mingle"]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    if args.beat:
        try:
            argv += ["--beat", "--schedule", str(beat_watch.prepare_schedule(settings))]
        except beat_watch.BeatUnavailable as exc:
            return fail(f"{exc}; not starting a worker without its beat (--no-beat runs one on purpose)")
    upgrade(resolve_database_url(settings))
    app.worker_main(argv)
    if beat_watch.failure:
        return fail(beat_watch.failure, 1)
    return 0


def cmd_beat(args) -> int:
    settings = prepare_environment(need_broker=True)
    from worker import beat_watch
    from worker.app import app

    try:
        path = beat_watch.prepare_schedule(settings)
    except beat_watch.BeatUnavailable as exc:
        return fail(str(exc))
    return app.start(["beat", "--loglevel", args.loglevel, "--schedule", str(path)]) or 0


def add_commands(sub) -> None:
    wk = sub.add_parser("worker", help="run a Celery worker (with an embedded beat by default)")
    wk.add_argument("--concurrency", type=int, default=2)
    wk.add_argument("--queues", default=None,
                    help="comma-separated roles to consume: uploads, embed (with GOVERNANCE_EMBED_QUEUE), "
                         "maintenance; default all of them")
    wk.add_argument("--hostname", default=None,
                    help="the worker's node name (Celery's -n, e.g. embed@%%h); one per worker on a machine")
    wk.add_argument("--beat", action=argparse.BooleanOptionalAction, default=True)
    wk.add_argument("--loglevel", default="INFO")
    wk.set_defaults(func=cmd_worker)

    bt = sub.add_parser("beat", help="run the Celery beat scheduler on its own")
    bt.add_argument("--loglevel", default="INFO")
    bt.set_defaults(func=cmd_beat)
