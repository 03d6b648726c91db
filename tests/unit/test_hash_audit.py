"""The hash-bank audit on planted contradictions, and on a clean bank that has none."""
import numpy as np

from governance.moderation.hash_audit import BankedHash, ExemplarHash, audit_hashes
from governance.moderation.hash_index import pack_hex, unpack_hex
from governance.moderation.hash_matching import pdq_distance

RADIUS = {"csam": 31, "spam": 31, "strict": 8}


def radius_of(label: str) -> int:
    return RADIUS.get(label, 31)


def random_pdq(rng) -> str:
    return rng.bytes(32).hex()


def flipped(signal: str, bits: int, rng) -> str:
    """The hash with `bits` distinct bits flipped."""
    packed = pack_hex([signal])[0].copy()
    for bit in rng.choice(256, size=bits, replace=False):
        packed[bit // 64] ^= np.uint64(1 << (63 - int(bit) % 64))
    out = unpack_hex(packed)[0]
    assert pdq_distance(signal, out) == bits
    return out


def clean_bank(rng, n: int = 40) -> list[BankedHash]:
    """Random PDQ hashes (about 128 bits apart) over two labels, and MD5s of one label each."""
    bank = [BankedHash("pdq", random_pdq(rng), "csam" if i % 2 else "spam", "positive", "list-a") for i in range(n)]
    return bank + [BankedHash("md5", rng.bytes(16).hex(), "spam", "positive", "md5s") for _ in range(5)]


def test_a_clean_bank_and_its_own_exemplars_give_no_finding():
    rng = np.random.default_rng(1)
    bank = clean_bank(rng)
    # A same-label near copy is no contradiction, nor is an exemplar matching a hash of its own label.
    bank.append(BankedHash("pdq", flipped(bank[0].signal, 5, rng), bank[0].label, "positive", "list-b"))
    exemplars = [ExemplarHash("ex-0", bank[0].label, flipped(bank[0].signal, 3, rng)),
                 ExemplarHash("ex-1", "landscape", random_pdq(rng))]
    assert audit_hashes(bank, exemplars, radius_of) == []


def test_planted_contradictions_are_each_found_and_nothing_else():
    rng = np.random.default_rng(2)
    bank = clean_bank(rng)
    twice, near_of, exemplar_of = bank[0], bank[2], bank[4]  # spam, spam, spam
    bank.append(BankedHash("pdq", twice.signal, "csam", "positive", "partner"))  # same signal, another label
    bank.append(BankedHash(bank[-6].signal_type, bank[-6].signal, "ham", "negative", "allow"))  # md5 + allowlist
    near = flipped(near_of.signal, 20, rng)
    bank.append(BankedHash("pdq", near, "csam", "positive", "partner"))  # 20 bits from a spam hash
    bank.append(BankedHash("pdq", flipped(bank[6].signal, 20, rng), "strict", "positive", "x"))  # 20 > 8, but 31
    bank.append(BankedHash("pdq", flipped(bank[8].signal, 40, rng), "csam", "positive", "far"))  # beyond 31
    exemplars = [ExemplarHash("cat-1", "cats", flipped(exemplar_of.signal, 6, rng)),
                 ExemplarHash("cat-2", "cats", random_pdq(rng))]

    found = audit_hashes(bank, exemplars, radius_of)
    kinds = [f.kind for f in found]
    assert kinds == ["hash_contradiction"] * 2 + ["hash_near_contradiction"] * 2 + ["bank_contradiction"]
    same = {tuple(sorted(bank[i].label for i in f.hashes)) for f in found if f.kind == "hash_contradiction"}
    assert same == {("csam", "spam"), ("ham", "spam")}
    md5_finding = next(f for f in found if f.detail["signal_type"] == "md5")
    assert md5_finding.detail["polarities"] == {"ham": "negative", "spam": "positive"}
    near_pairs = [(sorted(bank[i].signal for i in f.hashes), f.detail["distance"], f.detail["hash_distance"])
                  for f in found if f.kind == "hash_near_contradiction"]
    assert (sorted([near_of.signal, near]), 20, 31) in near_pairs
    assert {d for _, d, _ in near_pairs} == {20}  # the 40-bit pair is not one
    [cross] = [f for f in found if f.kind == "bank_contradiction"]
    assert cross.exemplars == [0] and bank[cross.hashes[0]] == exemplar_of
    assert cross.detail == {"distance": 6, "hash_distance": 31, "exemplar_label": "cats", "hash_label": "spam",
                            "hash_polarity": "positive"}
    assert cross.score == 25.0


def test_a_tighter_label_distance_is_respected_for_exemplars():
    rng = np.random.default_rng(3)
    strict = BankedHash("pdq", random_pdq(rng), "strict", "positive", "s")
    inside, outside = flipped(strict.signal, 8, rng), flipped(strict.signal, 9, rng)
    found = audit_hashes([strict], [ExemplarHash("a", "other", inside), ExemplarHash("b", "other", outside)],
                         radius_of)
    assert [(f.kind, f.exemplars) for f in found] == [("bank_contradiction", [0])]
