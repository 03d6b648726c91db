"""The benchmark suite: `python -m bench [--quick] [--only NAME ...]`.

Runs each section in turn (a failing section becomes an error row; the rest still run), prints
one table (name | figure | baseline | ratio | target | met?) and writes bench/results.json.
The machines are shared and noisy, so every figure sits next to a baseline measured in the same
run; the ratio is what to compare between runs, not the raw figure.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import rows as table_rows  # noqa: E402

SECTIONS = ("pipeline", "scaling", "api", "gemini", "knn", "knn_indexes", "writes", "clustering", "embedders", "images",
            "hashes", "memory")
TOTAL_BUDGET_S = {True: 5 * 60, False: 30 * 60}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "ram_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def run_section(name: str, quick: bool, started: float) -> dict:
    import importlib

    if name == "memory":
        # The memory section is the only elastic one: it takes what is left of the time budget.
        from bench import bench_memory

        left = TOTAL_BUDGET_S[quick] - (time.monotonic() - started) - 30
        if quick:
            bench_memory.BUDGET_QUICK_S = max(20, min(bench_memory.BUDGET_QUICK_S, left))
        else:
            bench_memory.BUDGET_FULL_S = max(60, min(600, left))
    if name == "knn":
        # kNN picks 1M or 300k; it must leave room for the sections after it (~4.5 min).
        from bench import bench_knn

        bench_knn.DEADLINE = started + TOTAL_BUDGET_S[quick] - 270
    module = importlib.import_module(f"bench.bench_{name}")
    return module.run(quick)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes; under 5 minutes")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()

    # Ctrl-C, and SIGTERM (or SIGINT to a background job, which the shell makes ignore it),
    # unwind through the sections' finally blocks: workers stopped, embedded servers stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    results = {"quick": args.quick, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "sections": {}}
    for name in args.only or SECTIONS:
        print(f"== {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            section = run_section(name, args.quick, started)
        except Exception as exc:  # noqa: BLE001 - one broken section must not stop the others
            section = {"error": f"{type(exc).__name__}: {exc}"[:500], "traceback": traceback.format_exc()[-3000:]}
            print(section["traceback"], file=sys.stderr, flush=True)
        section["section_seconds"] = round(time.monotonic() - t0, 1)
        results["sections"][name] = section
        print(f"   {name} took {section['section_seconds']:.0f}s" + (" (FAILED)" if "error" in section else ""),
              flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))  # partial results survive a crash

    results["total_seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    rows = [row for name in results["sections"] for row in table_rows.for_section(name, results["sections"][name])]
    results["table"] = rows
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    m = results["machine"]
    print(f"\n{m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}; "
          f"load average {m['load_average_start']} -> {m['load_average_end']}; "
          f"{'quick' if args.quick else 'full'} run took {results['total_seconds'] / 60:.1f} min")
    print(table_rows.render(rows))
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
