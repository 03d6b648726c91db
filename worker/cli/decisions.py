"""`governance decisions export`: the stored decisions, one JSON object per line."""
from __future__ import annotations

import json
import sys

from governance.storage.db import transaction
from worker.cli.common import enter_scope, prepare_environment, sessions, tenant_arg


def cmd_decisions_export(args) -> int:
    from governance.moderation.decisions import export_decisions

    settings = prepare_environment()
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)
        for decision in export_decisions(session, args.tenant):
            sys.stdout.write(json.dumps(decision, ensure_ascii=False) + "\n")
    return 0


def add_commands(sub) -> None:
    dec = sub.add_parser("decisions", help="moderation decisions").add_subparsers(dest="dec_command", required=True)
    exp = dec.add_parser("export", help="one decision per line on stdout, JSON")
    exp.add_argument("--tenant", type=tenant_arg, default="default")
    exp.set_defaults(func=cmd_decisions_export)
