"""`governance hashes`: import, export, enable and disable a tenant's hash bank (PDQ, MD5, SHA-256, vPDQ)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from governance.storage.db import transaction
from worker.cli.common import (build_context, enter_scope, fail, prepare_environment, print_json_lines, sessions,
                               tenant_arg, tenant_transaction)


def cmd_hashes_import(args) -> int:
    from governance.moderation.hash_banks import import_hashes
    from governance.moderation.hash_files import Defaults, HashFileError, parse_hash_file

    data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    defaults = Defaults(signal_type=args.signal_type, label=args.label, polarity=args.polarity, source=args.source)
    try:
        entries = parse_hash_file(data, defaults)
    except HashFileError as exc:
        for error in exc.errors:
            print(f"{args.file}: {error}", file=sys.stderr)
        return fail(f"nothing imported: {len(exc.errors)} bad line(s)")
    settings = prepare_environment()
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)
        result = import_hashes(session, build_context(settings), args.tenant, entries, who=args.who)
    for item in result.retroactive:
        print(f"opened review item {item['review_item']}: {item['asset_id']} matches a new {item['label']} "
              f"{item['signal_type']} hash at distance {item['distance']}", file=sys.stderr)
    print(json.dumps({"tenant": args.tenant, "imported": result.imported, "by_type": result.by_type,
                      "bank_version": result.bank_version, "retroactive": len(result.retroactive)}))
    return 0


def cmd_hashes_export(args) -> int:
    from governance.moderation.hash_banks import export_hashes

    with tenant_transaction(args.tenant) as session:
        return print_json_lines(export_hashes(session, args.tenant))


def cmd_hashes_toggle(args) -> int:
    from governance.moderation.hash_banks import HashBankError, set_hashes_enabled

    settings = prepare_environment()
    enabled = args.hs_command == "enable"
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, args.tenant)
            edit = set_hashes_enabled(session, build_context(settings), args.tenant, enabled, signal=args.signal,
                                      signal_type=args.signal_type, label=args.label, source=args.source,
                                      who=args.who)
    except HashBankError as exc:
        return fail(str(exc))
    verb = "enabled" if enabled else "disabled"
    print(f"{verb} {len(edit.changed)} hash(es); hash bank version {edit.bank_version}")
    for item in edit.retroactive:
        print(f"opened review item {item['review_item']}: {item['asset_id']} at distance {item['distance']}",
              file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    who = os.environ.get("USER")
    hs = sub.add_parser("hashes", help="hash banks (PDQ, MD5, SHA-256, vPDQ)").add_subparsers(dest="hs_command",
                                                                                       required=True)
    imp = hs.add_parser("import", help="add a hash list (JSONL, CSV with a header, or one hash a line) to the "
                                       "tenant's hash bank; any bad line imports nothing")
    imp.add_argument("file", help="the list, or - for standard input")
    imp.add_argument("--tenant", type=tenant_arg, default="default")
    imp.add_argument("--label", default=None, help="for lines that name none")
    imp.add_argument("--source", default=None, help="provenance, for lines that name none (default: import)")
    imp.add_argument("--signal-type", default=None, help="pdq|md5|sha256|vpdq, for lines that name none")
    imp.add_argument("--polarity", default=None, choices=("positive", "negative"),
                     help="for lines that name none (default: positive; negative is an allowlist)")
    imp.add_argument("--who", default=who, help="recorded as the hashes' creator")
    imp.set_defaults(func=cmd_hashes_import)
    exp = hs.add_parser("export", help="the tenant's bank hashes as JSONL (the form import reads)")
    exp.add_argument("--tenant", type=tenant_arg, default="default")
    exp.set_defaults(func=cmd_hashes_export)
    for name, helptext in (("disable", "take bank hashes out of matching"), ("enable", "put bank hashes back")):
        cmd = hs.add_parser(name, help=f"{helptext}: by --signal, or a whole --source")
        cmd.add_argument("--signal", default=None, help="the hash (a vPDQ hash: its JSON, or the SHA-256 of it)")
        cmd.add_argument("--source", default=None)
        cmd.add_argument("--signal-type", default=None)
        cmd.add_argument("--label", default=None)
        cmd.add_argument("--tenant", type=tenant_arg, default="default")
        cmd.add_argument("--who", default=who)
        cmd.set_defaults(func=cmd_hashes_toggle)
