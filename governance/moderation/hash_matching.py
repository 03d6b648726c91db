"""Matching uploads' hashes against the tenant's hash bank, before the kNN vote.

The enabled bank hashes are loaded once per hash bank version (every edit bumps it, in the edit's
own transaction, and the deciding transaction reads it: a cached bank is never older than what
that transaction sees, as for knn_cache.py). PDQ hashes go into a Hamming index (hash_index.py),
MD5 and SHA-256 into a dict; an upload's PDQ hash below PDQ's quality threshold is not matched.
vPDQ hashes are compared by threatexchange's own brute-force matcher with its default thresholds
(frames within 31 bits, frames of quality 50 or more, 80% of the upload's frames matched); the
match's `distance` is the percentage of the upload's frames that matched no banked frame.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from governance.ingest.content_hashes import PDQ_QUALITY_THRESHOLD, VPDQ_AVAILABLE, ContentHash
from governance.moderation.hash_index import build_index, hamming, pack_hex
from governance.moderation.policy_rules import HashMatch, Policy
from governance.storage import repository

MAX_BANKS = 256


@dataclass
class HashBankIndex:
    version: int
    pdq_rows: list[tuple[str, str, str]] = field(default_factory=list)  # per PDQ row: (label, polarity, source)
    pdq_index: object = None
    exact: dict[tuple[str, str], list[tuple[str, str, str]]] = field(default_factory=dict)
    vpdq_rows: list[tuple[list, str, str, str]] = field(default_factory=list)  # (features, label, polarity, source)

    @classmethod
    def build(cls, version: int, entries: list[tuple[str, str, str, str, str]]) -> "HashBankIndex":
        bank = cls(version)
        pdq_signals = []
        for signal_type, signal, label, polarity, source in entries:
            if signal_type == "pdq":
                pdq_signals.append(signal)
                bank.pdq_rows.append((label, polarity, source))
            elif signal_type == "vpdq":
                if VPDQ_AVAILABLE:  # rows imported where vpdq was installed, read where it is not: unmatched
                    bank.vpdq_rows.append((_vpdq_features(signal), label, polarity, source))
            else:
                bank.exact.setdefault((signal_type, signal), []).append((label, polarity, source))
        bank.pdq_index = build_index(pack_hex(pdq_signals))
        return bank

    def matches(self, hashes: list[ContentHash], policy: Policy) -> list[HashMatch]:
        """The bank hashes within each label's distance of one upload's hashes, nearest first."""
        found = []
        for h in hashes:
            if h.signal_type == "pdq":
                if h.quality is None or h.quality < PDQ_QUALITY_THRESHOLD or not self.pdq_rows:
                    continue
                radius = max([policy.default.hash_distance] + [r.hash_distance for r in policy.labels.values()])
                for row, distance in self.pdq_index.within(pack_hex([h.signal])[0], radius):
                    label, polarity, source = self.pdq_rows[row]
                    if distance <= policy.for_label(label).hash_distance:
                        found.append(HashMatch("pdq", distance, label, source, self.version, polarity))
            elif h.signal_type == "vpdq":
                found += self._vpdq_matches(h.signal)
            else:
                for label, polarity, source in self.exact.get((h.signal_type, h.signal), []):
                    found.append(HashMatch(h.signal_type, 0, label, source, self.version, polarity))
        return sorted(found, key=lambda m: (m.distance, m.signal_type, m.label, m.source))

    def _vpdq_matches(self, signal: str) -> list[HashMatch]:
        if not self.vpdq_rows:
            return []
        from threatexchange.extensions.vpdq import vpdq_util
        from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute

        query, found = _vpdq_features(signal), []
        for features, label, polarity, source in self.vpdq_rows:
            try:
                result = match_VPDQ_hash_brute(query, features, vpdq_util.VPDQ_QUALITY_THRESHOLD,
                                               vpdq_util.VPDQ_DISTANCE_THRESHOLD)
            except ZeroDivisionError:  # one side has no frame of matching quality: nothing to compare
                continue
            if (result.query_match_percent >= vpdq_util.VPDQ_QUERY_MATCH_THRESHOLD_PERCENT
                    and result.compared_match_percent >= vpdq_util.VPDQ_INDEX_MATCH_THRESHOLD_PERCENT):
                found.append(HashMatch("vpdq", round(100 - result.query_match_percent), label, source,
                                       self.version, polarity))
        return found


def _vpdq_features(signal: str) -> list:
    from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq

    return json_to_vpdq(signal)


_banks: OrderedDict[str, HashBankIndex] = OrderedDict()
_lock = threading.Lock()


def tenant_bank(session: Session, tenant: str) -> HashBankIndex | None:
    """The tenant's hash bank at the version this transaction sees; None when it never had one."""
    version = repository.hash_bank_version(session, tenant)
    if version == 0:
        return None
    with _lock:
        cached = _banks.get(tenant)
        if cached is not None and cached.version == version:
            _banks.move_to_end(tenant)
            return cached
    bank = HashBankIndex.build(version, repository.enabled_bank_hashes(session, tenant))
    with _lock:
        _banks[tenant] = bank
        _banks.move_to_end(tenant)
        while len(_banks) > MAX_BANKS:
            _banks.popitem(last=False)
    return bank


def match_uploads(session: Session, tenant: str, policy: Policy,
                  hashes: list[list[ContentHash]]) -> list[list[HashMatch]]:
    """The hash matches of each upload (by its list of hashes)."""
    bank = tenant_bank(session, tenant)
    if bank is None:
        return [[] for _ in hashes]
    return [bank.matches(h, policy) for h in hashes]


def pdq_distance(a: str, b: str) -> int:
    return int(hamming(pack_hex([a])[0], pack_hex([b])[0]))
