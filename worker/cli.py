"""The `governance` command line: the documented contract the evaluation harness drives.

Every command resolves the embedded defaults first (no DATABASE_URL → embedded PostgreSQL, no
CELERY_BROKER_URL → embedded Redis) and exports them, so child processes share the same servers.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from governance.config import Settings
from governance.db import resolve_database_url, session_factory, transaction

log = logging.getLogger("governance.cli")


def prepare_environment(need_broker: bool = False) -> Settings:
    settings = Settings.from_env()
    os.environ["DATABASE_URL"] = resolve_database_url(settings)
    if need_broker:
        from worker.app import resolve_broker_url

        os.environ["CELERY_BROKER_URL"] = resolve_broker_url(settings)
    return Settings.from_env()


def _sessions(settings: Settings):
    return session_factory(resolve_database_url(settings))


def _context(settings: Settings):
    from governance.embedders import build_embedder
    from governance.services import Context

    return Context(settings=settings, embedder=build_embedder(settings))


def _read_jsonl(path: str):
    """(line number, parsed object or the parse error) for every non-blank line."""
    handle = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, exc


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# --- commands ------------------------------------------------------------------------------

def cmd_db_upgrade(args) -> int:
    from governance.migrate import upgrade

    settings = prepare_environment()
    upgrade(resolve_database_url(settings))
    print("database is at the latest revision")
    return 0


def import_exemplar_file(settings: Settings, path: str, who: str | None, batch_size: int = 64):
    """Embed and store a JSONL file of exemplars, batch by batch; returns (imported, problems)."""
    from governance.banks import batched, import_exemplars

    ctx, factory = _context(settings), _sessions(settings)
    items = list(_read_jsonl(path))
    parsed = [obj for _, obj in items if isinstance(obj, dict)]
    problems = [f"line {n}: not a JSON object: {obj}" for n, obj in items if not isinstance(obj, dict)]
    imported, done = 0, 0
    for batch in batched(parsed, batch_size):
        with transaction(factory) as session:
            result = import_exemplars(session, ctx, batch, created_by=who)
        imported += result.imported
        problems += [f"rejected exemplar {asset_id}: {reason}" for asset_id, reason in result.rejected]
        done += len(batch)
        _progress(done, len(parsed), "embedding exemplars")
    return imported, problems


def cmd_exemplars_import(args) -> int:
    settings = prepare_environment()
    imported, problems = import_exemplar_file(settings, args.file, args.who, args.batch_size)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(imported)
    return 0 if imported or not problems else 1


def publish_file(settings: Settings, path: str):
    """Accept every nameable event into the inbox, then enqueue the new ones after commit."""
    from governance.services import accept_events
    from worker.tasks import process_upload

    items = list(_read_jsonl(path))
    with transaction(_sessions(settings)) as session:
        accepted = accept_events(session, [(n, obj) for n, obj in items if not isinstance(obj, Exception)])
    for tenant, event_id in accepted.new:  # after commit, so the task always finds its row
        process_upload.apply_async((tenant, event_id))
    problems = [f"line {n}: refused: malformed JSON: {obj}" for n, obj in items if isinstance(obj, Exception)]
    problems += [f"line {n}: refused: {reason}" for n, reason in accepted.refused]
    if accepted.duplicates:
        problems.append(f"{accepted.duplicates} events were already accepted earlier")
    return accepted, problems


def cmd_publish(args) -> int:
    settings = prepare_environment(need_broker=True)
    accepted, problems = publish_file(settings, args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(len(accepted.new))
    return 0


def cmd_worker(args) -> int:
    settings = prepare_environment(need_broker=True)
    from governance.migrate import upgrade
    from worker.app import MAINTENANCE_QUEUE, UPLOADS_QUEUE, app

    upgrade(resolve_database_url(settings))
    argv = ["worker", "--loglevel", args.loglevel, "--concurrency", str(args.concurrency),
            "-Q", f"{UPLOADS_QUEUE},{MAINTENANCE_QUEUE}", "--without-gossip", "--without-mingle"]
    if args.beat:
        argv += ["--beat", "--schedule", str(settings.data_dir / "celerybeat-schedule")]
    app.worker_main(argv)
    return 0


def cmd_beat(args) -> int:
    settings = prepare_environment(need_broker=True)
    from worker.app import app

    app.start(["beat", "--loglevel", args.loglevel, "--schedule", str(settings.data_dir / "celerybeat-schedule")])
    return 0


def cmd_decisions_export(args) -> int:
    from governance.services import export_decisions

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        for decision in export_decisions(session, args.tenant):
            sys.stdout.write(json.dumps(decision, ensure_ascii=False) + "\n")
    return 0


def cmd_clusters_report(args) -> int:
    from governance.reports import build_and_store

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        paths = build_and_store(session, _context(settings), args.tenant, Path(args.out) if args.out else None)
    print(paths["json"])
    return 0


def cmd_demo(args) -> int:
    from worker.demo import run_demo

    return run_demo(concurrency=args.concurrency, timeout_s=args.timeout)


def cmd_health(args) -> int:
    """Check database, broker and embedder; exit non-zero if any fails."""
    from sqlalchemy import text

    from governance.embedders import Content, Task

    settings = Settings.from_env()
    checks = {}
    try:
        with transaction(_sessions(settings)) as session:
            version = session.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        checks["database"] = f"ok (pgvector {version})" if version else "FAIL: pgvector extension missing"
    except Exception as exc:  # noqa: BLE001 - report any failure
        checks["database"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        from worker.app import app

        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    try:
        embedder = _context(settings).embedder
        embedder.embed([Content(modality="text", mime_type="text/plain", text="health check")], Task.CLASSIFICATION)
        checks["embedder"] = f"ok ({embedder.model_id}, {embedder.dims} dims)"
    except Exception as exc:  # noqa: BLE001
        checks["embedder"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
    for name, status in checks.items():
        print(f"{name:<9} {status}")
    return 1 if any(status.startswith("FAIL") for status in checks.values()) else 0


def cmd_embedded_stop(args) -> int:
    from governance.embedded import stop_embedded

    stop_embedded(Settings.from_env().data_dir)
    print("embedded servers stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="governance", description="Content-governance worker")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db_upgrade)

    ex = sub.add_parser("exemplars", help="exemplar banks").add_subparsers(dest="ex_command", required=True)
    imp = ex.add_parser("import", help="embed and store labelled exemplars from JSONL")
    imp.add_argument("file")
    imp.add_argument("--batch-size", type=int, default=64)
    imp.add_argument("--who", default=os.environ.get("USER"), help="recorded as the exemplars' creator")
    imp.set_defaults(func=cmd_exemplars_import)

    pub = sub.add_parser("publish", help="accept upload events from JSONL and enqueue them")
    pub.add_argument("file", help="JSONL file, or - for stdin")
    pub.set_defaults(func=cmd_publish)

    wk = sub.add_parser("worker", help="run a Celery worker (with an embedded beat by default)")
    wk.add_argument("--concurrency", type=int, default=2)
    wk.add_argument("--beat", action=argparse.BooleanOptionalAction, default=True)
    wk.add_argument("--loglevel", default="INFO")
    wk.set_defaults(func=cmd_worker)

    bt = sub.add_parser("beat", help="run the Celery beat scheduler on its own")
    bt.add_argument("--loglevel", default="INFO")
    bt.set_defaults(func=cmd_beat)

    dec = sub.add_parser("decisions", help="moderation decisions").add_subparsers(dest="dec_command", required=True)
    exp = dec.add_parser("export", help="one decision per line on stdout, JSON")
    exp.add_argument("--tenant", default="default")
    exp.set_defaults(func=cmd_decisions_export)

    cl = sub.add_parser("clusters", help="cluster reports").add_subparsers(dest="cl_command", required=True)
    rep = cl.add_parser("report", help="cluster the recent window now and write report.json")
    rep.add_argument("--tenant", default="default")
    rep.add_argument("--out", default=None)
    rep.set_defaults(func=cmd_clusters_report)

    demo = sub.add_parser("demo", help="the main job on embedded defaults and the bundled sample")
    demo.add_argument("--concurrency", type=int, default=2)
    demo.add_argument("--timeout", type=float, default=300)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("health", help="check database, broker and embedder").set_defaults(func=cmd_health)

    emb = sub.add_parser("embedded", help="embedded servers").add_subparsers(dest="emb_command", required=True)
    emb.add_parser("stop", help="stop the embedded PostgreSQL and Redis").set_defaults(func=cmd_embedded_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
