"""Where a worker's time goes, per event: client CPU, server CPU, per-statement server time, cProfile.

Not part of the suite (profiling skews timings); run it when the e2e ratio is missed:

    .venv/bin/python -m bench.profile_upload [--events 300] [--top 25]

It runs the task's two transactions (count the delivery, decide) in this process, on the bench's
own embedded PostgreSQL, with the hashing embedder, after a warm-up: per batch of `--batch`
events as governance.process_uploads does (default GOVERNANCE_UPLOAD_BATCH_SIZE), or with
`--batch 1` per event as governance.process_upload does. Pass 1 is not
profiled: it splits wall time into this process's CPU, the server backend's CPU and the rest
(waiting: fsync at commit, scheduling on a busy box). Pass 2 logs every statement's server-side
duration and runs cProfile.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import time
from collections import Counter, defaultdict

from bench.common import embedded_servers, make_texts, psycopg_uri

# "duration: 0.123 ms  statement: ..." or "... execute <unnamed>: \n   WITH ..." (multi-line SQL)
DURATION = re.compile(r"duration: ([0-9.]+) ms\s+(?:statement|execute [^:]*):\s*(.*)")


def server_times(log_text: str, events: int) -> list[tuple[float, int, str]]:
    """(ms per event, calls per event, statement) from log_min_duration_statement lines."""
    totals: dict[str, list[float]] = defaultdict(list)
    for match in DURATION.finditer(log_text):
        totals[" ".join(match.group(2).split())[:70]].append(float(match.group(1)))
    return sorted(((sum(v) / events, round(len(v) / events), k) for k, v in totals.items()), reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events per pass")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--batch", type=int, default=None, help="events per task (1: the single-event task)")
    parser.add_argument("--callers", default=None, help="also print who calls the functions matching this")
    args = parser.parse_args()

    import psutil
    import psycopg
    from sqlalchemy import event, text

    from governance.moderation.exemplar_banks import import_exemplars
    from governance.platform.config import Settings
    from governance.storage.db import engine_for, session_factory, transaction
    from governance.embedding.factory import build_embedder
    from governance.storage import repository
    from governance.moderation.pipeline import Context
    from governance.ingest.inbox import accept_events, count_delivery
    from governance.moderation.batch_pipeline import process_upload, process_uploads

    n = args.events
    with embedded_servers("profile") as servers:
        settings = Settings.from_env()
        if settings.embedder_threads:  # as in a worker child (worker/signals.py): one BLAS thread
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=settings.embedder_threads)
        ctx = Context(settings=settings, embedder=build_embedder(settings))
        engine, factory = engine_for(servers["database_url"]), session_factory(servers["database_url"])
        bank, labels = make_texts(200, seed=31)
        with transaction(factory) as session:
            import_exemplars(session, ctx, [{"tenant": "p", "asset_id": f"x{i}", "text": t, "label": label}
                                            for i, (t, label) in enumerate(zip(bank, labels))])
        texts, _ = make_texts(2 * n + 50, seed=32)
        with transaction(factory) as session:
            keys = accept_events(session, [(i, {"tenant": "p", "asset_id": f"e{i}", "text": t})
                                           for i, t in enumerate(texts)]).new

        batch = args.batch or settings.upload_batch_size

        def decide_all(pairs: list[tuple[str, str]]) -> None:
            for start in range(0, len(pairs), batch):
                part = pairs[start:start + batch]
                if batch == 1:
                    with transaction(factory) as session:
                        count_delivery(session, ctx.settings, *part[0])
                    with transaction(factory) as session:
                        process_upload(session, ctx, *part[0])
                    continue
                ids = [event_id for _, event_id in part]
                with transaction(factory) as session:
                    repository.count_batch_delivery(session, "p", ids)
                with transaction(factory) as session:
                    process_uploads(session, ctx, "p", ids)

        decide_all(keys[:50])  # warm-up: anomaly threshold cached, statements prepared, pool filled
        # Pass 1, unprofiled. The pool hands this one thread the same connection every time.
        with engine.connect() as conn:
            backend = psutil.Process(conn.execute(text("SELECT pg_backend_pid()")).scalar())
        me = psutil.Process()
        cpu0, srv0, started = me.cpu_times(), backend.cpu_times(), time.perf_counter()
        decide_all(keys[50:50 + n])
        wall = time.perf_counter() - started
        cpu1, srv1 = me.cpu_times(), backend.cpu_times()
        client_ms = 1e3 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / n
        server_ms = 1e3 * (srv1.user + srv1.system - srv0.user - srv0.system) / n

        # Pass 2: statement counts, server-side durations from the log, and cProfile.
        log_path = servers["data_dir"] / "postgres" / "log"
        with psycopg.connect(psycopg_uri(servers["database_url"]), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
            admin.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)
        log_start = log_path.stat().st_size
        statements: Counter = Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def count(conn, cursor, statement, *rest):  # noqa: ANN001
            statements[" ".join(statement.split())[:70]] += 1

        profile = cProfile.Profile()
        profile.enable()
        decide_all(keys[50 + n:])
        profile.disable()
        with open(log_path, errors="replace") as handle:
            handle.seek(log_start)
            server_log = handle.read()

    print(f"pass 1 (no profiler): {1e3 * wall / n:.1f} ms/event wall ({n / wall:.1f} events/s in one process): "
          f"{client_ms:.1f} ms client CPU, {server_ms:.1f} ms server CPU, "
          f"{1e3 * wall / n - client_ms - server_ms:.1f} ms waiting")
    print(f"batch {batch}; SQL statements per event: {sum(statements.values()) / n:.2f} "
          f"(+ BEGIN/COMMIT x2 per {'event' if batch == 1 else 'batch'})")
    for statement, calls in statements.most_common():
        print(f"  {calls / n:4.1f}  {statement}")
    timed = server_times(server_log, n)
    print(f"\nserver-side execution (pass 2): {sum(t[0] for t in timed):.2f} ms/event")
    for ms, calls, statement in timed[:12]:
        print(f"  {ms:6.3f} ms  x{calls}  {statement}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
        print(f"\n--- cProfile (pass 2), top {args.top} by {order} ---")
        print("\n".join(out.getvalue().splitlines()[6:]))
    if args.callers:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).print_callers(args.callers)
        print(f"\n--- callers of {args.callers} ---\n{out.getvalue()}")


if __name__ == "__main__":
    main()
