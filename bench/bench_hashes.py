"""Hash banks: PDQ hashing per image, and PDQ matching at 10k, 50k and 1M bank hashes.

    .venv/bin/python -m bench.bench_hashes [--quick]

PDQ is timed on the image section's synthetic 640 x 480 PNGs (decode + hash, as the pipeline
runs it), next to the surface image features the offline pipeline already computes per image.
Matching: a bank of uniformly random 256-bit hashes with near-copies planted at 4-24 bits; half the
queries are near-copies of bank hashes, half unrelated; radius 31. The exact scan (XOR + popcount
over the whole bank) is the baseline of the multi-index, which must return the same rows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from governance.moderation.hash_index import ExactHammingIndex, MultiIndexHamming  # noqa: E402

SIZES = (10_000, 50_000, 1_000_000)
RADIUS = 31


def _per_item_ms(fn, items: list, min_seconds: float) -> float:
    fn(items[0])  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        for item in items:
            fn(item)
        done += len(items)
    return (time.perf_counter() - start) / done * 1000


def hashing(quick: bool) -> dict:
    from bench.bench_images import make_images
    from governance.embedding.backends.image_features import image_features
    from governance.ingest.content_hashes import pdq_hash

    images = make_images(8 if quick else 24)
    seconds = 1.0 if quick else 4.0
    return {"images": len(images), "pdq_ms": _per_item_ms(pdq_hash, images, seconds),
            "surface_features_ms": _per_item_ms(image_features, images, seconds)}


def _bank(n: int, rng) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=(n, 4), dtype=np.uint64, endpoint=True)


def _flip(rng, packed: np.ndarray, bits: int) -> np.ndarray:
    out = packed.copy()
    for b in rng.choice(256, size=bits, replace=False):
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def _latencies_ms(index, queries: np.ndarray) -> tuple[list[float], list]:
    times, answers = [], []
    for q in queries:
        start = time.perf_counter()
        answers.append(index.within(q, RADIUS))
        times.append((time.perf_counter() - start) * 1000)
    return times, answers


def matching(n: int, queries: int, rng) -> dict:
    bank = _bank(n, rng)
    planted = rng.choice(n, size=queries // 2, replace=False)
    for i in planted[: queries // 4]:  # near-copies inside the bank too, so answers are not always one row
        bank[int(rng.integers(0, n))] = _flip(rng, bank[i], int(rng.integers(4, 25)))
    qs = np.stack([_flip(rng, bank[i], int(rng.integers(4, 25))) for i in planted] + list(_bank(queries // 2, rng)))
    start = time.perf_counter()
    multi = MultiIndexHamming(bank)
    build_s = time.perf_counter() - start
    exact = ExactHammingIndex(bank)
    exact_ms, exact_answers = _latencies_ms(exact, qs)
    multi_ms, multi_answers = _latencies_ms(multi, qs)
    return {"n": n, "queries": len(qs), "build_s": build_s,
            "exact_p50_ms": float(np.percentile(exact_ms, 50)), "exact_p99_ms": float(np.percentile(exact_ms, 99)),
            "multi_p50_ms": float(np.percentile(multi_ms, 50)), "multi_p99_ms": float(np.percentile(multi_ms, 99)),
            "same_answers": exact_answers == multi_answers,
            "matched_queries": sum(1 for a in exact_answers if a)}


def run(quick: bool = False) -> dict:
    rng = np.random.default_rng(5)
    return {"quick": quick, "load_average_1m": os.getloadavg()[0], "hashing": hashing(quick),
            "matching": [matching(n, 100 if quick else 400, rng) for n in SIZES]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer images and queries")
    print(json.dumps(run(parser.parse_args().quick), indent=1))


if __name__ == "__main__":
    main()
