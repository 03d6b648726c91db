"""`governance exemplars`: import, enable, disable and export a tenant's labelled exemplars."""
from __future__ import annotations

import os
import sys

from governance.platform.config import Settings
from governance.storage.db import transaction
from worker.cli.common import (build_context, enter_scope, fail, prepare_environment, print_json_lines,
                               progress, read_jsonl, sessions, tenant_arg, tenant_transaction)


def import_exemplar_file(settings: Settings, path: str, who: str | None, batch_size: int = 64):
    """Embed and store a JSONL file of exemplars, batch by batch; returns (imported, problems)."""
    from itertools import batched

    from governance.moderation.exemplar_banks import import_exemplars
    from governance.ingest.events import InvalidEvent, identify

    ctx, factory = build_context(settings), sessions(settings)
    parsed, problems = [], []
    for number, obj in read_jsonl(path):
        try:
            if isinstance(obj, Exception):
                raise obj
            identify(obj)  # what publish would refuse is refused here too, by line
            parsed.append(obj)
        except InvalidEvent as exc:
            problems.append(f"line {number}: refused: {exc}")
    imported, done = 0, 0
    for batch in batched(parsed, batch_size):
        with transaction(factory) as session:
            enter_scope(session, None)  # cross-tenant by design: each line names its own tenant
            result = import_exemplars(session, ctx, batch, created_by=who)
        imported += result.imported
        problems += [f"rejected exemplar {asset_id}: {reason}" for asset_id, reason in result.rejected]
        done += len(batch)
        progress(done, len(parsed), "embedding exemplars")
    return imported, problems


def cmd_exemplars_import(args) -> int:
    settings = prepare_environment()
    imported, problems = import_exemplar_file(settings, args.file, args.who, args.batch_size)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(imported)
    return 0 if imported or not problems else 1


def cmd_exemplars_toggle(args) -> int:
    from governance.moderation.exemplar_banks import BankError, set_enabled

    settings = prepare_environment()
    enabled = args.ex_command == "enable"
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, args.tenant)
            edit = set_enabled(session, build_context(settings), args.tenant, args.asset_id, enabled, label=args.label,
                               who=args.who)
    except BankError as exc:
        return fail(str(exc))
    verb = "enabled" if enabled else "disabled"
    if edit.labels:
        print(f"{verb} {len(edit.labels)} exemplar(s) of {edit.asset_id} ({', '.join(edit.labels)}); "
              f"bank version {edit.bank_version}")
    else:
        print(f"nothing to change: {edit.asset_id} is already {verb}; bank version {edit.bank_version}")
    for item in edit.retroactive:
        print(f"opened review item {item['review_item']}: {item['asset_id']} at distance {item['distance']}",
              file=sys.stderr)
    return 0


def cmd_exemplars_export(args) -> int:
    from governance.moderation.exemplar_banks import export_exemplars

    with tenant_transaction(args.tenant) as session:
        return print_json_lines(export_exemplars(session, args.tenant))


def add_commands(sub) -> None:
    who = os.environ.get("USER")
    ex = sub.add_parser("exemplars", help="exemplar banks").add_subparsers(dest="ex_command", required=True)
    imp = ex.add_parser("import", help="embed and store labelled exemplars from JSONL")
    imp.add_argument("file")
    imp.add_argument("--batch-size", type=int, default=64)
    imp.add_argument("--who", default=who, help="recorded as the exemplars' creator")
    imp.set_defaults(func=cmd_exemplars_import)
    for name, helptext in (("disable", "take an asset's exemplars out of the bank"),
                           ("enable", "put an asset's exemplars back into the bank")):
        cmd = ex.add_parser(name, help=helptext)
        cmd.add_argument("asset_id")
        cmd.add_argument("--label", default=None, help="only the exemplar of this label (default: all)")
        cmd.add_argument("--tenant", type=tenant_arg, default="default")
        cmd.add_argument("--who", default=who)
        cmd.set_defaults(func=cmd_exemplars_toggle)
    exp = ex.add_parser("export", help="the tenant's exemplars, one JSON object per line")
    exp.add_argument("--tenant", type=tenant_arg, default="default")
    exp.set_defaults(func=cmd_exemplars_export)
