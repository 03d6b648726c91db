"""`governance banks audit`: likely mislabelled, contradictory, outlying exemplars and thin labels."""
from __future__ import annotations

import json
from pathlib import Path

from governance.storage.db import transaction
from worker.cli.common import build_context, enter_scope, prepare_environment, sessions, tenant_arg


def cmd_banks_audit(args) -> int:
    from governance.moderation.bank_audit_report import audit_bank, thumbnails, write_report

    settings = prepare_environment()
    ctx = build_context(settings)
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)
        report = audit_bank(session, ctx, args.tenant)
        thumbs = thumbnails(session, ctx, args.tenant, report)
    paths = write_report(report, thumbs, Path(args.out))
    print(json.dumps({"tenant": args.tenant, "exemplars": report["exemplars"], "summary": report["summary"],
                      "json": str(paths["json"]), "html": str(paths["html"])}))
    return 0


def add_commands(sub) -> None:
    banks = sub.add_parser("banks", help="exemplar bank health").add_subparsers(dest="bk_command", required=True)
    au = banks.add_parser("audit", help="find likely mislabelled, contradictory and outlying exemplars and "
                                        "thin labels; writes DIR/audit.json and DIR/audit.html")
    au.add_argument("--tenant", type=tenant_arg, default="default")
    au.add_argument("--out", default="bank-audit", help="folder for audit.json and audit.html (default: ./bank-audit)")
    au.set_defaults(func=cmd_banks_audit)

