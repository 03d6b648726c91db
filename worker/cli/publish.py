"""`governance publish`: accept upload events from JSONL into the inbox and enqueue them."""
from __future__ import annotations

import sys

from governance.platform.config import Settings
from governance.storage.db import transaction
from worker.cli.common import enter_scope, prepare_environment, read_jsonl, sessions


def publish_file(settings: Settings, path: str):
    """Accept every nameable event into the inbox, then enqueue the new ones after commit."""
    from governance.ingest.inbox import accept_events
    from worker.tasks.uploads import enqueue_batches

    items = list(read_jsonl(path))
    with transaction(sessions(settings)) as session:
        enter_scope(session, None)  # cross-tenant by design: the inbox takes every tenant's events
        accepted = accept_events(session, [(n, obj) for n, obj in items if not isinstance(obj, Exception)])
    enqueue_batches(settings, accepted.new)  # after commit, so the task always finds its rows
    problems = sorted([(n, str(obj)) for n, obj in items if isinstance(obj, Exception)] + accepted.refused)
    problems = [f"line {n}: refused: {reason}" for n, reason in problems]
    if accepted.duplicates:
        problems.append(f"{accepted.duplicates} events were already accepted earlier with the same content")
    return accepted, problems


def cmd_publish(args) -> int:
    settings = prepare_environment(need_broker=True)
    accepted, problems = publish_file(settings, args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(len(accepted.new))
    return 0


def add_commands(sub) -> None:
    pub = sub.add_parser("publish", help="accept upload events from JSONL and enqueue them")
    pub.add_argument("file", help="JSONL file, or - for stdin")
    pub.set_defaults(func=cmd_publish)
