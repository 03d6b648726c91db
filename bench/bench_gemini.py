"""Throughput of GeminiEmbedder against the local fake, with simulated network/model latency.

No network and no key needed: it shows what batching and `max_in_flight` buy when each call
costs `--latency` seconds, and what the client side (SDK, JSON, validation) costs per item.

    .venv/bin/python bench/bench_gemini.py --items 1000 --latency 0.3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from governance.embedders.base import Content, Task  # noqa: E402
from governance.embedders.gemini import GeminiEmbedder  # noqa: E402
from tests.fakes.fake_gemini import FakeGemini  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per HTTP call")
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()

    items = [Content("text", "text/plain", text=f"user post number {i} about something") for i in range(args.items)]
    print(f"{args.items} text items, {args.latency:.2f}s per call, dims={args.dims}")
    print(f"{'in_flight':>9} {'seconds':>8} {'items/s':>9} {'calls':>6} {'peak_conc':>9}")
    for in_flight in args.in_flight:
        with FakeGemini(latency_s=args.latency) as fake:
            embedder = GeminiEmbedder(api_key=fake.api_key, base_url=fake.base_url, dims=args.dims,
                                      max_in_flight=in_flight)
            started = time.perf_counter()
            embedder.embed(items, Task.CLASSIFICATION)
            elapsed = time.perf_counter() - started
            embedder.close()
            print(f"{in_flight:>9} {elapsed:>8.2f} {args.items / elapsed:>9.0f} {embedder.usage.calls:>6}"
                  f" {fake.max_concurrency:>9}")


if __name__ == "__main__":
    main()
