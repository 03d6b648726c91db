"""`governance review`: what waits for a reviewer, and a reviewer's override."""
from __future__ import annotations

import json
import os

from governance.storage.db import transaction
from worker.cli.common import (build_context, enter_scope, fail, prepare_environment, print_json_lines,
                               sessions, tenant_arg, tenant_transaction)


def cmd_review_list(args) -> int:
    from governance.moderation.review import pending

    with tenant_transaction(args.tenant) as session:
        return print_json_lines(pending(session, args.tenant, args.limit))


def cmd_review_decide(args) -> int:
    from governance.moderation.review import ReviewError, decide

    settings = prepare_environment()
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, args.tenant)
            done = decide(session, build_context(settings), args.tenant, args.asset_id, args.action, label=args.label,
                          who=args.who, note=args.note)
    except ReviewError as exc:
        return fail(str(exc))
    print(json.dumps({"audit_id": done.audit_id, "event_id": done.event_id, "asset_id": done.asset_id,
                      "before": done.before, "after": done.after, "message_id": done.message_id,
                      "retroactive": done.retroactive}, ensure_ascii=False))
    return 0


def add_commands(sub) -> None:
    rv = sub.add_parser("review", help="the review loop").add_subparsers(dest="rv_command", required=True)
    rl = rv.add_parser("list", help="what waits for a reviewer, one JSON object per line")
    rl.add_argument("--tenant", type=tenant_arg, default="default")
    rl.add_argument("--limit", type=int, default=100)
    rl.set_defaults(func=cmd_review_list)
    rd = rv.add_parser("decide", help="override an asset's decision; the asset becomes an exemplar")
    rd.add_argument("asset_id")
    rd.add_argument("action", choices=("allow", "block"))
    rd.add_argument("--label", default=None)
    rd.add_argument("--who", default=os.environ.get("USER"))
    rd.add_argument("--note", default=None)
    rd.add_argument("--tenant", type=tenant_arg, default="default")
    rd.set_defaults(func=cmd_review_decide)
