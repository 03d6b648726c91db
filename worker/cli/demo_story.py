"""What `governance demo` prints after its run: the decision table, the tally, the alerts and
where to look next. Pure formatting of what the demo read back; no database, no processes."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

ACTION_ORDER = ("block", "review", "allow", "reject")


def decision_table(rows: list[dict], expected: dict[str, str]) -> str:
    header = f"{'asset':<24} {'action':<7} {'label':<14} {'score':>5} {'anomaly':>8}  {'expected':<12} reason"
    lines = [header, "-" * len(header)]
    for d in rows:
        anomaly = d.get("anomaly") or {}
        flag = f"{anomaly['score']:.2f}{'!' if anomaly.get('flagged') else ' '}" if anomaly else "-"
        lines.append(f"{d['asset_id'][:24]:<24} {d['action']:<7} {str(d['label'] or '-')[:14]:<14} "
                     f"{d['score']:>5.2f} {flag:>8}  {expected.get(d['asset_id'], '-')[:12]:<12} {d['reason'][:60]}")
    return "\n".join(lines)


def tally(rows: list[dict], policy_version: str) -> str:
    """One line per action: how many, and why (the reason's kind and the label)."""
    lines = [f"\ndecisions under policy {policy_version}:"]
    by_action = Counter(d["action"] for d in rows)
    for action in sorted(by_action, key=lambda a: (ACTION_ORDER.index(a) if a in ACTION_ORDER else 9, a)):
        why = Counter(_why(d) for d in rows if d["action"] == action)
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(why.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"  {action:<7} {by_action[action]:>4}   {detail}")
    return "\n".join(lines)


def _why(decision: dict) -> str:
    kind = decision["reason"].split(":", 1)[0]
    if decision["action"] == "reject":
        return kind
    return f"{kind} {decision['label']}" if decision.get("label") and kind != "anomaly" else kind


def cluster_lines(report: dict) -> str:
    lines = [f"\n{len(report['clusters'])} clusters, {len(report['noise'])} noise points; "
             f"{len(report.get('alerts', []))} emerging-cluster alerts"]
    clusters = {c["cluster_id"]: c for c in report["clusters"]}
    for alert in report.get("alerts", []):
        cluster = clusters.get(alert["cluster_id"], {})
        lines.append(f"  emerging cluster {alert['cluster_id']} ({alert.get('modality', '?')}): {alert['size']} uploads, "
                     f"{alert['unlabelled_or_anomalous_share']:.0%} unlabelled or anomalous; "
                     f"keywords: {', '.join(cluster.get('keywords', [])[:6]) or '-'}")
        lines.append(f"    e.g. {', '.join(alert['representatives'][:3])}")
    if not report.get("alerts") and any(c["status"] != "new" for c in report["clusters"]):
        lines.append("  (an earlier run reported these clusters already: a wave is alerted once, when it is new)")
    return "\n".join(lines)


def anomaly_alert_lines(alert: dict | None) -> str:
    if alert is None:
        return "\nanomaly alert: nothing flagged since the last one (an earlier run sent it)"
    actions = ", ".join(f"{a} {n}" for a, n in sorted(alert["by_action"].items()))
    lines = [f"\nanomaly alert: {alert['flagged']} flagged uploads ({actions}), queued as {alert['message_id']}"]
    for example in alert["examples"]:
        lines.append(f"  {example['asset_id']:<24} {example['action']:<7} k-NN distance {example['score']:.3f} "
                     f"above {example['threshold']:.3f}")
    return "\n".join(lines)


def where_to_look_next(report_paths: dict[str, Path], *, console_url: str | None = None,
                       api_docs_url: str | None = None) -> str:
    """The closing lines. `console_url` is the review console's login link once `--serve` runs one."""
    console = console_url or "run `governance demo --serve` (or `make console`) for a login link"
    docs = api_docs_url or "run `governance serve`, then open http://127.0.0.1:8000/docs"
    return "\n".join([
        "\nwhere to look next:",
        f"  cluster report  {report_paths.get('html', '')}",
        f"                  {report_paths['json']}",
        f"  review console  {console}",
        f"  HTTP API docs   {docs}",
    ])
