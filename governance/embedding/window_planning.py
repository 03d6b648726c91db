"""Pure window planning and pooling: how over-limit content is split, and how windows recombine.

Spans are balanced: content of length L over a limit M gets n = ceil(L / M) windows of about
L / n each (13 pages at 6 per request: 5 + 4 + 4; 400 s at 180 s: 3 x 133.3 s), so no window is
a sliver.

Pooling rule: the asset's vector is the length-weighted mean of its unit window vectors,
re-normalised to unit length; a window's length is its pages, seconds or estimated tokens. When
the windows cancel out (the mean is near zero), the longest window's vector stands for the asset.
"""
from __future__ import annotations

import math
import re

import numpy as np

# Room left in every text window for the task prefix the embedder adds ("task: ... | query: ").
PREFIX_TOKEN_RESERVE = 32
_PIECES = re.compile(r"\S+\s*|\s+")


class TooManyWindows(Exception):
    """The content needs more windows than the cap allows."""


def estimate_tokens(text: str) -> int:
    """A conservative (high) token count without the model's tokenizer.

    One token per 3 UTF-8 bytes, and one per digit (Gemini's tokenizer splits numbers into
    digits). English averages ~4 characters per token, so this overestimates prose by ~30%;
    CJK (3 bytes, ~1 token per character) comes out about right.
    """
    digits = sum(ch.isdigit() for ch in text)
    return math.ceil((len(text.encode("utf-8")) - digits) / 3) + digits


def count_windows(length: float, limit: float | None) -> int:
    if limit is None or length <= limit:
        return 1
    return math.ceil(length / limit - 1e-9)


def check_cap(windows: int, cap: int, what: str) -> None:
    if windows > cap:
        raise TooManyWindows(f"too_many_windows: {what} needs {windows} windows, more than {cap} per asset")


def page_spans(pages: int, limit: int | None) -> list[tuple[int, int]]:
    """[first, last) page ranges of at most `limit` pages, balanced."""
    n = count_windows(pages, limit)
    bounds = [round(i * pages / n) for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def time_spans(seconds: float, limit: float | None) -> list[tuple[float, float]]:
    """[start, end) second ranges of at most `limit` seconds, balanced."""
    n = count_windows(seconds, limit)
    bounds = [seconds * i / n for i in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def text_spans(text: str, token_limit: int | None) -> list[tuple[int, int]]:
    """[start, end) character ranges whose estimated tokens stay within the limit less the prefix
    reserve, cut after whitespace; a single piece longer than that is cut inside."""
    if token_limit is None or estimate_tokens(text) <= token_limit - PREFIX_TOKEN_RESERVE:
        return [(0, len(text))]
    budget = max(1, token_limit - PREFIX_TOKEN_RESERVE)
    spans, start, used = [], 0, 0
    for match in _PIECES.finditer(text):
        a, b = match.span()
        cost = estimate_tokens(match.group())
        if used and used + cost > budget:
            spans.append((start, a))
            start, used = a, 0
        while cost > budget:  # one enormous "word": cut it by characters
            cut = _longest_prefix_within(text, start, b, budget)
            spans.append((start, cut))
            start = cut
            cost = estimate_tokens(text[start:b])
        used += cost
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _longest_prefix_within(text: str, start: int, end: int, budget: int) -> int:
    low, high = start + 1, end  # estimate_tokens is monotone in the prefix length
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if estimate_tokens(text[start:mid]) <= budget else (low, mid - 1)
    return low


def pool(vectors: np.ndarray, weights: list[float] | np.ndarray) -> np.ndarray:
    """The pooling rule of the module docstring; `vectors` is (windows, dims)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(weights) or len(vectors) == 0:
        raise ValueError(f"pool needs one weight per window, got {vectors.shape} and {weights.shape}")
    if (weights <= 0).any() or not np.isfinite(weights).all():
        raise ValueError("window weights must be positive")
    units = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = (weights[:, None] * units).sum(axis=0) / weights.sum()
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        return units[int(np.argmax(weights))].astype(np.float32)
    return (mean / norm).astype(np.float32)
