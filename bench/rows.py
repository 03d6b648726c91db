"""Turn each section's result dict into table rows: name | figure | baseline | ratio | target | met?

`ratio` is always figure / baseline. The target says what it applies to (the ratio or the figure);
rows without a target from the issue are informational ("-" / "n/a").
"""
from __future__ import annotations


def row(name: str, figure: str, baseline: str = "-", ratio: float | None = None, target: str = "-",
        met: bool | None = None, note: str = "") -> dict:
    return {"name": name, "figure": figure, "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 3), "target": target,
            "met": "n/a" if met is None else ("yes" if met else "NO"), "note": note}


def _pipeline(r: dict) -> list[dict]:
    p, f = r["pipeline"], r["floor"]
    return [
        row("e2e throughput", f"{p['sustained_events_per_s']:.1f} ev/s", f"{f['events_per_s']:.0f} ev/s floor",
            r["ratio_to_floor"], ">= 0.50 of floor", r["ratio_to_floor"] >= 0.5,
            f"{p['events']} events, 2 worker processes; floor = 1 process, no queue/DB, batches of "
            f"{r.get('upload_batch_size', 1)}"),
        *([row("e2e vs one-at-a-time floor", f"{p['sustained_events_per_s']:.1f} ev/s",
               f"{r['floor_single']['events_per_s']:.0f} ev/s floor", r["ratio_to_floor_single"], "-", None,
               "the floor embedding one event per call, as the worker did before batching")]
          if "floor_single" in r else []),
        row("e2e latency p50 / p99", f"{p['latency_p50_s']:.1f} s / {p['latency_p99_s']:.1f} s", "-", None, "-", None,
            f"whole burst published at once: latency is mostly queueing (drain {p['drain_s']:.0f} s)"),
        row("e2e growth exponent", f"{r['growth_exponent']:.2f}", "1.0 = linear", r["growth_exponent"], "-", None,
            "drain time vs N at " + ", ".join(str(g["events"]) for g in r["growth"])),
    ]


def _gemini(r: dict) -> list[dict]:
    out = []
    for key, label in (("bulk_paced", "gemini bulk, client bucket"), ("bulk_shared", "gemini bulk, shared Redis bucket")):
        b = r[key]
        out.append(row(label, f"{b['items_per_s']:.1f} items/s", f"{b['quota_bound_per_s']:.1f} quota max",
                       b["ratio"], ">= 0.90 of quota", b["ratio"] >= 0.9,
                       (f"{b['processes']} processes, " if "processes" in b else "")
                       + f"{b['embedded']}/{b['items']} items, {b['retries']} retries, {b['server_429s']} 429s"
                       + (f"; FAILED: {b['error'][:60]}" if b["error"] else "")))
    w = r["worker_shaped"]
    out.append(row("gemini worker-shaped", f"{w['items_per_s']:.1f} items/s", f"{w['quota_per_s']:.0f} quota",
                   w["ratio"], "-", None, f"{w['processes']} one-item callers; quota needs "
                                          f"{w['in_flight_needed']} in flight"))
    return out


def _knn(r: dict) -> list[dict]:
    m = r["main"]
    h, n = m["hnsw"], m["n"]
    at = f"@{n // 1000}k"
    scope = "" if n >= 1_000_000 else " (target is for 1M)"
    recall, p99 = r["targets"]["recall_at_10"], r["targets"]["p99_ms"]
    rows = [row(f"kNN recall@10 {at} ef={s['ef_search']}", f"{s['recall_at_10']:.4f}", "1.0 exact",
                s["recall_at_10"], "-", None, f"p99 {s['p99_ms']:.1f} ms; the ef_search sweep")
            for s in m.get("ef_sweep", [])]
    rows += [
        row(f"kNN recall@10 {at}", f"{h['recall_at_10']:.4f}", "1.0 exact", h["recall_at_10"], f">= {recall}",
            h["recall_at_10"] >= recall,
            f"halfvec HNSW m={r['m']} ef_c={r['ef_construction']} ef_s={h['ef_search']}{scope}"),
        row(f"kNN p99 latency {at}", f"{h['p99_ms']:.1f} ms", f"{m['exact_p99_ms']:.1f} ms numpy exact",
            h["p99_ms"] / m["exact_p99_ms"], f"<= {p99} ms", h["p99_ms"] <= p99,
            f"p50 {h['p50_ms']:.1f} ms vs exact {m['exact_p50_ms']:.1f} ms{scope}"),
        row(f"kNN build {at}", f"{m['build_s']:.0f} s", "-", None, "-", None,
            f"COPY {m['copy_rows_per_s']} rows/s; index {m['index_mb']} MB"
            + (f"; 1M predicted {r['predicted_1m_build_s']} s" if "predicted_1m_build_s" in r else "")),
    ]
    if "tenant_filtered" in m:
        t, off = m["tenant_filtered"], m["tenant_filtered_no_iterative"]
        rows.append(row(f"kNN tenant filter {at}", f"{t['min_rows']} min rows, recall {t['recall_at_10']:.3f}",
                        f"{off['min_rows']} min rows w/o iterative", None, "10 rows", t["min_rows"] == 10,
                        f"relaxed_order; without it {off['share_with_10_rows']:.0%} of queries got 10 rows"))
        if "tenant_filtered_wide" in m:
            w = m["tenant_filtered_wide"]
            rows.append(row(f"kNN tenant filter ef={w['ef_search']}", f"recall {w['recall_at_10']:.3f}",
                            f"recall {t['recall_at_10']:.3f} at ef={t['ef_search']}", None, "-", None,
                            f"p99 {w['p99_ms']:.1f} ms"))
    rows.append(row("kNN latency growth exp.", f"{r['latency_growth_exponent']:.2f}", "1.0 = linear (exact)",
                    r["latency_growth_exponent"], "-", None,
                    "p50 vs N at " + ", ".join(f"{s['n'] // 1000}k" for s in r["sizes"])
                    + f"; build exponent {r['build_growth_exponent']:.2f}"))
    return rows


def _writes(r: dict) -> list[dict]:
    c, i = r["copy_binary"], r["insert"]
    out = [row("COPY binary vectors/s", f"{c['rows_per_s']} rows/s", f"{i['rows_per_s']} rows/s INSERT",
               r["copy_over_insert"], "-", None,
               f"INSERT in one txn; commit per row {r['insert_commit_each']['rows_per_s']}/s, "
               f"executemany {r['executemany']['rows_per_s']}/s, COPY text {r['copy_text']['rows_per_s']}/s")]
    if "copy_halfvec" in r:
        h = r["copy_halfvec"]
        out.append(row("COPY binary halfvec/s", f"{h['rows_per_s']} rows/s", f"{c['rows_per_s']} rows/s vector",
                       h["rows_per_s"] / c["rows_per_s"], "-", None, "halfvec rows stay under the TOAST threshold"))
    return out


def _clustering(r: dict) -> list[dict]:
    ours, base = r["ours"], r["baseline"]
    same = next((o for o in ours if o["n"] == base["n"]), ours[0])
    big = ours[-1]
    return [
        row(f"clustering @{same['n'] // 1000}k", f"{same['seconds']:.1f} s", f"{base['seconds']:.1f} s sklearn HDBSCAN",
            same["seconds"] / max(base["seconds"], 1e-3), "-", None,
            f"ARI {same['ari']:.3f} vs {base['ari']:.3f}; peak {same['own_peak_mb']} vs {base['own_peak_mb']} MB"),
        row(f"clustering @{big['n'] // 1000}k", f"{big['seconds']:.1f} s", "-", None, "-", None,
            f"ARI {big['ari']:.3f}, own peak {big['own_peak_mb']} MB"),
        row("clustering growth exp.", f"{r['growth_exponent']:.2f}", "1.0 = linear", r["growth_exponent"], "-", None,
            "seconds vs N at " + ", ".join(f"{o['n'] // 1000}k" for o in ours)),
        *_clustering_at_scale(r, big),
    ]


def _clustering_at_scale(r: dict, full: dict) -> list[dict]:
    if "at_scale" not in r:
        return []
    s, a = r["at_scale"], r["agreement"]
    return [
        row(f"clustering @{s['n'] // 1000}k (sampled)", f"{s['seconds']:.1f} s, peak {s['peak_rss_mb']} MB",
            f"{full['seconds']:.1f} s @{full['n'] // 1000}k", s["seconds"] / max(full["seconds"], 1e-3),
            "<= 300 s", s["seconds"] <= 300,
            f"sample {s['sample'] // 1000}k; own peak {s['own_peak_mb']} MB over {s['input_mb']} MB of input; "
            f"ARI {s['ari']:.3f}"),
        row(f"clustering assignment vs unsampled @{a['n'] // 1000}k", f"ARI {a['ari_vs_unsampled']:.3f}",
            "1.0 = the unsampled run", a["ari_vs_unsampled"], "-", None,
            f"sample {a['sample'] // 1000}k; same noise verdict {a['same_noise_verdict']:.1%}; ARI vs truth "
            f"{a['sampled_ari']:.3f} sampled ({a['sampled_seconds']:.0f} s) vs {a['unsampled_ari']:.3f} unsampled "
            f"({a['unsampled_seconds']:.0f} s)"),
        *_planted_waves(s, a),
    ]


def _planted_waves(s: dict, a: dict) -> list[dict]:
    """Every planted wave found (the smallest is the emerging group a report must catch), with the
    issue's bar: purity >= 0.9 and coverage >= 0.8, sampled at scale and unsampled at the agreement size."""
    if "worst_wave_purity" not in s:
        return []

    def found(p: float, c: float) -> bool:
        return p >= 0.9 and c >= 0.8

    unsampled = (a["unsampled_worst_wave_purity"], a["unsampled_worst_wave_coverage"])
    return [
        row(f"clustering planted waves @{s['n'] // 1000}k (sampled)",
            f"purity {s['worst_wave_purity']:.3f} / coverage {s['worst_wave_coverage']:.3f}",
            f"{unsampled[0]:.3f} / {unsampled[1]:.3f} unsampled @{a['n'] // 1000}k", None, ">= 0.9 / >= 0.8",
            found(s["worst_wave_purity"], s["worst_wave_coverage"]) and found(*unsampled),
            f"worst over the planted waves, {s['clusters']} clusters found; sampled @{a['n'] // 1000}k: "
            f"{a['sampled_worst_wave_purity']:.3f} / {a['sampled_worst_wave_coverage']:.3f}"),
    ]


def _memory(r: dict) -> list[dict]:
    scope = f"{r['events_done']} of {r['events_target']} events ({r['stopped_by']})"
    return [
        row("worker peak RSS", f"{r['peak_rss_mb']:.0f} MB", f"{r['rss_after_warmup_mb']:.0f} MB after warm-up",
            r["peak_rss_mb"] / r["rss_after_warmup_mb"], "-", None, scope),
        row("RSS slope after warm-up", f"{r['slope_mb_per_10k_second_half']:.2f} MB/10k ev", "-", None,
            f"<= {r['target_slope_mb_per_10k']} MB/10k", not r["grows_after_warmup"],
            f"second half of the run; {r['events_per_s']} ev/s in-process"),
    ]


def _images(r: dict) -> list[dict]:
    return [row("EfficientNet-Lite0 images/s", f"{r['effnet_images_per_s']:.1f} img/s",
                f"{r['surface_images_per_s']:.1f} img/s surface features", r["effnet_images_per_s"] / r["surface_images_per_s"],
                "-", None, f"640x480 PNGs, batches of {r['batch']}, 1 BLAS thread; a batch peaks "
                f"{r['batch_peak_mb']} MB over the {r['weights_rss_mb']} MB loaded process"),
            row("OCR per image, with text", f"{r['ocr_ms_text']:.0f} ms", f"{1000 / r['effnet_images_per_s']:.0f} ms "
                "EfficientNet-Lite0", r["ocr_ms_text"] * r["effnet_images_per_s"] / 1000, "-", None,
                f"RapidOCR, 1 thread, 640x480 PNGs with 3 lines of text; without text {r['ocr_ms_no_text']:.0f} ms")]


def _embedders(r: dict) -> list[dict]:
    w = next(x for x in r["rows"] if x["batch"] == 32)
    default, faster = r["default_text_backend"], r["faster_text_backend"]
    cells = ", ".join(f"batch {x['batch']}: numpy {x['minilm_per_s']:.1f} / onnx {x['onnx_per_s']:.1f}"
                      for x in r["rows"])
    return [
        row("offline text, int8 ONNX", f"{w['onnx_per_s']:.1f} texts/s", f"{w['minilm_per_s']:.1f} texts/s numpy",
            r["onnx_over_minilm_geomean"], "default is faster", default == faster,
            f"texts/s on {r['threads'] or 'all'} thread(s), best of alternating rounds ({cells}); ratio = "
            f"geometric mean over batch sizes; default: {default}, faster here: {faster}"),
        row("offline text, hashing", f"{w['hashing_per_s']:.0f} texts/s", f"{w['minilm_per_s']:.1f} texts/s numpy",
            w["hashing_over_minilm"], "-", None, "the non-semantic fallback, for scale (batch 32)"),
    ]


def _api(r: dict) -> list[dict]:
    w = r["wait"]
    return [
        row("API ingest throughput", f"{r['api_events_per_s']:.0f} ev/s", f"{r['publish_events_per_s']:.0f} ev/s publish",
            r["ratio"], ">= 0.80 of publish", r["ratio"] >= 0.8,
            f"{r['events']} events, POST /v1/events in batches of {r['batch']}, one connection; "
            "`governance publish FILE` as run, process start included"),
        row("API ingest vs publish_file", f"{r['api_events_per_s']:.0f} ev/s",
            f"{r['publish_file_events_per_s']:.0f} ev/s in process", r["ratio_to_publish_file"], "-", None,
            "publish's function in the bench process: one INSERT for the file, no process start"),
        row("API ?wait= latency p50/p99", f"{w['p50_ms']:.0f} ms / {w['p99_ms']:.0f} ms", "-", None, "-", None,
            f"{w['requests']} single text events, offline embedder, 2 worker processes; "
            f"{w['answered_202']} answered 202"),
    ]


def _hashes(r: dict) -> list[dict]:
    h = r["hashing"]
    out = [row("PDQ hashing per image", f"{h['pdq_ms']:.1f} ms", f"{h['surface_features_ms']:.1f} ms surface features",
               h["pdq_ms"] / h["surface_features_ms"], "-", None,
               f"decode + pdqhash of {h['images']} 640x480 PNGs; baseline: the per-image features already computed")]
    for m in r["matching"]:
        at = f"@{m['n'] // 1000}k" if m["n"] < 1_000_000 else f"@{m['n'] // 1_000_000}M"
        out.append(row(f"PDQ match {at}, multi-index", f"{m['multi_p50_ms']:.2f} ms p50",
                       f"{m['exact_p50_ms']:.2f} ms p50 exact scan", m["multi_p50_ms"] / m["exact_p50_ms"],
                       "same answers", m["same_answers"],
                       f"radius 31, {m['queries']} queries ({m['matched_queries']} with a match); p99 "
                       f"{m['multi_p99_ms']:.1f} vs {m['exact_p99_ms']:.1f} ms; built in {m['build_s']:.2f} s"))
    return out


def _scaling(r: dict) -> list[dict]:
    one = r["layouts"][0]
    return [row(f"scaling: {layout['name']}", f"{layout['sustained_events_per_s']:.1f} ev/s",
                f"{one['sustained_events_per_s']:.1f} ev/s, 1 process", layout["ratio_to_one_process"], "-", None,
                f"{r['events']} events; load average {layout['load_average']}")
            for layout in r["layouts"]]


def _first_at(index: dict, recall: float) -> dict | None:
    return next((q for q in index["queries"] if q["recall_at_10"] >= recall), None)


def _knob(q: dict) -> str:
    short = {"ef_search": "ef", "query_search_list_size": "sl", "query_rescore": "rescore"}
    return " ".join(f"{short.get(k, k)}={v}" for k, v in q.items() if k not in ("recall_at_10", "p50_ms", "p99_ms"))


def _indexes(r: dict) -> list[dict]:
    want, out = r["targets"]["recall_at_10"], []
    for size in r["sizes"]:
        at = f"@{size['n'] // 1000}k"
        current = next((ix for ix in size["indexes"] if ix["index"] == r.get("current_index")), None)
        base = _first_at(current, want) if current else None
        for index in size["indexes"]:
            hit = _first_at(index, want)
            figure = (f"p99 {hit['p99_ms']:.1f} ms ({_knob(hit)})" if hit
                      else f"recall {max(q['recall_at_10'] for q in index['queries']):.3f} at most")
            out.append(row(f"kNN {index['index']} {at}", figure,
                           f"p99 {base['p99_ms']:.1f} ms current" if base
                           else "current never reaches it" if current else "current not measured",
                           hit["p99_ms"] / base["p99_ms"] if hit and base else None,
                           f"recall >= {want}, p99 <= {r['targets']['p99_ms']} ms",
                           bool(hit and hit["p99_ms"] <= r["targets"]["p99_ms"]),
                           f"build {index['build_s']:.0f} s, {index['index_mb']} MB, backend peak "
                           f"{index['build_rss_mb']} MB; {index['type']}"))
    return out


BUILDERS = {"knn_indexes": _indexes, "pipeline": _pipeline, "scaling": _scaling, "gemini": _gemini, "knn": _knn, "writes": _writes,
            "clustering": _clustering, "embedders": _embedders, "images": _images, "memory": _memory,
            "api": _api, "hashes": _hashes}


def for_section(name: str, result: dict) -> list[dict]:
    if "error" in result:
        return [row(name, "ERROR", note=result["error"][:120], met=False)]
    try:
        return BUILDERS[name](result)
    except (KeyError, TypeError, ZeroDivisionError) as exc:  # a section's shape changed under us
        return [row(name, "ERROR", note=f"cannot tabulate: {type(exc).__name__}: {exc}"[:120], met=False)]


def render(rows: list[dict]) -> str:
    cols = [("name", 28), ("figure", 26), ("baseline", 30), ("ratio", 7), ("target", 18), ("met", 4)]
    lines = [" | ".join(f"{title:<{width}}" for title, width in cols) + " | note"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3g}"
        cells = [r["name"], r["figure"], r["baseline"], ratio, r["target"], r["met"]]
        lines.append(" | ".join(f"{str(c)[:w]:<{w}}" for c, (_, w) in zip(cells, cols)) + " | " + r["note"])
    return "\n".join(lines)
