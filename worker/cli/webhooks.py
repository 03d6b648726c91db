"""`governance webhooks`: an operator's view of the tenants' webhook subscriptions."""
from __future__ import annotations

import json

from governance.storage.db import transaction
from worker.cli.common import enter_scope, fail, prepare_environment, sessions, tenant_arg, tenant_transaction


def cmd_webhooks_create(args) -> int:
    from governance.delivery.subscriptions import SubscriptionRefused, create

    settings = prepare_environment()
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, args.tenant)
            created = create(session, settings, args.tenant, args.url, args.events)
    except SubscriptionRefused as exc:
        return fail(f"refused: {exc}")
    if args.json:
        print(json.dumps(created.to_json(), ensure_ascii=False))
    else:
        sub = created.subscription
        print(f"{sub.id}\t{sub.tenant}\t{','.join(sub.events)}\t{sub.url}")
        print(f"secret (shown once): {created.secret}")
    return 0


def cmd_webhooks_list(args) -> int:
    from governance.delivery.subscriptions import list_subscriptions

    with tenant_transaction(args.tenant) as session:  # no --tenant: every tenant's, an operator's listing
        found = list_subscriptions(session, args.tenant)
    if args.json:
        print(json.dumps([sub.to_json() for sub in found], ensure_ascii=False))
    else:
        for sub in found:
            print(f"{sub.id}\t{sub.tenant}\t{','.join(sub.events)}\t{sub.url}")
    return 0


def cmd_webhooks_delete(args) -> int:
    from governance.delivery.subscriptions import SubscriptionNotFound, delete

    try:
        with tenant_transaction(args.tenant) as session:  # no --tenant: whichever tenant holds the id
            delete(session, args.id, args.tenant)
    except SubscriptionNotFound as exc:
        return fail(str(exc))
    print(f"deleted {args.id}")
    return 0


def add_commands(sub) -> None:
    wh = sub.add_parser("webhooks", help="tenant webhook subscriptions (signed by the Standard Webhooks scheme)")
    sc = wh.add_subparsers(dest="wh_command", required=True)
    cr = sc.add_parser("create", help="subscribe a URL to a tenant's events; prints the secret once")
    cr.add_argument("--tenant", type=tenant_arg, required=True)
    cr.add_argument("--url", required=True)
    cr.add_argument("--events", required=True, help="comma-separated: decision,override,alert,cluster")
    cr.add_argument("--json", action="store_true")
    cr.set_defaults(func=cmd_webhooks_create)
    ls = sc.add_parser("list", help="live subscriptions (never their secrets), of one tenant or all")
    ls.add_argument("--tenant", type=tenant_arg, default=None)
    ls.add_argument("--json", action="store_true", help="one JSON array")
    ls.set_defaults(func=cmd_webhooks_list)
    de = sc.add_parser("delete", help="stop delivering to a subscription")
    de.add_argument("id")
    de.add_argument("--tenant", type=tenant_arg, default=None, help="only if it is this tenant's")
    de.set_defaults(func=cmd_webhooks_delete)
