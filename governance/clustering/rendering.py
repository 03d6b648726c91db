"""Human-readable renderings of a clustering report (see governance.clustering.analysis.analyse).

Markdown for chat/issue trackers, a self-contained HTML page (inline SVG map, no scripts, no
external assets) for a glance at the spam-wave landscape, and report.json for machines. Every
string that came from data (ids, labels, keywords) is escaped: labels and texts are user-influenced.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
from pathlib import Path

# Distinguishable colours for the largest clusters (Tableau-like); the rest get a hashed hue.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"]
NOISE_COLOUR = "#b0b0b0"
WIDTH, HEIGHT, PAD = 760, 480, 20
LEGEND_ROWS = 20
ALERT_STYLE = "background:#fff3cd;border:1px solid #e0a800;padding:8px 12px;margin:8px 0"


def finite_json(value):
    """`value` with every NaN or infinity replaced by None: PostgreSQL's JSONB and strict JSON
    parsers refuse them, and one undefined statistic must not cost the whole report."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


def cluster_colours(report: dict) -> dict[str, str]:
    colours = {}
    for i, cluster in enumerate(report.get("clusters", [])):
        cid = cluster["cluster_id"]
        if i < len(PALETTE):
            colours[cid] = PALETTE[i]
        else:
            hue = int(hashlib.sha256(cid.encode("utf-8")).hexdigest()[:4], 16) % 360
            colours[cid] = f"hsl({hue},60%,45%)"
    return colours


def _row(cluster: dict) -> list[str]:
    labels = ", ".join(f"{t['label']} ({t['count']})" for t in cluster.get("top_labels", [])) or "-"
    growth = cluster.get("growth", 0)
    return [cluster["cluster_id"], cluster["status"], str(cluster["size"]), f"{growth:+d}", labels,
            ", ".join(cluster.get("keywords", [])) or "-", f"{cluster.get('anomalous_share', 0.0):.0%}",
            f"{cluster.get('cohesion', 0.0):.3f}"]


HEADERS = ["cluster", "status", "size", "growth", "top labels", "keywords", "anomalous", "cohesion"]


def _md(text: str) -> str:
    # Table cells: a pipe or newline would break the row; angle brackets would be HTML in many viewers.
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    params = report.get("params", {})
    lines = ["# Cluster report", ""]
    for alert in report.get("alerts", []):
        lines.append(f"> **ALERT — emerging cluster `{_md(alert['cluster_id'])}`**: {alert['size']} assets, "
                     f"{alert['unlabelled_share']:.0%} unlabelled, {alert['anomalous_share']:.0%} anomalous; "
                     f"see {_md(', '.join(alert.get('representatives', [])))}")
    if report.get("alerts"):
        lines.append("")
    lines.append(f"{len(report.get('clusters', []))} clusters, {len(report.get('noise', []))} noise assets, "
                 f"{report.get('items', params.get('n_assets', '?'))} assets in total.")
    if report.get("gone"):
        lines.append(f"Gone since last run: {_md(', '.join(report['gone']))}.")
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for cluster in report.get("clusters", []):
        lines.append("| " + " | ".join(_md(cell) for cell in _row(cluster)) + " |")
    return "\n".join(lines) + "\n"


def _scale(values: list[float], size: int) -> list[float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi - lo) or 1.0
    return [PAD + (v - lo) / span * (size - 2 * PAD) for v in values]


def _svg_map(report: dict, colours: dict[str, str]) -> str:
    points = report.get("map", [])
    xs = _scale([p["x"] for p in points], WIDTH)
    ys = [HEIGHT - y for y in _scale([p["y"] for p in points], HEIGHT)]  # SVG y grows downwards
    # Noise first, so cluster points are drawn on top of it.
    order = sorted(range(len(points)), key=lambda i: points[i].get("cluster_id") is not None)
    circles = []
    for i in order:
        cid = points[i].get("cluster_id")
        colour, r = (colours.get(cid, NOISE_COLOUR), 3.2) if cid else (NOISE_COLOUR, 2.2)
        tip = html.escape(f"{points[i]['asset_id']} — {cid or 'noise'}")
        circles.append(f'<circle cx="{xs[i]:.1f}" cy="{ys[i]:.1f}" r="{r}" fill="{colour}" '
                       f'fill-opacity="0.75"><title>{tip}</title></circle>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="2-D PCA map of assets by cluster" '
            f'style="border:1px solid #ddd;background:#fff">{"".join(circles)}</svg>')


def _legend(report: dict, colours: dict[str, str]) -> str:
    items = []
    clusters = report.get("clusters", [])
    for cluster in clusters[:LEGEND_ROWS]:
        swatch = colours[cluster["cluster_id"]]
        items.append(f'<li><span class="sw" style="background:{swatch}"></span>'
                     f'{html.escape(cluster["cluster_id"])} · {html.escape(cluster["status"])} · '
                     f'{cluster["size"]}</li>')
    if len(clusters) > LEGEND_ROWS:
        items.append(f"<li>… {len(clusters) - LEGEND_ROWS} more (see table)</li>")
    items.append(f'<li><span class="sw" style="background:{NOISE_COLOUR}"></span>noise · '
                 f'{len(report.get("noise", []))}</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def render_html(report: dict) -> str:
    colours = cluster_colours(report)
    params = report.get("params", {})
    alerts = "".join(
        f'<div class="alert" style="{ALERT_STYLE}"><strong>Emerging cluster {html.escape(a["cluster_id"])}</strong>: '
        f'{a["size"]} assets, {a["unlabelled_share"]:.0%} unlabelled, {a["anomalous_share"]:.0%} anomalous. '
        f'Examples: {html.escape(", ".join(a.get("representatives", [])))}</div>'
        for a in report.get("alerts", []))
    header = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    rows = []
    for cluster in report.get("clusters", []):
        cells = _row(cluster)
        swatch = f'<span class="sw" style="background:{colours[cluster["cluster_id"]]}"></span>'
        rows.append("<tr>" + f"<td>{swatch}{html.escape(cells[0])}</td>"
                    + "".join(f"<td>{html.escape(c)}</td>" for c in cells[1:]) + "</tr>")
    gone = report.get("gone", [])
    summary = (f"{len(report.get('clusters', []))} clusters · {len(report.get('noise', []))} noise · "
               f"{html.escape(str(report.get('items', params.get('n_assets', '?'))))} assets"
               + (f" · gone: {html.escape(', '.join(gone))}" if gone else ""))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Cluster report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:16px;color:#222}}
.wrap{{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}}
.legend{{list-style:none;padding:0;margin:0;font-size:13px}} .legend li{{margin:2px 0}}
.sw{{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}}
table{{border-collapse:collapse;font-size:13px;margin-top:12px}}
th,td{{border:1px solid #ddd;padding:4px 8px;text-align:left}} th{{background:#f4f4f4}}
</style></head><body>
<h1>Cluster report</h1>
{alerts}
<p>{summary}</p>
<div class="wrap">{_svg_map(report, colours)}{_legend(report, colours)}</div>
<table><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>
</body></html>
"""


def write_report(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths
