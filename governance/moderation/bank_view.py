"""The console's banks page: each label with its exemplar counts, and one label's exemplars with
what the grid shows of them. Enabling and disabling go through `exemplar_banks.set_enabled`, as
`governance exemplars enable|disable` do."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.moderation.review_evidence import AssetView, asset_view
from governance.storage import repository

MAX_EXEMPLARS = 120


@dataclass(frozen=True)
class LabelCount:
    label: str
    enabled: int
    disabled: int
    allowlist: int  # enabled negative exemplars


@dataclass(frozen=True)
class ExemplarTile:
    label: str
    polarity: str
    enabled: bool
    source: str
    created_by: str | None
    view: AssetView


def label_counts(session: Session, tenant: str) -> list[LabelCount]:
    tally: dict[str, dict[str, int]] = defaultdict(lambda: {"enabled": 0, "disabled": 0, "allowlist": 0})
    for label, polarity, enabled, n in repository.bank_label_counts(session, tenant):
        key = "disabled" if not enabled else ("allowlist" if polarity == "negative" else "enabled")
        tally[label][key] += n
    return [LabelCount(label, **counts) for label, counts in sorted(tally.items())]


def exemplar_tiles(session: Session, tenant: str, label: str | None) -> list[ExemplarTile]:
    return [ExemplarTile(e.label, e.polarity, e.enabled, e.source, e.created_by, asset_view(a))
            for e, a in repository.bank_exemplars(session, tenant, label, MAX_EXEMPLARS)]
