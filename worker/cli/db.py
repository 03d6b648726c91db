"""`governance db`: migrate the schema, and compare it with the table definitions."""
from __future__ import annotations

import sys

from governance.storage.db import resolve_database_url
from worker.cli.common import prepare_environment


def cmd_db_upgrade(args) -> int:
    from governance.storage.migrate import upgrade

    settings = prepare_environment()
    upgrade(resolve_database_url(settings))
    print("database is at the latest revision")
    return 0


def cmd_db_check(args) -> int:
    from governance.storage.migrate import check

    settings = prepare_environment()
    problems = check(resolve_database_url(settings))
    for problem in problems:
        print(problem, file=sys.stderr)
    print("the database and the table definitions disagree" if problems else
          "the database agrees with the table definitions")
    return 1 if problems else 0


def add_commands(sub) -> None:
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("check", help="compare the migrated database with the table definitions; non-zero if they differ"
                  ).set_defaults(func=cmd_db_check)
