"""`governance decisions export`: the stored decisions, one JSON object per line."""
from __future__ import annotations


from worker.cli.common import print_json_lines, tenant_arg, tenant_transaction


def cmd_decisions_export(args) -> int:
    from governance.moderation.decisions import export_decisions

    with tenant_transaction(args.tenant) as session:
        return print_json_lines(export_decisions(session, args.tenant))


def add_commands(sub) -> None:
    dec = sub.add_parser("decisions", help="moderation decisions").add_subparsers(dest="dec_command", required=True)
    exp = dec.add_parser("export", help="one decision per line on stdout, JSON")
    exp.add_argument("--tenant", type=tenant_arg, default="default")
    exp.set_defaults(func=cmd_decisions_export)
