import numpy as np

from governance.moderation.knn_cache import Bank, exact_neighbors


def unit(*xs):
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_exact_neighbors_are_the_k_nearest_vectors_expanded_to_their_exemplars_in_distance_order():
    bank = Bank(vectors=np.stack([unit(1, 0), unit(0, 1), unit(1, 1), unit(-1, 0)]),
                exemplars=[[("a", "spam", "positive")], [("b", "ham", "positive")],
                           [("c", "spam", "positive"), ("c", "ham", "negative")], [("d", "ham", "positive")]])
    [near_x, near_y] = exact_neighbors(bank, [unit(1, 0.1), unit(0, 1)], 2)
    assert [(n.asset_id, n.label) for n in near_x] == [("a", "spam"), ("c", "spam"), ("c", "ham")]
    assert near_x[0].distance < near_x[1].distance == near_x[2].distance
    assert [n.asset_id for n in near_y] == ["b", "c", "c"] and abs(near_y[0].distance) < 1e-6
    assert near_x[2].polarity == "negative"  # an asset's exemplars keep their stored order


def test_exact_neighbors_of_an_empty_bank_or_with_k_above_its_size():
    empty = Bank(vectors=np.zeros((0, 2), dtype=np.float32), exemplars=[])
    assert exact_neighbors(empty, [unit(1, 0)], 3) == [[]]
    one = Bank(vectors=np.stack([unit(0, 1)]), exemplars=[[("only", "x", "positive")]])
    [found] = exact_neighbors(one, [unit(1, 0)], 10)
    assert [n.asset_id for n in found] == ["only"] and abs(found[0].distance - 1.0) < 1e-6


def test_exact_neighbors_among_some_modalities_only():
    bank = Bank(vectors=np.stack([unit(1, 0), unit(1, 0.2), unit(0, 1)]),
                exemplars=[[("pic", "landscape", "positive")], [("txt", "spam", "positive")],
                           [("doc", "finance", "positive")]],
                modalities=["image", "text", "pdf"])
    [every] = exact_neighbors(bank, [unit(1, 0)], 2)
    assert [n.asset_id for n in every] == ["pic", "txt"]
    [texts] = exact_neighbors(bank, [unit(1, 0)], 2, frozenset({"text", "pdf"}))
    assert [n.asset_id for n in texts] == ["txt", "doc"]
    assert exact_neighbors(bank, [unit(1, 0)], 2, frozenset({"audio"})) == [[]]
