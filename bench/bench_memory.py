"""Memory: one long-lived process decides events through batch_pipeline.process_uploads; RSS is sampled.

The process does what a worker child does per governance.process_uploads message (count the
batch's delivery in one transaction, decide it in another, with one Context built once), in
batches of the default GOVERNANCE_UPLOAD_BATCH_SIZE, against the bench's own embedded PostgreSQL
and the hashing embedder. Every event has unique text, so nothing is served from a cache.
The baseline is the RSS after warm-up; the figure that matters is the slope afterwards: a
leak of 500 bytes per event shows as 5 MB per 10k events.

The section stops at its event target or its time budget, whichever comes first, and says which.

    .venv/bin/python -m bench.bench_memory [--quick]
"""
from __future__ import annotations

import json
import time

import numpy as np

from bench.common import embedded_servers, load_average, make_texts

TENANT = "mem"
TARGET_FULL, TARGET_QUICK = 100_000, 10_000
BUDGET_FULL_S, BUDGET_QUICK_S = 300, 60  # batched, 100k take about 2 min on 2 busy cores
SAMPLE_EVERY = {False: 250, True: 100}  # finer than every 1k so that short runs still give a slope
CHUNK = 1_000  # events accepted into the inbox at a time
WARM_UP_SHARE = 0.2  # RSS after the first 20% of events is the baseline
TARGET_SLOPE_MB_PER_10K = 5.0


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run(quick: bool = False) -> dict:
    from governance.moderation.exemplar_banks import import_exemplars
    from governance.storage import repository
    from governance.platform.config import Settings
    from governance.storage.db import session_factory, transaction
    from governance.embedding.factory import build_embedder
    from governance.moderation.pipeline import Context
    from governance.ingest.inbox import accept_events
    from governance.moderation.batch_pipeline import process_uploads

    target = TARGET_QUICK if quick else TARGET_FULL
    budget = BUDGET_QUICK_S if quick else BUDGET_FULL_S
    with embedded_servers("memory") as servers:
        settings = Settings.from_env()
        ctx = Context(settings=settings, embedder=build_embedder(settings))
        factory = session_factory(servers["database_url"])
        bank_texts, bank_labels = make_texts(200, seed=21)
        with transaction(factory) as session:
            import_exemplars(session, ctx, [{"tenant": TENANT, "asset_id": f"x{i}", "text": t, "label": label}
                                            for i, (t, label) in enumerate(zip(bank_texts, bank_labels))])
        samples = [(0, rss_mb())]
        done, started, chunk = 0, time.monotonic(), 0
        while done < target and time.monotonic() - started < budget:
            texts, _ = make_texts(CHUNK, seed=1_000 + chunk)
            with transaction(factory) as session:
                accepted = accept_events(session, [(i, {"tenant": TENANT, "asset_id": f"m{chunk}-{i}", "text": t})
                                                   for i, t in enumerate(texts)])
            chunk += 1
            ids = [event_id for _, event_id in accepted.new]
            for start in range(0, len(ids), settings.upload_batch_size):
                batch = ids[start:start + settings.upload_batch_size]
                with transaction(factory) as session:  # the task's first transaction
                    repository.enter_tenant(session, TENANT)
                    repository.count_batch_delivery(session, TENANT, batch)
                with transaction(factory) as session:
                    repository.enter_tenant(session, TENANT)
                    process_uploads(session, ctx, TENANT, batch)
                for _ in batch:
                    done += 1
                    if done % SAMPLE_EVERY[quick] == 0:
                        samples.append((done, rss_mb()))
                if done >= target or time.monotonic() - started >= budget:
                    break
        seconds = time.monotonic() - started
    return summarise(samples, done, target, seconds, budget)


def summarise(samples: list[tuple[int, float]], done: int, target: int, seconds: float, budget: float) -> dict:
    events = np.array([s[0] for s in samples], dtype=float)
    rss = np.array([s[1] for s in samples])
    warm_at = next((i for i, e in enumerate(events) if e >= WARM_UP_SHARE * done), len(events) - 1)
    half = events >= done / 2
    slope = float(np.polyfit(events[half], rss[half], 1)[0] * 10_000) if half.sum() >= 3 else float("nan")
    return {
        "events_target": target, "events_done": done, "reached_target": done >= target,
        "stopped_by": "target" if done >= target else f"time budget {budget:.0f}s",
        "seconds": round(seconds, 1), "events_per_s": round(done / max(seconds, 1e-9), 1),
        "rss_start_mb": round(float(rss[0]), 1), "rss_after_warmup_mb": round(float(rss[warm_at]), 1),
        "peak_rss_mb": round(float(rss.max()), 1), "rss_end_mb": round(float(rss[-1]), 1),
        "slope_mb_per_10k_second_half": round(slope, 2), "target_slope_mb_per_10k": TARGET_SLOPE_MB_PER_10K,
        "grows_after_warmup": bool(slope > TARGET_SLOPE_MB_PER_10K),
        "samples": [(int(e), round(float(r), 1)) for e, r in zip(events, rss)],
        "load_average": load_average(),
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick), indent=2))
