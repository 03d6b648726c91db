"""`governance keys create|list|revoke`: the HTTP API's keys. The secret is printed once."""
from __future__ import annotations

import json

from governance.storage.db import transaction
from worker.cli.common import enter_scope, fail, prepare_environment, sessions, tenant_arg


def prepared():
    """On the embedded defaults, migrated first: `keys create` is often the first command of a
    fresh install. A DATABASE_URL of the operator's is migrated by its owner (`governance db upgrade`)."""
    from governance.platform.config import Settings
    from governance.storage.db import resolve_database_url
    from governance.storage.migrate import upgrade

    embedded = Settings.from_env().database_url is None
    settings = prepare_environment()
    if embedded:
        upgrade(resolve_database_url(settings))
    return settings


def cmd_keys_create(args) -> int:
    from governance.access.api_keys import InvalidKeyRequest, create_key

    settings = prepared()
    try:
        with transaction(sessions(settings)) as session:
            enter_scope(session, args.tenant)
            row, raw = create_key(session, args.tenant, args.scopes, args.name)
    except InvalidKeyRequest as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps({"id": row.id, "key": raw, "tenant": row.tenant, "scopes": row.scopes, "name": row.name}))
    else:
        print(f"id      {row.id}\ntenant  {row.tenant}\nscopes  {','.join(row.scopes)}\nkey     {raw}")
        print("(the key is shown only now; only its hash is stored)")
    return 0


def cmd_keys_list(args) -> int:
    from governance.access.api_keys import key_summary, list_keys

    settings = prepared()
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)  # without --tenant: every tenant's keys, for the operator
        rows = [key_summary(r) for r in list_keys(session, args.tenant)]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
            print(f"{r['id']}  {r['tenant']}  {','.join(r['scopes'])}  {r['name'] or '-'}  {state}")
    return 0


def cmd_keys_revoke(args) -> int:
    from governance.access.api_keys import revoke_key

    settings = prepared()
    with transaction(sessions(settings)) as session:
        enter_scope(session, None)  # a key id is global; the operator revokes without naming its tenant
        row = revoke_key(session, args.id)
    if row is None:
        return fail(f"no key {args.id}", 1)
    print(f"revoked {row.id} ({row.tenant})")
    return 0


def add_commands(sub) -> None:
    keys = sub.add_parser("keys", help="API keys for the HTTP API").add_subparsers(dest="keys_command",
                                                                                    required=True)
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--tenant", type=tenant_arg, required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: ingest,read,review,admin")
    create.add_argument("--name", help="who uses it; review audit entries name it")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_keys_create)
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", type=tenant_arg)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id")
    revoke.set_defaults(func=cmd_keys_revoke)
