"""Window planning and the pooling rule: pure functions, no media, no database."""
import numpy as np
import pytest

from governance.embedding import window_planning


def test_pdf_pages_split_into_balanced_windows_within_the_limit():
    assert window_planning.page_spans(13, 6) == [(0, 4), (4, 9), (9, 13)]
    assert window_planning.page_spans(6, 6) == [(0, 6)]
    assert window_planning.page_spans(7, 6) == [(0, 4), (4, 7)]
    assert window_planning.page_spans(50, None) == [(0, 50)]
    for pages in range(1, 60):
        spans = window_planning.page_spans(pages, 6)
        assert spans[0][0] == 0 and spans[-1][1] == pages and all(0 < b - a <= 6 for a, b in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_seconds_split_into_balanced_windows_within_the_limit():
    np.testing.assert_allclose(window_planning.time_spans(400, 180), [(0, 400 / 3), (400 / 3, 800 / 3), (800 / 3, 400)])
    assert window_planning.time_spans(180, 180) == [(0, 180)]
    assert len(window_planning.time_spans(120.0001, 120)) == 2
    for seconds in (0.5, 121, 359.9, 360, 361, 7200):
        spans = window_planning.time_spans(seconds, 120)
        assert all(b - a <= 120 + 1e-9 for a, b in spans) and spans[-1][1] == pytest.approx(seconds)


def test_token_estimate_is_conservative_for_prose_digits_and_cjk():
    prose = "The quick brown fox jumps over the lazy dog. " * 10
    assert window_planning.estimate_tokens(prose) >= len(prose.split()) * 1.2  # ~1.3 real tokens per word
    assert window_planning.estimate_tokens("1234567890") == 10  # digits tokenise one by one
    assert window_planning.estimate_tokens("漢字") == 2


def test_text_windows_fit_the_token_limit_less_the_prefix_reserve():
    text = " ".join(f"word{i % 97}" for i in range(20_000))
    spans = window_planning.text_spans(text, 8192)
    assert len(spans) > 1
    assert "".join(text[a:b] for a, b in spans) == text  # nothing lost, nothing repeated
    budget = 8192 - window_planning.PREFIX_TOKEN_RESERVE
    assert all(window_planning.estimate_tokens(text[a:b]) <= budget for a, b in spans)
    assert all(text[b - 1] == " " for _, b in spans[:-1])  # cut after whitespace


def test_one_huge_word_is_cut_inside_and_short_text_is_one_window():
    spans = window_planning.text_spans("x" * 100, 42)
    assert len(spans) > 1 and all(window_planning.estimate_tokens("x" * (b - a)) <= 10 for a, b in spans)
    assert window_planning.text_spans("short text", 8192) == [(0, 10)]
    assert window_planning.text_spans("y" * 100_000, None) == [(0, 100_000)]


def test_cap_on_windows():
    window_planning.check_cap(16, 16, "x")
    with pytest.raises(window_planning.TooManyWindows, match="^too_many_windows: x needs 17 windows"):
        window_planning.check_cap(17, 16, "x")


def test_pooling_is_the_length_weighted_mean_of_unit_vectors_renormalised():
    vectors = np.array([[2.0, 0.0, 0.0], [0.0, 0.5, 0.0]])  # norms differ: only direction counts
    pooled = window_planning.pool(vectors, [3.0, 1.0])
    expected = np.array([0.75, 0.25, 0.0]) / np.linalg.norm([0.75, 0.25, 0.0])
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)
    assert pooled.dtype == np.float32 and np.linalg.norm(pooled) == pytest.approx(1.0)


def test_pooling_equal_weights_is_order_free_and_one_window_is_itself():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((4, 16))
    np.testing.assert_allclose(window_planning.pool(vectors, [1] * 4), window_planning.pool(vectors[::-1], [1] * 4), rtol=1e-6)
    np.testing.assert_allclose(window_planning.pool(vectors[:1], [5]), vectors[0] / np.linalg.norm(vectors[0]), rtol=1e-6)


def test_pooling_windows_that_cancel_falls_back_to_the_longest():
    pooled = window_planning.pool(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0001]]), [1, 1, 1e-9])
    np.testing.assert_allclose(np.abs(pooled), [1.0, 0.0], atol=1e-6)


def test_pooling_refuses_mismatched_or_non_positive_weights():
    with pytest.raises(ValueError):
        window_planning.pool(np.ones((2, 3)), [1.0])
    with pytest.raises(ValueError):
        window_planning.pool(np.ones((2, 3)), [1.0, 0.0])
