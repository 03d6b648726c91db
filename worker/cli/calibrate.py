"""`governance calibrate` and `governance backtest`: thresholds from labelled data, and a candidate policy replayed; both write nothing."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from worker.cli.common import build_context, enter_scope, fail, prepare_environment, read_jsonl, rolled_back, tenant_arg


def cmd_calibrate(args) -> int:
    from governance.moderation import calibration
    from governance.moderation.backtest import calibrate
    from governance.moderation.policy_store import policy_to_toml

    settings = prepare_environment()
    items = list(read_jsonl(args.file))
    raw = [obj for _, obj in items if isinstance(obj, dict)]
    for number, obj in items:
        if not isinstance(obj, dict):
            print(f"line {number}: not a JSON object: {obj}", file=sys.stderr)
    with rolled_back(settings) as session:  # embeds and classifies; stores nothing
        enter_scope(session, args.tenant)
        result = calibrate(session, build_context(settings), args.tenant, raw, target_precision=args.target_precision,
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
    from governance.moderation.backtest import backtest, backtest_report, format_backtest
    from governance.moderation.policy_store import PolicyError, parse_policy

    settings = prepare_environment()
    try:
        candidate = parse_policy(Path(args.policy).read_text(encoding="utf-8")).policy
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"cannot read {args.policy}: {exc}")
    except PolicyError as exc:
        return fail(f"invalid policy {args.policy}: {exc}")
    with rolled_back(settings) as session:  # writes nothing
        enter_scope(session, args.tenant)
        result = backtest(session, build_context(settings), args.tenant, candidate, days=args.days, limit=args.limit,
                          examples=args.examples)
    if args.json:
        print(json.dumps(backtest_report(result), indent=2))
    else:
        print(format_backtest(result))
    return 0


def add_commands(sub) -> None:
    cal = sub.add_parser("calibrate", help="choose per-label thresholds from labelled validation data")
    cal.add_argument("file", help="JSONL: upload events plus `label` (null: should get no label)")
    cal.add_argument("--tenant", type=tenant_arg, default="default")
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
    bt.add_argument("--tenant", type=tenant_arg, default="default")
    bt.add_argument("--days", type=float, default=None, help="only decisions of the last N days")
    bt.add_argument("--limit", type=int, default=10_000)
    bt.add_argument("--examples", type=int, default=5)
    bt.add_argument("--json", action="store_true")
    bt.set_defaults(func=cmd_backtest)
