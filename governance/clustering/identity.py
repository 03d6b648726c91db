"""Stable cluster identities across runs of the periodic clustering job.

A cluster found now keeps the id of the cluster it continues from the previous run, so that
moderators can follow one spam wave over time. Matching is done in two passes:

1. Member overlap. Previous members are first restricted to assets present in this run (the job
   clusters a sliding window, so old assets age out and must not count as "lost"). An edge links
   previous cluster P and current cluster C when they share >= MIN_SHARED assets and the overlap
   coefficient |P ∩ C| / min(|P|, |C|) >= OVERLAP_THRESHOLD. The overlap coefficient (not Jaccard)
   is used because it stays high when a cluster grows a lot or two clusters merge. Ids are handed
   out greedily, one previous id to at most one current cluster, biggest shared count first, so
   an id follows the bulk of its members: in a merge the larger contributor keeps its id, in a
   split the larger piece does.
2. Centroid cosine distance, only between current clusters and previous clusters that have no
   overlap edge at all (typically a wave whose old members all left the window). Needs
   PreviousCluster.centroid in the same embedding space; None means overlap matching only.

Status: "merged" (>= 2 previous clusters flow into it), "split" (its previous cluster also flows
into another current cluster; the piece that did not keep the id gets a new id and also says
"split"), else "grown"/"shrunk"/"stable" by size vs the previous size (+-SIZE_TOLERANCE), or "new".
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

OVERLAP_THRESHOLD = 0.5
MIN_SHARED = 2  # one shared asset is too weak to carry an identity; the centroid pass can still match
CENTROID_MAX_DISTANCE = 0.15  # cosine distance between normalised centroids
SIZE_TOLERANCE = 0.10


@dataclass
class PreviousCluster:
    cluster_id: str
    members: list[str]
    centroid: np.ndarray | None = None  # mean direction in the original embedding space


@dataclass(frozen=True)
class Identity:
    cluster_id: str
    status: str
    previous_ids: list[str]
    growth: int


def new_cluster_id(members: list[str]) -> str:
    """Deterministic id from the member set, so two runs on the same data agree without history."""
    digest = hashlib.sha256("\n".join(sorted(members)).encode("utf-8")).hexdigest()
    return "c-" + digest[:10]


def _size_status(size: int, previous_size: int) -> str:
    if size > previous_size * (1 + SIZE_TOLERANCE):
        return "grown"
    if size < previous_size * (1 - SIZE_TOLERANCE):
        return "shrunk"
    return "stable"


def _overlap_edges(current: list[list[str]], previous: list[PreviousCluster]) -> dict[tuple[int, int], int]:
    owner = {asset: j for j, members in enumerate(current) for asset in members}
    edges: dict[tuple[int, int], int] = {}
    for i, prev in enumerate(previous):
        present = {asset for asset in prev.members if asset in owner}
        if not present:
            continue
        for j, shared in Counter(owner[asset] for asset in present).items():
            coefficient = shared / min(len(present), len(current[j]))
            if shared >= MIN_SHARED and coefficient >= OVERLAP_THRESHOLD:
                edges[(i, j)] = shared
    return edges


def _centroid_matches(
    current_centroids: np.ndarray, previous: list[PreviousCluster], free_current: list[int], free_previous: list[int]
) -> dict[int, int]:
    """Greedy nearest-centroid pairing (current index -> previous index) under the distance threshold."""
    usable = [
        i for i in free_previous
        if previous[i].centroid is not None and np.asarray(previous[i].centroid).shape == current_centroids.shape[1:]
    ]
    if not free_current or not usable:
        return {}
    prev_c = np.stack([np.asarray(previous[i].centroid, dtype=np.float64) for i in usable])
    prev_c /= np.maximum(np.linalg.norm(prev_c, axis=1, keepdims=True), 1e-12)
    distance = 1.0 - current_centroids[free_current].astype(np.float64) @ prev_c.T
    pairs = sorted(
        (distance[a, b], previous[usable[b]].cluster_id, free_current[a], usable[b])
        for a in range(len(free_current)) for b in range(len(usable))
        if distance[a, b] <= CENTROID_MAX_DISTANCE
    )
    matched: dict[int, int] = {}
    taken: set[int] = set()
    for _, _, j, i in pairs:
        if j not in matched and i not in taken:
            matched[j] = i
            taken.add(i)
    return matched


def match_identities(
    current: list[list[str]], current_centroids: np.ndarray, previous: list[PreviousCluster] | None
) -> tuple[list[Identity], list[str]]:
    """Give each current cluster (member lists, unit centroids (k, d)) an identity; also return gone ids."""
    previous = list(previous or [])
    edges = _overlap_edges(current, previous)
    links_of_current: dict[int, list[int]] = {}
    links_of_previous: dict[int, list[int]] = {}
    for i, j in edges:
        links_of_current.setdefault(j, []).append(i)
        links_of_previous.setdefault(i, []).append(j)

    order = sorted(edges, key=lambda e: (-edges[e], -len(previous[e[0]].members), -len(current[e[1]]),
                                         previous[e[0]].cluster_id, e[1]))
    kept: dict[int, int] = {}  # current index -> previous index whose id it keeps
    taken: set[int] = set()
    for i, j in order:
        if j not in kept and i not in taken:
            kept[j] = i
            taken.add(i)

    free_current = [j for j in range(len(current)) if j not in links_of_current]
    free_previous = [i for i in range(len(previous)) if i not in links_of_previous]
    by_centroid = _centroid_matches(current_centroids, previous, free_current, free_previous)

    used_ids = {p.cluster_id for p in previous}
    identities: list[Identity] = []
    for j, members in enumerate(current):
        size = len(members)
        if j in kept:
            prev = previous[kept[j]]
            linked = links_of_current[j]
            if len(linked) >= 2:
                identities.append(Identity(prev.cluster_id, "merged", sorted(previous[i].cluster_id for i in linked),
                                           size - sum(len(previous[i].members) for i in linked)))
            elif len(links_of_previous[kept[j]]) >= 2:
                identities.append(Identity(prev.cluster_id, "split", [prev.cluster_id], size - len(prev.members)))
            else:
                identities.append(Identity(prev.cluster_id, _size_status(size, len(prev.members)),
                                           [prev.cluster_id], size - len(prev.members)))
            continue
        if j in by_centroid:
            prev = previous[by_centroid[j]]
            identities.append(Identity(prev.cluster_id, _size_status(size, len(prev.members)),
                                       [prev.cluster_id], size - len(prev.members)))
            continue
        cluster_id = new_cluster_id(members)
        while cluster_id in used_ids:  # only on a hash clash with an existing id; keep ids unique
            cluster_id = new_cluster_id([cluster_id, *members])
        used_ids.add(cluster_id)
        if j in links_of_current:  # its previous clusters' ids went to bigger pieces: a split-off piece
            identities.append(Identity(cluster_id, "split",
                                       sorted(previous[i].cluster_id for i in links_of_current[j]), size))
        else:
            identities.append(Identity(cluster_id, "new", [], size))

    referenced = {pid for ident in identities for pid in ident.previous_ids}
    gone = sorted(p.cluster_id for p in previous if p.cluster_id not in referenced)
    return identities, gone
