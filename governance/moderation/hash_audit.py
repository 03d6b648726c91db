"""The hash-bank part of a bank audit. Pure: bank hashes, image exemplars' PDQ hashes and each
label's hash distance in, findings out; no database here.

Three kinds of finding, each a pair (or set) of entries that tell a matching upload different things:

- `hash_contradiction`: one signal banked under more than one label (positive in one and negative
  in another included): an upload with that hash gets every one of them.
- `hash_near_contradiction`: two PDQ hashes of different labels closer than either label's
  `hash_distance`, so the same picture can match both. Exact equals are the kind above.
- `bank_contradiction`: an image exemplar whose PDQ hash matches, within the hash's label's
  `hash_distance`, a hash-bank entry of another label: the vote and the hash bank disagree.

Disabled hashes are left out by the caller (they match nothing), as are PDQ hashes of exemplars
below PDQ's quality threshold (matching ignores them too).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from governance.moderation.hash_index import build_index, pack_hex


@dataclass(frozen=True)
class BankedHash:
    signal_type: str
    signal: str
    label: str
    polarity: str
    source: str


@dataclass(frozen=True)
class ExemplarHash:
    asset_id: str
    label: str
    pdq: str


@dataclass(frozen=True)
class HashFinding:
    kind: str  # hash_contradiction | hash_near_contradiction | bank_contradiction
    score: float  # larger: more certainly a problem; comparable only within one kind
    hashes: list[int]  # indices into the audited bank hashes
    exemplars: list[int] = field(default_factory=list)  # indices into the audited exemplar hashes
    detail: dict = field(default_factory=dict)


def hash_contradictions(hashes: list[BankedHash]) -> list[HashFinding]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, h in enumerate(hashes):
        groups.setdefault((h.signal_type, h.signal), []).append(i)
    out = []
    for (signal_type, signal), members in groups.items():
        labels = sorted({hashes[i].label for i in members})
        if len(labels) > 1:
            polarities = {hashes[i].label: hashes[i].polarity for i in members}
            out.append(HashFinding("hash_contradiction", float(len(labels)), members, detail={
                "signal_type": signal_type, "signal": signal, "labels": labels, "polarities": polarities}))
    return out


def near_hash_contradictions(hashes: list[BankedHash], radius_of: Callable[[str], int]) -> list[HashFinding]:
    rows = [i for i, h in enumerate(hashes) if h.signal_type == "pdq"]
    if len(rows) < 2:
        return []
    packed = pack_hex([hashes[i].signal for i in rows])
    index = build_index(packed)
    widest = max(radius_of(label) for label in {hashes[i].label for i in rows})
    out = []
    for a, query in enumerate(packed):
        first = hashes[rows[a]]
        for b, distance in index.within(query, widest):
            second = hashes[rows[b]]
            if b <= a or distance == 0 or first.label == second.label:
                continue
            radius = max(radius_of(first.label), radius_of(second.label))
            if distance <= radius:
                out.append(HashFinding("hash_near_contradiction", float(radius - distance), [rows[a], rows[b]],
                                       detail={"distance": distance, "hash_distance": radius,
                                               "labels": sorted({first.label, second.label})}))
    return out


def bank_contradictions(exemplars: list[ExemplarHash], hashes: list[BankedHash],
                        radius_of: Callable[[str], int]) -> list[HashFinding]:
    rows = [i for i, h in enumerate(hashes) if h.signal_type == "pdq"]
    if not rows or not exemplars:
        return []
    index = build_index(pack_hex([hashes[i].signal for i in rows]))
    widest = max(radius_of(label) for label in {hashes[i].label for i in rows})
    out = []
    for e, query in enumerate(pack_hex([x.pdq for x in exemplars])):
        for b, distance in index.within(query, widest):
            banked = hashes[rows[b]]
            radius = radius_of(banked.label)
            if banked.label != exemplars[e].label and distance <= radius:
                out.append(HashFinding("bank_contradiction", float(radius - distance), [rows[b]], [e], detail={
                    "distance": distance, "hash_distance": radius, "exemplar_label": exemplars[e].label,
                    "hash_label": banked.label, "hash_polarity": banked.polarity}))
    return out


def audit_hashes(hashes: list[BankedHash], exemplars: list[ExemplarHash],
                 radius_of: Callable[[str], int]) -> list[HashFinding]:
    """Every finding, each kind ranked most certain first, kinds in the order of the docstring."""
    found = sorted(hash_contradictions(hashes), key=lambda f: -f.score)
    found += sorted(near_hash_contradictions(hashes, radius_of), key=lambda f: -f.score)
    found += sorted(bank_contradictions(exemplars, hashes, radius_of), key=lambda f: -f.score)
    return found
