"""`governance usage` and `governance reembed`: embedding spend, and moving a tenant to another model."""
from __future__ import annotations

import json
import sys
from datetime import date

from governance.storage.db import transaction
from worker.cli.common import enter_scope, fail, prepare_environment, progress, sessions, tenant_arg


def cmd_usage(args) -> int:
    from governance.embedding.usage import format_report, usage_report

    settings = prepare_environment()
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        return fail(f"--since must be a date like 2026-06-01, got {args.since!r}")
    with transaction(sessions(settings)) as session:
        enter_scope(session, args.tenant)  # every tenant when --tenant is not given
        lines = usage_report(session, args.tenant, since, settings.embedding_prices)
    if args.json:
        print(json.dumps([line.as_dict() for line in lines], indent=2))
    else:
        print(format_report(lines))
    return 0


def cmd_reembed(args) -> int:
    from governance.embedding.factory import build_embedder
    from governance.embedding.reembed import reembed

    settings = prepare_environment()
    if args.model == "auto":
        return fail("--model must name a backend: hashing, offline, gemini or a Gemini model name")
    spec = settings.gemini_model if args.model == "gemini" else args.model
    try:
        target = build_embedder(settings, spec, args.dims)
    except (ValueError, FileNotFoundError) as exc:
        return fail(str(exc))
    if args.dims and target.dims != args.dims:
        return fail(f"{spec} embeds at {target.dims} dims, not {args.dims}")
    if args.batch_api and not spec.startswith("gemini-"):
        return fail(f"--batch-api needs a Gemini model, not {spec}")
    factory = sessions(settings)
    result = reembed(lambda: transaction(factory), settings, args.tenant, spec, target,
                     batch_size=args.batch_size, limit=args.limit,
                     enter=lambda session: enter_scope(session, args.tenant),
                     progress=lambda done, total: progress(done, total, "re-embedding"),
                     batch_api=args.batch_api, wait_s=args.poll_s)
    for asset_id, reason in result.unreadable:
        print(f"unreadable asset {asset_id}: {reason}", file=sys.stderr)
    for failure in result.batch_failures:
        print(f"batch job failed (its assets stay pending): {failure}", file=sys.stderr)
    summary = {"tenant": args.tenant, "model": result.model_id, "dims": result.dims, "assets": result.total,
               "already_done": result.already_done, "embedded": result.embedded,
               "unreadable": len(result.unreadable), "remaining": result.remaining, "switched": result.switched,
               "batch_api": args.batch_api}
    print(json.dumps(summary))
    if not result.switched:
        print(f"{result.remaining} assets left; run again to resume (the tenant still uses its current model)",
              file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    us = sub.add_parser("usage", help="embedding items, calls and tokens per tenant and model, with a cost")
    us.add_argument("--tenant", type=tenant_arg, default=None, help="default: every tenant")
    us.add_argument("--since", default=None, metavar="DATE", help="from this UTC day on (YYYY-MM-DD)")
    us.add_argument("--json", action="store_true")
    us.set_defaults(func=cmd_usage)

    rb = sub.add_parser("reembed", help="re-embed a tenant's assets and exemplars under another model, "
                                        "then switch the tenant to it")
    rb.add_argument("--model", required=True,
                    help="backend spec: hashing, offline, gemini, gemini-embedding-2, gemini-embedding-001")
    rb.add_argument("--dims", type=int, default=None, help="default: GOVERNANCE_EMBEDDING_DIMS")
    rb.add_argument("--tenant", type=tenant_arg, default="default")
    rb.add_argument("--batch-size", type=int, default=64, help="assets per transaction")
    rb.add_argument("--limit", type=int, default=None,
                    help="stop after this many assets (no switch); a later run resumes")
    rb.add_argument("--batch-api", action="store_true",
                    help="Gemini Batch API jobs: half price, answers within 24 h; the run polls until done, "
                         "and a re-run polls jobs an interrupted run submitted")
    rb.add_argument("--poll-s", type=float, default=30.0, help="seconds between Batch API polls")
    rb.set_defaults(func=cmd_reembed)

