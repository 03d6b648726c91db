"""Does `calibrate` deliver its precision on data it has not seen? A check on the dev corpus.

    .venv/bin/python scripts/calibration_check.py [--corpus DIR] [--target-precision 0.95]

The corpus folder holds `exemplars.jsonl` (the bank), `stream.jsonl` (uploads) and `truth.jsonl`
(each upload's true label; null or `__emerging__` = no bank label). File items name a `path`
relative to the corpus; they become file:// URIs, with GOVERNANCE_FILE_ROOTS set to the corpus.

The labelled stream items (truth is a bank label; `--all-items` adds the others as items that
should get no label) are split in half by a seeded shuffle. Every label is treated as `block` for
the purpose of the check. Thresholds are calibrated on half A exactly as `governance calibrate`
does (same kNN, same vote, same rule in governance/moderation/calibration.py), and half B is then decided
with the calibrated policy through `policy.decide`; the script reports block precision (share of
blocks whose vote label is the true label), recall (correct blocks over items that have a bank
label) and coverage (share decided without review) on B, then the same over more seeded splits,
and exits 1 when B's block precision on the main split misses the target.

Everything runs in one transaction that is rolled back, in a throwaway tenant; without
DATABASE_URL it starts an embedded PostgreSQL in a temporary folder and stops it afterwards.
The embedder is the production default (`GOVERNANCE_EMBEDDER`, default `auto`).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NO_LABEL = {None, "", "__emerging__"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def as_event(raw: dict, corpus: Path, tenant: str) -> dict:
    item = {k: v for k, v in raw.items() if k not in ("path", "event_id")}
    if "path" in raw:
        item["uri"] = (corpus / raw["path"]).resolve().as_uri()
    item["tenant"] = tenant
    return item


def block_metrics(items, policy, decide) -> dict:
    """Block precision/recall/coverage of `policy` over classified items, through `policy.decide`."""
    outcomes = [(item, decide(item.classified.vote, item.classified.neighbors, item.classified.anomaly, policy))
                for item in items]
    blocked = [item for item, out in outcomes if out.action == "block"]
    correct = sum(item.truth == item.classified.vote.label for item in blocked)
    labelled = sum(item.truth is not None for item in items)
    actions = Counter(out.action for _, out in outcomes)
    return {"items": len(items), "blocks": len(blocked), "correct_blocks": correct,
            "precision": correct / len(blocked) if blocked else None,
            "recall": correct / labelled if labelled else None,
            "coverage": 1 - actions.get("review", 0) / len(items) if items else 1.0,
            "actions": dict(sorted(actions.items()))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="/work/shared/data/dev-corpus")
    parser.add_argument("--target-precision", type=float, default=0.95)
    parser.add_argument("--review-precision", type=float, default=0.8)
    parser.add_argument("--min-support", type=int, default=1)
    parser.add_argument("--prior-weight", type=float, default=10.0,
                        help="as `governance calibrate --prior-weight` (0: the plain rule)")
    parser.add_argument("--all-items", action="store_true",
                        help="also use stream items without a bank label (truth null or __emerging__), as items "
                             "that should get no label (default: the labelled items only)")
    parser.add_argument("--seed", type=int, default=20260601)
    parser.add_argument("--splits", type=int, default=50, help="further seeded splits for a robustness summary")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    corpus = Path(args.corpus).resolve()
    os.environ["GOVERNANCE_FILE_ROOTS"] = str(corpus)
    scratch = None
    if not os.environ.get("DATABASE_URL"):
        scratch = tempfile.mkdtemp(prefix="governance-calcheck-")
        os.environ["GOVERNANCE_DATA_DIR"] = scratch

    from governance.moderation import calibration
    from governance.storage import repository
    from governance.moderation.backtest import calibrated_policy, evaluate_items
    from itertools import batched

    from governance.moderation.exemplar_banks import import_exemplars
    from governance.platform.config import Settings
    from governance.storage.db import resolve_database_url, session_factory
    from governance.embedding.factory import build_embedder
    from governance.storage.migrate import upgrade
    from governance.moderation.policy_rules import LabelPolicy, Policy, decide
    from governance.moderation.pipeline import Context

    settings = Settings.from_env()
    url = resolve_database_url(settings)
    try:
        upgrade(url)
        tenant = f"calcheck-{uuid.uuid4().hex[:8]}"
        ctx = Context(settings=settings, embedder=build_embedder(settings))
        print(f"embedder {ctx.embedder.model_id} ({ctx.embedder.dims} dims); tenant {tenant}; corpus {corpus}")

        bank = [as_event(raw, corpus, tenant) for raw in read_jsonl(corpus / "exemplars.jsonl")]
        truth = {row["asset_id"]: row for row in read_jsonl(corpus / "truth.jsonl")}
        stream = []
        for raw in read_jsonl(corpus / "stream.jsonl"):
            label = truth.get(raw.get("asset_id"), {}).get("label")
            stream.append({**as_event(raw, corpus, tenant), "label": None if label in NO_LABEL else label})

        session = session_factory(url)()
        try:
            repository.enter_tenant(session, tenant)  # row-level security, as the CLI does
            started = time.monotonic()
            imported = sum(import_exemplars(session, ctx, batch).imported for batch in batched(bank, 64))
            labels = sorted({item["label"] for item in bank})
            print(f"bank: {imported} exemplars, {len(labels)} labels ({time.monotonic() - started:.0f} s)")
            # Every label blocks, for the purpose of the check.
            base = Policy(version="calcheck-base", default=LabelPolicy(action="block"),
                          labels={label: LabelPolicy(action="block") for label in labels})
            # A vote depends only on the item and the bank, so the stream is classified once (the
            # same embedding, kNN, vote and anomaly score as `governance calibrate`) and every
            # split reuses it.
            classified, rejected = evaluate_items(session, ctx, tenant, base, stream)
            if not args.all_items:
                classified = [item for item in classified if item.truth is not None]
            print(f"stream: {len(classified)} items classified, {len(rejected)} invalid ones skipped "
                  f"({time.monotonic() - started:.0f} s)")
        finally:
            session.rollback()
            session.close()

        def run_split(seed: int):
            items = classified[:]
            random.Random(seed).shuffle(items)
            half_a, half_b = items[:len(items) // 2], items[len(items) // 2:]
            thresholds = calibration.choose_thresholds(
                [item.scored for item in half_a], args.target_precision, args.review_precision,
                min_support=args.min_support, prior_weight=args.prior_weight)
            policy = calibrated_policy(base, thresholds, "calcheck-calibrated")
            return half_a, half_b, thresholds, policy

        half_a, half_b, thresholds, policy = run_split(args.seed)
        print(f"\n== half A ({len(half_a)} items): calibration, seed {args.seed}, target {args.target_precision}, "
              f"review {args.review_precision}, prior weight {args.prior_weight} ==")
        print(calibration.format_report(calibration.evaluate([i.scored for i in half_a], thresholds)))
        print(f"\n== half B ({len(half_b)} items): held out ==")
        print(calibration.format_report(calibration.evaluate([i.scored for i in half_b], thresholds)))
        a, b = block_metrics(half_a, policy, decide), block_metrics(half_b, policy, decide)
        print(f"\nthrough policy.decide: half A {a['actions']}, half B {b['actions']}")
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"half A: block precision {fmt(a['precision'])} ({a['correct_blocks']}/{a['blocks']}), "
              f"recall {fmt(a['recall'])}, coverage {fmt(a['coverage'])}")
        print(f"half B: block precision {fmt(b['precision'])} ({b['correct_blocks']}/{b['blocks']}), "
              f"recall {fmt(b['recall'])}, coverage {fmt(b['coverage'])}   <- target {args.target_precision}")

        summary = []
        for seed in range(args.splits):
            _, other_b, _, other_policy = run_split(seed)
            summary.append(block_metrics(other_b, other_policy, decide))
        if summary:
            precisions = [m["precision"] for m in summary if m["precision"] is not None]
            met = sum(p >= args.target_precision for p in precisions)
            print(f"\n{args.splits} more splits (seeds 0..{args.splits - 1}): half-B block precision "
                  f"mean {fmt(sum(precisions) / len(precisions) if precisions else None)}, "
                  f"min {fmt(min(precisions) if precisions else None)}, target met in {met}, "
                  f"no block at all in {args.splits - len(precisions)}; mean recall "
                  f"{fmt(sum(m['recall'] for m in summary) / len(summary))}, mean coverage "
                  f"{fmt(sum(m['coverage'] for m in summary) / len(summary))}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "embedder": ctx.embedder.model_id, "seed": args.seed, "target_precision": args.target_precision,
                "review_precision": args.review_precision, "prior_weight": args.prior_weight,
                "all_items": args.all_items, "half_a": a, "half_b": b, "splits": summary,
                "thresholds": {k: {"auto": str(v.auto), "review": str(v.review)} for k, v in thresholds.items()},
            }, indent=2))
        print(f"\n({time.monotonic() - started:.0f} s)")
        return 0 if b["precision"] is not None and b["precision"] >= args.target_precision else 1
    finally:
        if scratch:
            from governance.platform.embedded_servers import stop_embedded

            stop_embedded(Path(scratch))


if __name__ == "__main__":
    sys.exit(main())
