"""The Hamming indexes against brute force over bit arrays, without a database."""
import numpy as np
import pytest

from governance.moderation.hash_index import (
    ExactHammingIndex, MultiIndexHamming, build_index, hamming, pack_hex, unpack_hex,
)


def random_hashes(rng, n: int) -> np.ndarray:
    return rng.integers(0, 2, size=(n, 256), dtype=np.uint8)


def as_hex(bits: np.ndarray) -> list[str]:
    return [np.packbits(row).tobytes().hex() for row in bits]


def flipped(rng, bits: np.ndarray, count: int) -> np.ndarray:
    out = bits.copy()
    out[rng.choice(256, size=count, replace=False)] ^= 1
    return out


def brute_force(bank_bits: np.ndarray, query_bits: np.ndarray, radius: int) -> list[tuple[int, int]]:
    distances = (bank_bits != query_bits).sum(axis=1)
    return sorted(((int(i), int(d)) for i, d in enumerate(distances) if d <= radius), key=lambda p: (p[1], p[0]))


def test_packing_round_trips_and_distance_counts_differing_bits():
    rng = np.random.default_rng(1)
    bits = random_hashes(rng, 3)
    hexes = as_hex(bits)
    packed = pack_hex(hexes)
    assert packed.shape == (3, 4) and packed.dtype == np.uint64
    assert unpack_hex(packed) == hexes
    assert hamming(packed[0], packed[1]) == int((bits[0] != bits[1]).sum())
    assert hamming(packed[2], packed[2]) == 0
    assert pack_hex([]).shape == (0, 4)


@pytest.mark.parametrize("index_class", [ExactHammingIndex, MultiIndexHamming])
def test_both_indexes_return_exactly_what_brute_force_returns(index_class):
    rng = np.random.default_rng(7)
    bank_bits = random_hashes(rng, 3000)
    # Near copies of bank rows at many distances, so every radius has hits at its edge.
    for i, count in enumerate([0, 1, 5, 15, 16, 17, 30, 31, 32, 40, 47, 63]):
        bank_bits[100 + i] = flipped(rng, bank_bits[7], count)
    index = index_class(pack_hex(as_hex(bank_bits)))
    queries = [bank_bits[7], flipped(rng, bank_bits[7], 3), flipped(rng, bank_bits[500], 20), random_hashes(rng, 1)[0]]
    for query in queries:
        packed_query = pack_hex(as_hex(query[None, :]))[0]
        for radius in (0, 10, 15, 16, 31, 32, 47, 63, 90):
            assert index.within(packed_query, radius) == brute_force(bank_bits, query, radius), (radius, index_class)
    assert index.within(pack_hex(as_hex(bank_bits[:1]))[0], -1) == []


def test_multi_index_agrees_with_the_scan_on_clustered_hashes():
    """Real PDQ banks are not uniform: many hashes share chunks. Skewed buckets must not lose rows."""
    rng = np.random.default_rng(3)
    centres = random_hashes(rng, 20)
    bank_bits = np.stack([flipped(rng, centres[i % 20], int(rng.integers(0, 40))) for i in range(5000)])
    packed = pack_hex(as_hex(bank_bits))
    exact, multi = ExactHammingIndex(packed), MultiIndexHamming(packed)
    for c in range(20):
        query = pack_hex(as_hex(flipped(rng, centres[c], 4)[None, :]))[0]
        found = multi.within(query, 31)
        assert found == exact.within(query, 31)
        assert len(found) > 0


def test_empty_banks_and_the_size_switch():
    assert ExactHammingIndex(pack_hex([])).within(np.zeros(4, dtype=np.uint64), 31) == []
    assert MultiIndexHamming(pack_hex([])).within(np.zeros(4, dtype=np.uint64), 31) == []
    packed = pack_hex(as_hex(random_hashes(np.random.default_rng(0), 10)))
    assert isinstance(build_index(packed, exact_up_to=10), ExactHammingIndex)
    multi = build_index(packed, exact_up_to=9)
    assert isinstance(multi, MultiIndexHamming) and len(multi) == 10
    assert multi.within(packed[4], 0) == [(4, 0)]


def test_retroactive_pairs_are_the_same_whichever_side_is_indexed():
    from governance.moderation.hash_banks import _pdq_pairs

    rng = np.random.default_rng(11)
    uploads = random_hashes(rng, 40)
    bank = np.stack([flipped(rng, uploads[i], d) for i, d in [(3, 5), (7, 20), (9, 40)]] + [random_hashes(rng, 1)[0]])
    radii = [31, 15, 63, 31]
    expected = sorted((u, b, int((uploads[u] != bank[b]).sum())) for u in range(40) for b in range(4)
                      if (uploads[u] != bank[b]).sum() <= radii[b])
    assert [p[:2] for p in expected] == [(3, 0), (9, 2)]
    assert sorted(_pdq_pairs(as_hex(uploads), as_hex(bank), radii)) == expected  # uploads indexed
    assert _pdq_pairs(as_hex(uploads[3:4]) + as_hex(uploads[9:10]), as_hex(bank), radii) == [
        (0, 0, expected[0][2]), (1, 2, expected[1][2])]  # fewer uploads than bank hashes: the bank is indexed
    assert _pdq_pairs([], as_hex(bank), radii) == []
