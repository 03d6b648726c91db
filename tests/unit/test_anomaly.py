import numpy as np
import pytest

from governance.moderation.anomaly import bank_threshold, kth_distance, score


def unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_kth_distance_uses_the_kth_or_the_farthest_available():
    assert kth_distance([0.1, 0.2, 0.3], 2) == pytest.approx(0.2)
    assert kth_distance([0.1, 0.2], 5) == pytest.approx(0.2)
    assert kth_distance([], 3) == 1.0


def test_bank_threshold_is_a_quantile_of_leave_one_out_distances():
    rng = np.random.default_rng(0)
    tight = unit(np.array([1.0, 0, 0]) + 0.01 * rng.standard_normal((200, 3)))
    loose = unit(np.array([1.0, 0, 0]) + 0.5 * rng.standard_normal((200, 3)))
    assert bank_threshold(tight, k=5, quantile=0.95) < bank_threshold(loose, k=5, quantile=0.95)


def test_bank_threshold_leaves_each_exemplar_out():
    # Two identical pairs: with itself left out, each point's nearest is its twin at distance 0.
    bank = unit([[1, 0], [1, 0], [0, 1], [0, 1]])
    assert bank_threshold(bank, k=1, quantile=1.0) == pytest.approx(0.0, abs=1e-6)
    assert bank_threshold(bank, k=2, quantile=1.0) == pytest.approx(1.0, abs=1e-6)


def test_bank_threshold_blocks_match_a_direct_computation():
    rng = np.random.default_rng(1)
    bank = unit(rng.standard_normal((2500, 8)))  # more than one 1024-row block
    sims = bank @ bank.T
    np.fill_diagonal(sims, -np.inf)
    direct = 1 - np.sort(sims, axis=1)[:, -3]
    assert bank_threshold(bank, k=3, quantile=0.9) == pytest.approx(float(np.quantile(direct, 0.9)), rel=1e-5)


def test_score_flags_only_above_the_threshold():
    assert score([0.1, 0.2], 2, threshold=0.3).flagged is False
    flagged = score([0.1, 0.5], 2, threshold=0.3)
    assert flagged.flagged is True and flagged.score == pytest.approx(0.5)
    assert flagged.as_dict() == {"score": 0.5, "threshold": 0.3, "flagged": True}
