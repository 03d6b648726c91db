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

from governance.platform.config import Settings
from governance.storage.db import resolve_database_url, session_factory, transaction

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


def _enter(session, tenant: str | None) -> None:
    """Row-level security scope (migration 0002), as the worker's tasks enter it: the transaction
    runs as the `governance_app` role and sees one tenant, or every tenant when None (commands that
    are cross-tenant by design say so where they call this). Only `db upgrade` runs as the owner."""
    from governance.storage import repository

    if tenant is None:
        repository.enter_all_tenants(session)
    else:
        repository.enter_tenant(session, tenant)


def _context(settings: Settings):
    from governance.embedding.factory import build_embedder
    from governance.moderation.pipeline import Context

    return Context(settings=settings, embedder=build_embedder(settings))


def _read_jsonl(path: str):
    """(line number, JSON value or the InvalidEvent saying why not) for every non-blank line;
    read as bytes, so one line of invalid UTF-8 costs only itself."""
    from governance.ingest.events import decode_lines

    handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    with handle:
        yield from decode_lines(handle)


def _tenant(value: str) -> str:
    """argparse type for every --tenant: the one grammar of governance.ingest.events."""
    from governance.ingest.events import InvalidEvent, valid_tenant

    try:
        return valid_tenant(value)
    except InvalidEvent as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress(done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# --- commands ------------------------------------------------------------------------------

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


def import_exemplar_file(settings: Settings, path: str, who: str | None, batch_size: int = 64):
    """Embed and store a JSONL file of exemplars, batch by batch; returns (imported, problems)."""
    from itertools import batched

    from governance.moderation.exemplar_banks import import_exemplars
    from governance.ingest.events import InvalidEvent, identify

    ctx, factory = _context(settings), _sessions(settings)
    parsed, problems = [], []
    for number, obj in _read_jsonl(path):
        try:
            if isinstance(obj, Exception):
                raise obj
            identify(obj)  # what publish would refuse is refused here too, by line
            parsed.append(obj)
        except InvalidEvent as exc:
            problems.append(f"line {number}: refused: {exc}")
    imported, done = 0, 0
    for batch in batched(parsed, batch_size):
        with transaction(factory) as session:
            _enter(session, None)  # cross-tenant by design: each line names its own tenant
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
    from governance.ingest.inbox import accept_events
    from worker.tasks import enqueue_batches

    items = list(_read_jsonl(path))
    with transaction(_sessions(settings)) as session:
        _enter(session, None)  # cross-tenant by design: the inbox takes every tenant's events
        accepted = accept_events(session, [(n, obj) for n, obj in items if not isinstance(obj, Exception)])
    enqueue_batches(settings, accepted.new)  # after commit, so the task always finds its rows
    problems = sorted([(n, str(obj)) for n, obj in items if isinstance(obj, Exception)] + accepted.refused)
    problems = [f"line {n}: refused: {reason}" for n, reason in problems]
    if accepted.duplicates:
        problems.append(f"{accepted.duplicates} events were already accepted earlier with the same content")
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
    from governance.storage.migrate import upgrade
    from worker import beat_watch
    from worker.app import MAINTENANCE_QUEUE, UPLOADS_QUEUE, app

    argv = ["worker", "--loglevel", args.loglevel, "--concurrency", str(args.concurrency),
            "-Q", f"{UPLOADS_QUEUE},{MAINTENANCE_QUEUE}", "--without-gossip", "--without-mingle"]
    if args.beat:
        try:
            argv += ["--beat", "--schedule", str(beat_watch.prepare_schedule(settings))]
        except beat_watch.BeatUnavailable as exc:
            return _fail(f"{exc}; not starting a worker without its beat (--no-beat runs one on purpose)")
    upgrade(resolve_database_url(settings))
    app.worker_main(argv)
    if beat_watch.failure:
        return _fail(beat_watch.failure, 1)
    return 0


def cmd_beat(args) -> int:
    settings = prepare_environment(need_broker=True)
    from worker import beat_watch
    from worker.app import app

    try:
        path = beat_watch.prepare_schedule(settings)
    except beat_watch.BeatUnavailable as exc:
        return _fail(str(exc))
    return app.start(["beat", "--loglevel", args.loglevel, "--schedule", str(path)]) or 0


def cmd_decisions_export(args) -> int:
    from governance.moderation.decisions import export_decisions

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        for decision in export_decisions(session, args.tenant):
            sys.stdout.write(json.dumps(decision, ensure_ascii=False) + "\n")
    return 0


def cmd_clusters_report(args) -> int:
    from governance.clustering.stored_reports import build_and_store

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        paths = build_and_store(session, _context(settings), args.tenant, Path(args.out) if args.out else None)
    print(paths["json"])
    return 0


def cmd_clusters_history(args) -> int:
    from governance.clustering.stored_reports import history

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        for row in history(session, args.tenant, args.limit):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


def cmd_demo(args) -> int:
    from worker.demo import run_demo

    return run_demo(concurrency=args.concurrency, timeout_s=args.timeout)


def cmd_health(args) -> int:
    """Check database, broker, the beat's heartbeat and embedder; exit non-zero if any fails."""
    from sqlalchemy import text

    from governance.ingest.content import Content
    from governance.embedding.protocol import Task

    settings = Settings.from_env()
    checks = {}
    try:
        with transaction(_sessions(settings)) as session:
            _enter(session, None)  # also proves that the login role may act as the app role
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
        from governance.platform.broker_state import reconciler_liveness
        from governance.platform.redis_client import redis_from_url
        from worker.app import resolve_broker_url

        live = reconciler_liveness(redis_from_url(resolve_broker_url(settings)), settings.beat_stale_s)
        checks["beat"] = f"ok ({live.detail})" if live.alive else f"FAIL: {live.detail}"
    except Exception as exc:  # noqa: BLE001
        checks["beat"] = f"FAIL: {exc.__class__.__name__}: {str(exc)[:200]}"
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
    from governance.platform.embedded_servers import stop_embedded

    stop_embedded(Settings.from_env().data_dir)
    print("embedded servers stopped")
    return 0


# --- moderation commands: exemplar bank edits, policies, calibration, backtest, review, alerts ------

def _rolled_back(settings: Settings):
    """A session whose work is always rolled back: for commands that must write nothing."""
    from contextlib import contextmanager

    @contextmanager
    def scope():
        session = _sessions(settings)()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
    return scope()


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_exemplars_toggle(args) -> int:
    from governance.moderation.exemplar_banks import BankError, set_enabled

    settings = prepare_environment()
    enabled = args.ex_command == "enable"
    try:
        with transaction(_sessions(settings)) as session:
            _enter(session, args.tenant)
            edit = set_enabled(session, _context(settings), args.tenant, args.asset_id, enabled, label=args.label,
                               who=args.who)
    except BankError as exc:
        return _fail(str(exc))
    verb = "enabled" if enabled else "disabled"
    if edit.labels:
        print(f"{verb} {len(edit.labels)} exemplar(s) of {edit.asset_id} ({', '.join(edit.labels)}); "
              f"bank version {edit.bank_version}")
    else:
        print(f"nothing to change: {edit.asset_id} is already {verb}; bank version {edit.bank_version}")
    for item in edit.retroactive:
        print(f"opened review item {item['review_item']}: {item['asset_id']} at distance {item['distance']}",
              file=sys.stderr)
    return 0


def cmd_exemplars_export(args) -> int:
    from governance.moderation.exemplar_banks import export_exemplars

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        for item in export_exemplars(session, args.tenant):
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
    return 0


def cmd_policy_apply(args) -> int:
    from governance.ingest.events import InvalidEvent, valid_tenant
    from governance.moderation.policy_store import PolicyError, apply_policy, parse_policy

    settings = prepare_environment()
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        tenant = valid_tenant(args.tenant or parse_policy(text).tenant or "default")
        with transaction(_sessions(settings)) as session:
            _enter(session, tenant)
            applied = apply_policy(session, text, tenant=tenant, who=args.who)
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    except (PolicyError, InvalidEvent) as exc:
        return _fail(f"invalid policy {args.file}: {exc}")
    state = "applied" if applied.created else "re-applied (current again)"
    print(f"policy {applied.version} {state} for tenant {applied.tenant}")
    return 0


def cmd_policy_show(args) -> int:
    from governance.moderation.policy_store import policy_to_toml, stored_policy
    from governance.moderation.policy_rules import Policy

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        found = stored_policy(session, args.tenant, args.version)
    if found is None:
        if args.version:
            return _fail(f"tenant {args.tenant} has no policy version {args.version!r}")
        sys.stdout.write(policy_to_toml(Policy(), header=f"tenant {args.tenant}: no policy applied; the builtin "
                                                        "policy is in use"))
        return 0
    version, source = found
    print(f"# tenant {args.tenant}, policy version {version}")
    sys.stdout.write(source if source.endswith("\n") else source + "\n")
    return 0


def cmd_policy_list(args) -> int:
    from governance.storage import repository

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        rows = repository.policy_versions(session, args.tenant)
        for i, row in enumerate(rows):
            print(f"{row.version}\t{row.applied_at.isoformat()}\t{row.applied_by or '-'}" + ("\tcurrent" if i == 0 else ""))
    return 0


def cmd_calibrate(args) -> int:
    from governance.moderation import calibration
    from governance.moderation.backtest import calibrate
    from governance.moderation.policy_store import policy_to_toml

    settings = prepare_environment()
    items = list(_read_jsonl(args.file))
    raw = [obj for _, obj in items if isinstance(obj, dict)]
    for number, obj in items:
        if not isinstance(obj, dict):
            print(f"line {number}: not a JSON object: {obj}", file=sys.stderr)
    with _rolled_back(settings) as session:  # embeds and classifies; stores nothing
        _enter(session, args.tenant)
        result = calibrate(session, _context(settings), args.tenant, raw, target_precision=args.target_precision,
                           review_precision=args.review_precision, min_support=args.min_support,
                           prior_weight=args.prior_weight, version=args.version)
    for asset_id, reason in result.rejected:
        print(f"skipped {asset_id}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps({**calibration.report_dict(result.report), "policy_version": result.policy.version,
                          "actions": dict(result.actions), "policy_coverage": result.policy_coverage,
                          "skipped": len(result.rejected)}, indent=2))
    else:
        print(f"calibrated {len(result.items)} labelled items against tenant {args.tenant} "
              f"(base policy {result.base_version}; target precision {args.target_precision}, "
              f"review precision {args.review_precision})")
        print(calibration.format_report(result.report))
        actions = ", ".join(f"{a} {result.actions.get(a, 0)}" for a in ("allow", "review", "block"))
        print(f"\nunder policy {result.policy.version} (ties and anomalies included): {actions}; "
              f"coverage {result.policy_coverage:.3f}")
    if args.write_policy:
        notes = {label: (f"calibrated on {th.predicted} predictions: precision at auto "
                         f"{'-' if th.auto_precision is None else round(th.auto_precision, 3)}, at review "
                         f"{'-' if th.review_precision is None else round(th.review_precision, 3)}")
                 for label, th in result.thresholds.items()}
        header = (f"written by `governance calibrate {args.file}` for tenant {args.tenant}, from policy "
                  f"{result.base_version}\ntarget precision {args.target_precision}, review precision "
                  f"{args.review_precision}; apply with `governance policy apply`")
        Path(args.write_policy).write_text(policy_to_toml(result.policy, comments=notes, header=header),
                                           encoding="utf-8")
        print(f"wrote policy {result.policy.version} to {args.write_policy}", file=sys.stderr)
    return 0


def cmd_backtest(args) -> int:
    from governance.moderation.backtest import backtest, format_backtest
    from governance.moderation.policy_store import PolicyError, parse_policy

    settings = prepare_environment()
    try:
        candidate = parse_policy(Path(args.policy).read_text(encoding="utf-8")).policy
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.policy}: {exc}")
    except PolicyError as exc:
        return _fail(f"invalid policy {args.policy}: {exc}")
    with _rolled_back(settings) as session:  # writes nothing
        _enter(session, args.tenant)
        result = backtest(session, _context(settings), args.tenant, candidate, days=args.days, limit=args.limit,
                          examples=args.examples)
    if args.json:
        print(json.dumps({"candidate": result.candidate, "current": result.current, "replayed": result.replayed,
                          "changed": result.changed,
                          "stored_to_candidate": [{"from": a, "to": b, "count": n}
                                                  for (a, b), n in sorted(result.stored_to_candidate.items())],
                          "current_to_candidate": [{"from": a, "to": b, "count": n}
                                                   for (a, b), n in sorted(result.current_to_candidate.items())],
                          "examples": [row for rows in result.examples.values() for row in rows]}, indent=2))
    else:
        print(format_backtest(result))
    return 0


def cmd_review_list(args) -> int:
    from governance.moderation.review import pending

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, args.tenant)
        for item in pending(session, args.tenant, args.limit):
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
    return 0


def cmd_review_decide(args) -> int:
    from governance.moderation.review import ReviewError, decide

    settings = prepare_environment()
    try:
        with transaction(_sessions(settings)) as session:
            _enter(session, args.tenant)
            done = decide(session, _context(settings), args.tenant, args.asset_id, args.action, label=args.label,
                          who=args.who, note=args.note)
    except ReviewError as exc:
        return _fail(str(exc))
    print(json.dumps({"audit_id": done.audit_id, "event_id": done.event_id, "asset_id": done.asset_id,
                      "before": done.before, "after": done.after, "message_id": done.message_id,
                      "retroactive": done.retroactive}, ensure_ascii=False))
    return 0


def cmd_alerts_run(args) -> int:
    from governance.delivery.alerts import AlertConfig, run_alerts

    settings = prepare_environment()
    with transaction(_sessions(settings)) as session:
        _enter(session, None)  # alerts are computed for every tenant
        sent = run_alerts(session, AlertConfig.from_settings(settings))
    for alert in sent:
        print(json.dumps(alert, ensure_ascii=False))
    return 0


def _add_moderation_commands(sub, ex) -> None:
    who = os.environ.get("USER")
    for name, helptext in (("disable", "take an asset's exemplars out of the bank"),
                           ("enable", "put an asset's exemplars back into the bank")):
        cmd = ex.add_parser(name, help=helptext)
        cmd.add_argument("asset_id")
        cmd.add_argument("--label", default=None, help="only the exemplar of this label (default: all)")
        cmd.add_argument("--tenant", type=_tenant, default="default")
        cmd.add_argument("--who", default=who)
        cmd.set_defaults(func=cmd_exemplars_toggle)
    exp = ex.add_parser("export", help="the tenant's exemplars, one JSON object per line")
    exp.add_argument("--tenant", type=_tenant, default="default")
    exp.set_defaults(func=cmd_exemplars_export)

    pol = sub.add_parser("policy", help="versioned policy files").add_subparsers(dest="pol_command", required=True)
    apply = pol.add_parser("apply", help="validate a TOML policy file and make it the tenant's current policy")
    apply.add_argument("file")
    apply.add_argument("--tenant", type=_tenant, default=None, help="default: the file's `tenant`, else default")
    apply.add_argument("--who", default=who)
    apply.set_defaults(func=cmd_policy_apply)
    show = pol.add_parser("show", help="print the tenant's current policy file (or a named version)")
    show.add_argument("--tenant", type=_tenant, default="default")
    show.add_argument("--version", default=None)
    show.set_defaults(func=cmd_policy_show)
    lst = pol.add_parser("list", help="every applied version, current first")
    lst.add_argument("--tenant", type=_tenant, default="default")
    lst.set_defaults(func=cmd_policy_list)

    cal = sub.add_parser("calibrate", help="choose per-label thresholds from labelled validation data")
    cal.add_argument("file", help="JSONL: upload events plus `label` (null: should get no label)")
    cal.add_argument("--tenant", type=_tenant, default="default")
    cal.add_argument("--target-precision", type=float, default=0.95)
    cal.add_argument("--review-precision", type=float, default=0.8)
    cal.add_argument("--min-support", type=int, default=1)
    cal.add_argument("--prior-weight", type=float, default=10.0,
                     help="shrink each label's precision toward the all-label precision by this many items "
                          "(0: the plain rule; see governance/moderation/calibration.py)")
    cal.add_argument("--write-policy", default=None, metavar="OUT.toml")
    cal.add_argument("--version", default=None, help="version of the written policy (default: derived)")
    cal.add_argument("--json", action="store_true")
    cal.set_defaults(func=cmd_calibrate)

    bt = sub.add_parser("backtest", help="replay decided uploads through a candidate policy; writes nothing")
    bt.add_argument("--policy", required=True)
    bt.add_argument("--tenant", type=_tenant, default="default")
    bt.add_argument("--days", type=float, default=None, help="only decisions of the last N days")
    bt.add_argument("--limit", type=int, default=10_000)
    bt.add_argument("--examples", type=int, default=5)
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_backtest)

    rv = sub.add_parser("review", help="the review loop").add_subparsers(dest="rv_command", required=True)
    rl = rv.add_parser("list", help="what waits for a reviewer, one JSON object per line")
    rl.add_argument("--tenant", type=_tenant, default="default")
    rl.add_argument("--limit", type=int, default=100)
    rl.set_defaults(func=cmd_review_list)
    rd = rv.add_parser("decide", help="override an asset's decision; the asset becomes an exemplar")
    rd.add_argument("asset_id")
    rd.add_argument("action", choices=("allow", "block"))
    rd.add_argument("--label", default=None)
    rd.add_argument("--who", default=who)
    rd.add_argument("--note", default=None)
    rd.add_argument("--tenant", type=_tenant, default="default")
    rd.set_defaults(func=cmd_review_decide)

    al = sub.add_parser("alerts", help="anomaly alerts").add_subparsers(dest="al_command", required=True)
    al.add_parser("run", help="enqueue the anomaly alerts that are due now").set_defaults(func=cmd_alerts_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="governance", description="Content-governance worker")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("check", help="compare the migrated database with the table definitions; non-zero if they differ"
                  ).set_defaults(func=cmd_db_check)

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
    exp.add_argument("--tenant", type=_tenant, default="default")
    exp.set_defaults(func=cmd_decisions_export)

    cl = sub.add_parser("clusters", help="cluster reports").add_subparsers(dest="cl_command", required=True)
    rep = cl.add_parser("report", help="cluster the recent window now and write report.json")
    rep.add_argument("--tenant", type=_tenant, default="default")
    rep.add_argument("--out", default=None)
    rep.set_defaults(func=cmd_clusters_report)
    his = cl.add_parser("history", help="stored reports, newest first, with the clusters that changed")
    his.add_argument("--tenant", type=_tenant, default="default")
    his.add_argument("--limit", type=int, default=20)
    his.set_defaults(func=cmd_clusters_history)

    demo = sub.add_parser("demo", help="the main job on embedded defaults and the bundled sample")
    demo.add_argument("--concurrency", type=int, default=2)
    demo.add_argument("--timeout", type=float, default=300)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("health", help="check database, broker, beat and embedder").set_defaults(func=cmd_health)

    emb = sub.add_parser("embedded", help="embedded servers").add_subparsers(dest="emb_command", required=True)
    emb.add_parser("stop", help="stop the embedded PostgreSQL and Redis").set_defaults(func=cmd_embedded_stop)

    _add_moderation_commands(sub, ex)
    from worker.cli_banks import add_banks_commands  # here: these modules import this one's helpers
    from worker.cli_models import add_models_commands

    add_models_commands(sub)
    add_banks_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
