"""Benchmark governance.clustering.analysis.analyse on synthetic 768-d spam waves with ground truth.

Each measurement runs in a fresh subprocess, so its peak RSS is its own. The peak is reset right
before the call (/proc/self/clear_refs, else ru_maxrss over the whole process), so "peak RSS"
covers interpreter + imports + input data + the call, and "own peak" = peak - RSS before the call.
The baseline, measured in the same run, is scikit-learn's HDBSCAN with the same
min_cluster_size/min_samples on the raw 768-d vectors.

    .venv/bin/python bench/bench_clustering.py            # 5k, 30k, 100k + raw baseline at 5k; 1M sampled
    .venv/bin/python bench/bench_clustering.py --quick    # 3k, 6k, 12k + raw baseline at 3k; 200k sampled

The sampled run at scale (1M, GOVERNANCE_CLUSTER_SAMPLE's default) and the assignment rule's
agreement with the unsampled run (every row through HDBSCAN, at 30k) are measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIMS = 768
SAMPLE = 20_000  # GOVERNANCE_CLUSTER_SAMPLE's default
WAVES = 40
NOISE_SHARE = 0.10  # background uploads that belong to no wave
SPREAD = 0.8  # norm of a member's offset from its wave centre before normalising (cos to centre ~0.78)
# Quick sizes stay small because the raw 768-d baseline is O(n^2 d): ~11 s at 3k, ~2 min at 10k.
# The full run starts at 5k too: the baseline runs at sizes[0], and at 10k it took ~4 min on the
# shared 2-core box, too much of the suite's 30-minute budget (`python -m bench`).
FULL_SIZES, QUICK_SIZES = (5_000, 30_000, 100_000), (3_000, 6_000, 12_000)
# The sampled run at scale, and the size at which the sampled result is compared with the unsampled
# one (HDBSCAN on every row), each with the sample size it uses. The unsampled run is what limits the
# size: HDBSCAN's kd-tree barely prunes in 50 dimensions, and at 100k it took over 20 CPU-minutes,
# most of the suite's 30-minute budget. At 30k with a 6k sample, four rows in five still go through the rule.
FULL_SCALE, QUICK_SCALE = (1_000_000, SAMPLE), (200_000, SAMPLE)
FULL_AGREEMENT, QUICK_AGREEMENT = (30_000, 6_000), (12_000, 3_000)


def make_waves(n: int, seed: int = 0, dims: int = DIMS) -> tuple[np.ndarray, np.ndarray]:
    """Unit float32 vectors: WAVES blobs of power-law sizes plus NOISE_SHARE random directions
    (truth -1). Generated in chunks so the input itself costs only n * dims * 4 bytes."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((WAVES, dims)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, WAVES + 1) ** 0.8
    truth = rng.choice(WAVES, size=n, p=weights / weights.sum())
    truth[rng.random(n) < NOISE_SHARE] = -1
    vectors = np.empty((n, dims), dtype=np.float32)
    for start in range(0, n, 10_000):
        t = truth[start:start + 10_000]
        block = rng.standard_normal((t.size, dims), dtype=np.float32)
        offset = block * np.float32(SPREAD / math.sqrt(dims))
        rows = np.where(t[:, None] >= 0, centres[t] + offset, block)
        vectors[start:start + t.size] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return vectors, truth


def quality(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """ARI with every noise point (true or predicted) as its own singleton: counting noise as one
    group would give a perfect score to a method that lumps all background uploads together."""
    def singletons(labels: np.ndarray) -> np.ndarray:
        out = labels.copy()
        noise = out < 0
        out[noise] = labels.max(initial=0) + 1 + np.arange(noise.sum())
        return out

    from sklearn.metrics import adjusted_rand_score
    background = truth < 0
    return {"ari": round(float(adjusted_rand_score(singletons(truth), singletons(predicted))), 4),
            "background_to_noise": round(float((predicted[background] < 0).mean()), 3) if background.any() else 1.0,
            "members_to_noise": round(float((predicted[~background] < 0).mean()), 3), **wave_recovery(truth, predicted)}


def wave_recovery(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """The worst purity and coverage over the planted waves, each wave matched to the cluster that
    holds most of its members: purity is that cluster's share of rows from the wave (background
    rows it swallowed count against it), coverage the wave's share of rows in that cluster. The
    smallest wave is the one a report must find as an emerging group."""
    waves, clustered = truth >= 0, predicted >= 0
    n_waves, n_clusters = int(truth.max(initial=-1)) + 1, int(predicted.max(initial=-1)) + 1
    if n_waves == 0 or n_clusters == 0:
        return {"worst_wave_purity": 0.0, "worst_wave_coverage": 0.0}
    both = waves & clustered
    counts = np.zeros((n_waves, n_clusters), dtype=np.int64)
    np.add.at(counts, (truth[both], predicted[both]), 1)
    best = counts.argmax(axis=1)
    hits = counts[np.arange(n_waves), best]
    wave_sizes = np.bincount(truth[waves], minlength=n_waves)
    cluster_sizes = np.bincount(predicted[clustered], minlength=n_clusters)
    present = wave_sizes > 0
    purity = np.where(hits > 0, hits / np.maximum(cluster_sizes[best], 1), 0.0)[present]
    coverage = (hits / np.maximum(wave_sizes, 1))[present]
    return {"worst_wave_purity": round(float(purity.min()), 3), "worst_wave_coverage": round(float(coverage.min()), 3)}


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset VmHWM (Linux >= 4.0), so the peak excludes building the input data."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _labels(report: dict, ids: list[str]) -> np.ndarray:
    cluster_of = {a: k for k, c in enumerate(report["clusters"]) for a in c["members"]}
    return np.array([cluster_of.get(a, -1) for a in ids])


def agreement(reference: np.ndarray, sampled: np.ndarray) -> dict:
    """How closely the sampled run reproduces the unsampled one: ARI (noise as singletons, as in
    quality()) and the share of rows whose noise/non-noise verdict is the same."""
    same = quality(reference, sampled)
    return {"ari_vs_unsampled": same["ari"],
            "same_noise_verdict": round(float(((reference < 0) == (sampled < 0)).mean()), 4)}


def _child_agreement(n: int, sample: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from governance.clustering.analysis import analyse

    vectors, truth = make_waves(n)
    ids = [f"a{i}" for i in range(n)]
    runs = {}
    for name, size in (("unsampled", n), ("sampled", sample)):
        started = time.perf_counter()
        report = analyse(ids, vectors, [None] * n, [None] * n, [False] * n, sample_size=size)
        runs[name] = (time.perf_counter() - started, _labels(report, ids))
    return {"kind": "agreement", "n": n, "sample": sample, **agreement(runs["unsampled"][1], runs["sampled"][1]),
            "unsampled_seconds": round(runs["unsampled"][0], 2), "sampled_seconds": round(runs["sampled"][0], 2),
            **{f"{name}_{key}": value for name in runs for key, value in quality(truth, runs[name][1]).items()
               if key in ("ari", "worst_wave_purity", "worst_wave_coverage")}}


def _child(kind: str, n: int, sample: int = SAMPLE) -> dict:
    from sklearn.cluster import HDBSCAN

    sys.path.insert(0, str(ROOT))
    from governance.clustering.analysis import analyse, min_samples_for

    if kind == "agreement":
        return _child_agreement(n, sample)
    vectors, truth = make_waves(n)
    ids = [f"a{i}" for i in range(n)]
    before = _status_mb("VmRSS")
    reset = _reset_peak()
    started = time.perf_counter()
    if kind == "ours":
        report = analyse(ids, vectors, [None] * n, [None] * n, [False] * n, sample_size=sample)
        elapsed = time.perf_counter() - started
        predicted = _labels(report, ids)
    else:  # the naive alternative: library defaults on the raw vectors, same density parameters
        predicted = HDBSCAN(min_cluster_size=8, min_samples=min_samples_for(8), copy=True).fit_predict(vectors)
        elapsed = time.perf_counter() - started
    # VmHWM after the reset is the peak RSS of the call itself; else fall back to the lifetime peak.
    peak = _status_mb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "n": n, "sample": sample, "seconds": round(elapsed, 2), "peak_rss_mb": round(peak),
            "input_mb": round(vectors.nbytes / 2**20),
            "own_peak_mb": round(peak - before), **quality(truth, predicted), "clusters": int(predicted.max() + 1)}


def _measure(kind: str, n: int, sample: int = SAMPLE) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(sample)], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def growth_exponent(rows: list[dict]) -> float:
    """Least-squares slope of log(seconds) against log(n)."""
    x = np.log([r["n"] for r in rows])
    y = np.log([max(r["seconds"], 1e-3) for r in rows])
    return float(np.polyfit(x, y, 1)[0])


def run(quick: bool) -> dict:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    load_before = os.getloadavg()[0]
    ours = [_measure("ours", n) for n in sizes]
    baseline = _measure("raw", sizes[0])
    at_scale = _measure("ours", *(QUICK_SCALE if quick else FULL_SCALE))
    rule = _measure("agreement", *(QUICK_AGREEMENT if quick else FULL_AGREEMENT))
    same = ours[0]
    # Timings are wall clock: other work on the machine inflates them, so the load is reported.
    return {"ours": ours, "baseline": baseline, "at_scale": at_scale, "agreement": rule,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "cpus": os.cpu_count(), "growth_exponent": round(growth_exponent(ours), 2),
            "speedup_vs_baseline": round(baseline["seconds"] / max(same["seconds"], 1e-3), 1),
            "memory_ratio_vs_baseline": round(baseline["own_peak_mb"] / max(same["own_peak_mb"], 1), 2)}


def _table(result: dict) -> str:
    head = (f"{'method':<30}{'n':>8}{'seconds':>9}{'peak RSS MB':>13}{'own peak MB':>13}{'ARI':>8}"
            f"{'clusters':>10}{'bg->noise':>11}{'wave->noise':>13}")
    lines = [head, "-" * len(head)]
    rows = [("PCA + HDBSCAN (analyse)", r) for r in result["ours"]]
    rows.append(("sklearn HDBSCAN, raw 768-d", result["baseline"]))
    rows.append((f"sampled ({result['at_scale']['sample'] // 1000}k) PCA + HDBSCAN", result["at_scale"]))
    for name, r in rows:
        lines.append(f"{name:<30}{r['n']:>8}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13}{r['own_peak_mb']:>13}"
                     f"{r['ari']:>8.3f}{r['clusters']:>10}{r['background_to_noise']:>11.1%}{r['members_to_noise']:>13.1%}")
    a = result["agreement"]
    lines.append(f"assignment rule at n={a['n']}, sample {a['sample']}: ARI vs the unsampled run {a['ari_vs_unsampled']}, "
                 f"same noise verdict {a['same_noise_verdict']:.1%}; ARI vs truth {a['sampled_ari']} sampled "
                 f"({a['sampled_seconds']} s) vs {a['unsampled_ari']} unsampled ({a['unsampled_seconds']} s)")
    lines.append(f"{result['cpus']} CPUs; 1-min load average before/after: {result['load_average']}")
    lines.append("ARI counts each noise point as a singleton; bg->noise: background uploads left as noise; "
                 "wave->noise: wave members lost to noise")
    lines.append(f"speed-up vs baseline at n={result['baseline']['n']}: {result['speedup_vs_baseline']}x; "
                 f"own-peak memory ratio {result['memory_ratio_vs_baseline']}x; "
                 f"time growth exponent (log-log slope over {len(result['ours'])} sizes): {result['growth_exponent']}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--json", action="store_true", help="print the result dict as JSON too")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "N", "SAMPLE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], int(args.child[1]), int(args.child[2]))))
    else:
        result = run(args.quick)
        print(_table(result))
        if args.json:
            print(json.dumps(result, indent=2))
