"""`governance clusters`: cluster the recent window now, and the stored reports' history."""
from __future__ import annotations

from pathlib import Path

from governance.storage.db import transaction
from worker.cli.common import (build_context, enter_scope, prepare_environment, print_json_lines, sessions,
                               tenant_arg, tenant_transaction)


def cmd_clusters_report(args) -> int:
    from governance.clustering.stored_reports import build_and_store

    settings = prepare_environment()
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)
        paths = build_and_store(session, build_context(settings), args.tenant, Path(args.out) if args.out else None)
    print(paths["json"])
    return 0


def cmd_clusters_history(args) -> int:
    from governance.clustering.stored_reports import history

    with tenant_transaction(args.tenant) as session:
        return print_json_lines(history(session, args.tenant, args.limit))


def add_commands(sub) -> None:
    cl = sub.add_parser("clusters", help="cluster reports").add_subparsers(dest="cl_command", required=True)
    rep = cl.add_parser("report", help="cluster the recent window now and write report.json")
    rep.add_argument("--tenant", type=tenant_arg, default="default")
    rep.add_argument("--out", default=None)
    rep.set_defaults(func=cmd_clusters_report)
    his = cl.add_parser("history", help="stored reports, newest first, with the clusters that changed")
    his.add_argument("--tenant", type=tenant_arg, default="default")
    his.add_argument("--limit", type=int, default=20)
    his.set_defaults(func=cmd_clusters_history)
