"""The `governance` command line: the documented contract the evaluation harness drives.

One module per command group; every command resolves the embedded defaults first (no DATABASE_URL →
embedded PostgreSQL, no CELERY_BROKER_URL → embedded Redis) and exports them, so child processes
share the same servers (worker/cli/common.py).
"""
from __future__ import annotations

import argparse
import logging

from worker.cli import (alerts, banks, calibrate, clusters, console, db, decisions, demo, embedded, exemplars, hashes,
                        health, keys, models, policy, processes, publish, review, serve, webhooks)

# In the order `governance --help` lists them.
COMMAND_GROUPS = (db, exemplars, publish, processes, decisions, clusters, demo, health, embedded, policy, calibrate,
                  review, alerts, models, banks, hashes, keys, serve, webhooks, console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="governance", description="Content-governance worker")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)
