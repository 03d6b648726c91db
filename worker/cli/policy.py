"""`governance policy`: apply, show and list a tenant's versioned policy files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from governance.storage.db import transaction
from worker.cli.common import enter_scope, fail, prepare_environment, sessions, tenant_arg, tenant_transaction


def cmd_policy_apply(args) -> int:
    from governance.ingest.events import InvalidEvent, valid_tenant
    from governance.moderation.policy_store import PolicyError, apply_policy, parse_policy

    settings = prepare_environment()
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        tenant = valid_tenant(args.tenant or parse_policy(text).tenant or "default")
        with transaction(sessions(settings)) as session:
            enter_scope(session, tenant)
            applied = apply_policy(session, text, tenant=tenant, who=args.who)
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"cannot read {args.file}: {exc}")
    except (PolicyError, InvalidEvent) as exc:
        return fail(f"invalid policy {args.file}: {exc}")
    state = "applied" if applied.created else "re-applied (current again)"
    print(f"policy {applied.version} {state} for tenant {applied.tenant}")
    return 0


def cmd_policy_show(args) -> int:
    from governance.moderation.policy_store import policy_file

    with tenant_transaction(args.tenant) as session:
        found = policy_file(session, args.tenant, args.version)
    if found is None:
        return fail(f"tenant {args.tenant} has no policy version {args.version!r}")
    source = found["source"]
    if found["applied"]:
        print(f"# tenant {args.tenant}, policy version {found['version']}")
    sys.stdout.write(source if source.endswith("\n") else source + "\n")
    return 0


def cmd_policy_list(args) -> int:
    from governance.moderation.policy_store import policy_history

    with tenant_transaction(args.tenant) as session:
        for row in policy_history(session, args.tenant):
            print(f"{row['version']}\t{row['applied_at']}\t{row['applied_by'] or '-'}"
                  + ("\tcurrent" if row["current"] else ""))
    return 0


def add_commands(sub) -> None:
    pol = sub.add_parser("policy", help="versioned policy files").add_subparsers(dest="pol_command", required=True)
    apply = pol.add_parser("apply", help="validate a TOML policy file and make it the tenant's current policy")
    apply.add_argument("file")
    apply.add_argument("--tenant", type=tenant_arg, default=None, help="default: the file's `tenant`, else default")
    apply.add_argument("--who", default=os.environ.get("USER"))
    apply.set_defaults(func=cmd_policy_apply)
    show = pol.add_parser("show", help="print the tenant's current policy file (or a named version)")
    show.add_argument("--tenant", type=tenant_arg, default="default")
    show.add_argument("--version", default=None)
    show.set_defaults(func=cmd_policy_show)
    lst = pol.add_parser("list", help="every applied version, current first")
    lst.add_argument("--tenant", type=tenant_arg, default="default")
    lst.set_defaults(func=cmd_policy_list)
