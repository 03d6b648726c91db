"""`governance console-link`: a one-time login URL for the review console (as a notebook server
prints its token URL). Only the token's hash is stored; the link is void after first use or ttl."""
from __future__ import annotations

import getpass
import json

from governance.storage.db import transaction
from worker.cli.common import enter_scope, fail, prepare_environment, sessions, tenant_arg


def _default_who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "reviewer"


def cmd_console_link(args) -> int:
    from governance.access.console_sessions import create_login_link

    if args.ttl <= 0:
        return fail("--ttl must be a positive number of seconds")
    who = (args.who or "").strip()
    if not who or len(who) > 256:
        return fail("--who must be a name of 1 to 256 characters")
    settings = prepare_environment()
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)
        link = create_login_link(session, args.tenant, who, args.ttl)
    url = link.url(args.base_url or settings.console_url)
    if args.json:
        print(json.dumps({"url": url, "tenant": link.tenant, "who": link.who,
                          "expires_at": link.expires_at.isoformat()}))
    else:
        print(url)
    return 0


def add_commands(sub) -> None:
    cl = sub.add_parser("console-link", help="print a one-time login URL for the review console")
    cl.add_argument("--tenant", type=tenant_arg, default="default")
    cl.add_argument("--who", default=_default_who(), help="the reviewer's name in the audit log")
    cl.add_argument("--ttl", type=int, default=900, help="seconds until the unused link expires")
    cl.add_argument("--base-url", default=None, help="where `governance serve` is reached "
                                                      "(default GOVERNANCE_CONSOLE_URL or http://127.0.0.1:8000)")
    cl.add_argument("--json", action="store_true")
    cl.set_defaults(func=cmd_console_link)
