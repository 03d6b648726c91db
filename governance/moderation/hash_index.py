"""Hamming search over 256-bit PDQ hashes. Pure: arrays in, (row, distance) pairs out.

Two indexes answer the same question ("every bank hash within `radius` bits of the query"):

- `ExactHammingIndex`: the bank packed as four uint64 words a hash; a query is one XOR and one
  popcount over the whole bank. Exact, no build cost, and linear in the bank's size.
- `MultiIndexHamming`: multi-index hashing (Norouzi et al.). The 256 bits are cut into 16 chunks of
  16 bits; by the pigeonhole principle a hash within `radius` bits of the query is within
  `radius // 16` bits of it in at least one chunk. Each chunk has a table from its 65,536 values
  to the rows holding that value, so a query probes, per chunk, every value within `radius // 16`
  bits of its own, and only the rows found there are verified exactly. Same answers as the scan
  (the unit tests compare both with brute force); sublinear for banks of real hashes.

`build_index` picks the scan for banks up to `EXACT_SCAN_MAX_HASHES` hashes (where one query stays
well under 5 ms; see `make bench`, section hashes) and the multi-index beyond it.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

BITS = 256
WORDS = BITS // 64
CHUNKS, CHUNK_BITS = 16, 16
EXACT_SCAN_MAX_HASHES = 50_000
MAX_PROBES_PER_CHUNK = 5_000  # past this (radius >= 48) a multi-index probe costs more than a scan


def pack_hex(signals: list[str]) -> np.ndarray:
    """(n, 4) uint64 from 64-hex-digit hashes, most significant word first."""
    if not signals:
        return np.zeros((0, WORDS), dtype=np.uint64)
    raw = np.frombuffer(b"".join(bytes.fromhex(s) for s in signals), dtype=">u8").reshape(len(signals), WORDS)
    return raw.astype(np.uint64)


def unpack_hex(packed: np.ndarray) -> list[str]:
    return [row.astype(">u8").tobytes().hex() for row in np.atleast_2d(packed)]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances between packed hashes, broadcast over leading axes."""
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int64)


class ExactHammingIndex:
    def __init__(self, packed: np.ndarray):
        self.packed = np.ascontiguousarray(packed, dtype=np.uint64).reshape(-1, WORDS)

    def __len__(self) -> int:
        return len(self.packed)

    def within(self, query: np.ndarray, radius: int) -> list[tuple[int, int]]:
        """(row, distance) of every bank hash at most `radius` bits from `query`, nearest first."""
        if len(self.packed) == 0 or radius < 0:
            return []
        distances = hamming(self.packed, np.asarray(query, dtype=np.uint64))
        rows = np.flatnonzero(distances <= radius)
        return _ordered(rows, distances[rows])


def _chunks(packed: np.ndarray) -> np.ndarray:
    """(n, 16) uint16: the 16-bit chunks of each hash, most significant first."""
    return packed.astype(">u8").view(">u2").reshape(-1, CHUNKS).astype(np.uint16)


def _flip_masks(bits: int, radius: int) -> np.ndarray:
    """Every 16-bit mask with at most `radius` bits set: XORed into a chunk, the values to probe."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in combinations(range(bits), r)]
    return np.asarray(masks, dtype=np.uint16)


class MultiIndexHamming:
    def __init__(self, packed: np.ndarray):
        self.packed = np.ascontiguousarray(packed, dtype=np.uint64).reshape(-1, WORDS)
        chunks = _chunks(self.packed)
        # Per chunk: rows sorted by the chunk's value, and where each value's run starts (CSR).
        self._rows = np.ascontiguousarray(np.argsort(chunks, axis=0, kind="stable").T.astype(np.int32))  # (16, n)
        counts = np.stack([np.bincount(chunks[:, c], minlength=1 << CHUNK_BITS) for c in range(CHUNKS)])
        self._starts = np.zeros((CHUNKS, (1 << CHUNK_BITS) + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=self._starts[:, 1:])
        self._masks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.packed)

    def within(self, query: np.ndarray, radius: int) -> list[tuple[int, int]]:
        if len(self.packed) == 0 or radius < 0:
            return []
        query = np.asarray(query, dtype=np.uint64).reshape(WORDS)
        per_chunk = radius // CHUNKS
        masks = self._masks.get(per_chunk)
        if masks is None:
            masks = self._masks[per_chunk] = _flip_masks(CHUNK_BITS, per_chunk)
        if len(masks) > MAX_PROBES_PER_CHUNK:
            return ExactHammingIndex(self.packed).within(query, radius)
        probes = _chunks(query[None, :])[0][:, None] ^ masks[None, :]  # (16, probes) values to look up
        starts = np.take_along_axis(self._starts, probes.astype(np.int64), axis=1)
        ends = np.take_along_axis(self._starts, probes.astype(np.int64) + 1, axis=1)
        found = [self._rows[c, s:e] for c in range(CHUNKS) for s, e in zip(starts[c], ends[c]) if e > s]
        if not found:
            return []
        candidates = np.unique(np.concatenate(found))
        distances = hamming(self.packed[candidates], query)
        keep = distances <= radius
        return _ordered(candidates[keep], distances[keep])


def _ordered(rows: np.ndarray, distances: np.ndarray) -> list[tuple[int, int]]:
    order = np.lexsort((rows, distances))
    return [(int(rows[i]), int(distances[i])) for i in order]


def build_index(packed: np.ndarray, exact_up_to: int = EXACT_SCAN_MAX_HASHES) -> ExactHammingIndex | MultiIndexHamming:
    return ExactHammingIndex(packed) if len(packed) <= exact_up_to else MultiIndexHamming(packed)
