"""`governance embedded stop`: stop the embedded PostgreSQL and Redis."""
from __future__ import annotations

from governance.platform.config import Settings


def cmd_embedded_stop(args) -> int:
    from governance.platform.embedded_servers import stop_embedded

    stop_embedded(Settings.from_env().data_dir)
    print("embedded servers stopped")
    return 0


def add_commands(sub) -> None:
    emb = sub.add_parser("embedded", help="embedded servers").add_subparsers(dest="emb_command", required=True)
    emb.add_parser("stop", help="stop the embedded PostgreSQL and Redis").set_defaults(func=cmd_embedded_stop)
