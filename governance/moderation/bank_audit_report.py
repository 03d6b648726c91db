"""`governance banks audit`: the tenant's exemplar bank through governance.moderation.bank_audit,
and its hash bank (against itself and the image exemplars) through hash_audit, as JSON and HTML.

The audit reads the vectors the kNN vote compares (the tenant's active model, classification task,
one set per modality), so its findings are about the bank as the worker sees it; the hash part
reads the enabled bank hashes and the image exemplars' stored PDQ hashes, with each label's
`hash_distance` from the tenant's policy. Every finding carries the `governance exemplars
disable` or `governance hashes disable` commands that would remove what it points at.
"""
from __future__ import annotations

import base64
import html
import io
import json
import shlex
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from governance.embedding.protocol import Task
from governance.embedding.vector_cache import task_key
from governance.ingest.content_hashes import PDQ_QUALITY_THRESHOLD, vpdq_key
from governance.moderation.bank_audit import Finding, audit
from governance.moderation.hash_audit import BankedHash, ExemplarHash, HashFinding, audit_hashes
from governance.moderation.pipeline import Context, for_tenant
from governance.storage import repository

EXCERPT_CHARS = 200
THUMBNAIL_PX = 96


def audit_bank(session: Session, ctx: Context, tenant: str) -> dict:
    """The report: every finding, most certain first within each kind, with its fix commands."""
    tenant_ctx = for_tenant(session, ctx, tenant)
    embedder, k = tenant_ctx.embedder, tenant_ctx.policy.k
    rows = repository.audit_exemplar_vectors(session, tenant, embedder.model_id, embedder.dims)
    groups: dict[str, list] = {}
    for exemplar, asset, task, vector in rows:
        if task == task_key(embedder, Task.CLASSIFICATION, asset.modality):
            groups.setdefault(asset.modality, []).append((exemplar, asset, vector))
    findings = []
    for modality, members in sorted(groups.items()):
        found = audit(np.stack([v for _, _, v in members]), [e.label for e, _, _ in members], k=k,
                      sha256=[a.sha256 for _, a, _ in members])
        findings += [_describe(f, members, modality, tenant) for f in found]
    hashes = [BankedHash(*row) for row in repository.enabled_bank_hashes(session, tenant)]
    images = [(e, a) for e, a, _ in groups.get("image", [])]
    pdq = repository.asset_pdq_hashes(session, tenant, [a.asset_id for _, a in images])
    exemplars = [ExemplarHash(a.asset_id, e.label, pdq[a.asset_id][0]) for e, a in images
                 if a.asset_id in pdq and (pdq[a.asset_id][1] or 0) >= PDQ_QUALITY_THRESHOLD]
    policy = tenant_ctx.policy
    found = audit_hashes(hashes, exemplars, lambda label: policy.for_label(label).hash_distance)
    pks = {a.asset_id: a.id for _, a in images}
    findings += [_describe_hashes(f, hashes, exemplars, pks, tenant) for f in found]
    return {"tenant": tenant, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": embedder.model_id, "dims": embedder.dims, "k": k,
            "bank_version": repository.bank_version(session, tenant),
            "hash_bank_version": repository.hash_bank_version(session, tenant),
            "exemplars": {modality: len(members) for modality, members in sorted(groups.items())},
            "hashes": dict(sorted(Counter(h.signal_type for h in hashes).items())),
            "summary": dict(Counter(f["kind"] for f in findings)), "findings": findings, "notes": []}


def disable_command(asset_id: str, label: str, tenant: str) -> str:
    return (f"governance exemplars disable {shlex.quote(asset_id)} --label {shlex.quote(label)} "
            f"--tenant {shlex.quote(tenant)}")


def hash_disable_command(h: BankedHash, tenant: str) -> str:
    signal = vpdq_key(h.signal) if h.signal_type == "vpdq" else h.signal  # the key, not the long JSON
    return (f"governance hashes disable --signal {signal} --signal-type {h.signal_type} "
            f"--label {shlex.quote(h.label)} --tenant {shlex.quote(tenant)}")


def _describe_hashes(finding: HashFinding, hashes: list[BankedHash], exemplars: list[ExemplarHash],
                     pks: dict[str, int], tenant: str) -> dict:
    """As _describe; which side is wrong is the reviewer's call, so every member's fix is listed."""
    banked = [hashes[i] for i in finding.hashes]
    images = [exemplars[i] for i in finding.exemplars]
    labels = sorted({h.label for h in banked} | {x.label for x in images})
    members = [{"asset_id": x.asset_id, "label": x.label, "asset_pk": pks[x.asset_id], "excerpt": None,
                "bank": "exemplars",
                "pdq": x.pdq} for x in images]
    members += [{"asset_id": None, "label": h.label, "asset_pk": None, "excerpt": None, "bank": "hashes",
                 "signal_type": h.signal_type, "signal": h.signal, "polarity": h.polarity, "source": h.source}
                for h in banked]
    return {"kind": finding.kind, "score": round(finding.score, 4), "modality": "hash",
            "label": labels[0] if len(labels) == 1 else None, "detail": finding.detail, "members": members,
            "fix": [disable_command(x.asset_id, x.label, tenant) for x in images]
                   + [hash_disable_command(h, tenant) for h in banked]}


def _describe(finding: Finding, members: list, modality: str, tenant: str) -> dict:
    rows = [members[i] for i in finding.members]
    if finding.kind == "thin_label":
        rows = [m for m in members if m[0].label == finding.label]
    if finding.kind == "contradiction":
        counts = Counter(e.label for e, _, _ in rows).most_common()
        # Disable the minority labels; on a tie the audit cannot tell which is right, so it lists all.
        keep = counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else None
        to_fix = [r for r in rows if r[0].label != keep]
    else:
        to_fix = rows
    return {"kind": finding.kind, "score": round(finding.score, 4), "modality": modality, "label": finding.label,
            "detail": finding.detail,
            "members": [{"asset_id": a.asset_id, "label": e.label, "asset_pk": a.id,
                         "excerpt": (a.text_excerpt or "")[:EXCERPT_CHARS] or None} for e, a, _ in rows],
            "fix": [disable_command(a.asset_id, e.label, tenant) for e, a, _ in to_fix]}


def thumbnails(session: Session, ctx: Context, tenant: str, report: dict, limit: int = 200) -> dict[int, str]:
    """data: URIs of small PNG thumbnails of the image members, read again from their stored source;
    an image whose source is gone (or has changed) simply gets none."""
    from PIL import Image

    from governance.embedding.reembed_sources import load_sources

    pks = list(dict.fromkeys(m["asset_pk"] for f in report["findings"] if f["modality"] in ("image", "hash")
                             for m in f["members"] if m["asset_pk"] is not None))[:limit]
    ready, _ = load_sources(session, ctx.settings, tenant, pks)
    out = {}
    for asset, loaded, _ in ready:
        try:
            with Image.open(io.BytesIO(loaded.content.data or b"")) as image:
                image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
                buffer = io.BytesIO()
                image.convert("RGBA").save(buffer, format="PNG")
        except (OSError, ValueError):
            continue
        out[asset.id] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return out


def write_report(report: dict, thumbs: dict[int, str], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "audit.json", "html": out / "audit.html"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    paths["html"].write_text(render_html(report, thumbs))
    return paths


def render_html(report: dict, thumbs: dict[int, str]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>Bank audit: {e(report['tenant'])}</title>",
             "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
             "table{border-collapse:collapse}code{font-size:90%}</style>",
             f"<h1>Bank audit: {e(report['tenant'])}</h1>",
             f"<p>model {e(report['model'])} @{report['dims']}, k={report['k']}, bank version "
             f"{report['bank_version']}, generated {e(report['generated_at'])}; exemplars "
             f"{e(json.dumps(report['exemplars']))}; hash bank version {report['hash_bank_version']}, hashes "
             f"{e(json.dumps(report['hashes']))}; findings {e(json.dumps(report['summary']))}</p>",
             *(f"<p><em>{e(note)}</em></p>" for note in report["notes"]),
             "<table><tr><th>kind</th><th>score</th><th>label</th><th>members</th><th>detail</th><th>fix</th></tr>"]
    for f in report["findings"]:
        members = "".join(
            f"<div>{e(m['asset_id'] or m['signal_type'] + ' ' + m['signal'])} [{e(m['label'])}]"
            + (f"<br><img alt='' src='{thumbs[m['asset_pk']]}'>" if m["asset_pk"] in thumbs else "")
            + (f"<br><q>{e(m['excerpt'])}</q>" if m["excerpt"] else "") + "</div>" for m in f["members"])
        fixes = "".join(f"<div><code>{e(cmd)}</code></div>" for cmd in f["fix"])
        parts.append(f"<tr><td>{e(f['kind'])}</td><td>{f['score']}</td><td>{e(f['label'] or '')}</td>"
                     f"<td>{members}</td><td>{e(json.dumps(f['detail'], ensure_ascii=False))}</td>"
                     f"<td>{fixes}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)
