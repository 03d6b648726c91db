"""Deciding a whole cluster at once, from the console's cluster page.

The page shows the cluster's waiting members as a grid and a random sample of them that the
reviewer must look at before the bulk action is enabled; the web adapter makes the sample, signs
it, and passes back what was viewed. A bulk decision is one `review_queue.decide` per member, so
each member gets its own audit row, exemplar, outbox message and retroactive check, exactly as if
decided one by one (but never sampled for a blind second review: the reviewer looked at a sample,
not at each member); members another reviewer holds are left alone and reported.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.moderation import review_evidence, review_queue
from governance.moderation.pipeline import Context, for_tenant
from governance.storage import repository

SAMPLE_SIZE = 5
MAX_MEMBERS = 500


class SampleNotViewed(review_queue.review.ReviewError):
    """The bulk action was asked for before every sampled member was looked at."""


@dataclass
class ClusterBatch:
    cluster_id: str
    size: int
    status: str | None
    keywords: list[str]
    waiting: list[review_queue.QueueItem]  # members that wait for a person, in priority order
    views: dict[str, review_evidence.AssetView]  # asset_id -> what the grid shows
    label_choices: list[str] = field(default_factory=list)


def cluster_batch(session: Session, ctx: Context, tenant: str, cluster_id: str) -> ClusterBatch | None:
    """The cluster of the tenant's latest report with its waiting members; None when there is none."""
    found = repository.latest_report_cluster(session, tenant, cluster_id)
    if found is None:
        return None
    members, summary = found
    policy = for_tenant(session, ctx, tenant).policy
    waiting = review_queue.queue_items(session, policy, tenant, "cluster", cluster_id, limit=MAX_MEMBERS)
    assets = repository.assets_by_ids(session, tenant, [i.asset_id for i in waiting if i.asset_id])
    labels = [i.label for i in waiting if i.label]
    choices = list(dict.fromkeys([*sorted(set(labels), key=labels.count, reverse=True), *policy.labels,
                                  *repository.bank_labels(session, tenant)]))
    return ClusterBatch(cluster_id=cluster_id, size=len(members), status=summary.get("status"),
                        keywords=list(summary.get("keywords") or [])[:8], waiting=waiting,
                        views={a: review_evidence.asset_view(asset) for a, asset in assets.items()},
                        label_choices=choices)


def draw_sample(event_ids: list[str], size: int = SAMPLE_SIZE, rng: random.Random | None = None) -> list[str]:
    """A random sample of the members to look at first (all of them when there are few)."""
    pool = sorted(event_ids)
    return sorted((rng or random.SystemRandom()).sample(pool, min(size, len(pool))))


@dataclass
class BulkResult:
    decided: list[str]  # event ids, each with its own audit row
    held: list[str]  # left alone: another reviewer holds them


def decide_cluster(session: Session, ctx: Context, tenant: str, cluster_id: str, action: str,
                   reviewer: review_queue.Reviewer, *, sample: list[str], viewed: set[str], label: str | None = None,
                   note: str | None = None) -> BulkResult:
    """Decide every waiting member of the cluster, once every member of `sample` was viewed."""
    missing = [e for e in sample if e not in viewed]
    if not sample or missing:
        raise SampleNotViewed(f"look at every sampled member first ({len(missing) or 'no'} not viewed)")
    batch = cluster_batch(session, ctx, tenant, cluster_id)
    if batch is None:
        raise review_queue.NotWaiting(f"no cluster {cluster_id!r} in the latest report")
    result = BulkResult(decided=[], held=[])
    for item in batch.waiting:
        if item.held_by_session not in (None, reviewer.session_id):
            result.held.append(item.event_id)
            continue
        review_queue.decide(session, ctx, tenant, item.event_id, action, reviewer, label=label, sample=False,
                            note=f"bulk decision of cluster {cluster_id}" + (f": {note}" if note else ""))
        result.decided.append(item.event_id)
    return result


@dataclass
class ClusterOverview:
    generated_at: str | None
    items: int
    clusters: list[dict]  # {cluster_id, size, status, keywords, top_labels, waiting}, largest first
    alerts: list[dict]  # the report's emerging-cluster alerts
    noise: int


def cluster_overview(session: Session, ctx: Context, tenant: str) -> ClusterOverview:
    """The tenant's latest cluster report, with how many members of each cluster wait for a person."""
    report = repository.latest_cluster_report(session, tenant)
    if report is None:
        return ClusterOverview(None, 0, [], [], 0)
    policy = for_tenant(session, ctx, tenant).policy
    waiting = {c.key: c.count for c in review_queue.queue_counts(session, policy, tenant) if c.grouping == "cluster"}
    body = report.report
    clusters = [{"cluster_id": c["cluster_id"], "size": c["size"], "status": c.get("status"),
                 "keywords": list(c.get("keywords") or [])[:6], "top_labels": c.get("top_labels") or [],
                 "waiting": waiting.get(c["cluster_id"], 0)}
                for c in sorted(body.get("clusters", []), key=lambda c: -c["size"])]
    return ClusterOverview(body.get("generated_at") or report.generated_at.isoformat(), int(body.get("items", 0)),
                           clusters, list(body.get("alerts") or []), len(body.get("noise") or []))
