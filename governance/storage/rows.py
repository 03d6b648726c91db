"""Row types the repository returns that are not tables."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Neighbor:
    asset_id: str
    label: str
    distance: float  # cosine distance, 0..2
    polarity: str = "positive"  # "negative": an allowlist entry that suppresses `label`
