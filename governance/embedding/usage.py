"""Usage accounting: what each embedding call cost, per tenant, model and UTC day.

Every embed call made through `embed_with_cache` is recorded in the transaction that stores
its vectors, so a rolled-back task leaves no spend behind and a committed one always does.
Cache hits cost nothing: they are counted in `cached_items`, never in `items` or tokens.

Tokens come from Gemini's `usageMetadata`. Embedders that cannot report usage (the offline
ones) get the windowing token estimate for text and 0 for media, flagged `estimated`.

Estimated cost = prompt tokens / 1M × the model's price (USD per 1M input tokens), halved for
the Batch API. Defaults, from Google's public price list (text input, paid tier): see
PRICES_PER_MILLION. Gemini bills image, audio and video tokens of gemini-embedding-2 higher
($0.45, $6.50 and $12.00 per 1M), so for media the estimate is a lower bound. Override or add
prices with GOVERNANCE_EMBEDDING_PRICES="gemini-embedding-2=0.2,gemini-embedding-001=0.15".
Offline models cost 0; an unknown Gemini model has no price (shown as `?`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Sequence

import numpy as np
from sqlalchemy.orm import Session

from governance.embedding.protocol import EmbedUsage, Embedder, Task
from governance.embedding.window_planning import estimate_tokens
from governance.ingest.content import Content
from governance.storage import repository

PRICES_PER_MILLION = {"gemini-embedding-2": 0.20, "gemini-embedding-001": 0.15}
BATCH_DISCOUNT = 0.5
PAID_PREFIXES = ("gemini", "models/gemini", "text-embedding")


def embed_measured(embedder: Embedder, items: Sequence[Content], task: Task) -> tuple[np.ndarray, EmbedUsage]:
    """The embedder's vectors and what the call cost (reported by the embedder, else estimated)."""
    if getattr(embedder, "reports_usage", False):
        usage = EmbedUsage()
        return embedder.embed(items, task, usage=usage), usage
    vectors = embedder.embed(items, task)
    tokens = sum(estimate_tokens(item.text or "") for item in items if item.modality == "text")
    return vectors, EmbedUsage(calls=1, prompt_tokens=tokens, estimated=True)


def record(session: Session, tenant: str, embedder: Embedder, *, items: int, cached: int,
           usage: EmbedUsage | None, mode: str = "online") -> None:
    if not items and not cached:
        return
    usage = usage or EmbedUsage()
    repository.add_usage(session, tenant=tenant, day=datetime.now(timezone.utc).date(), model=embedder.model_id,
                         dims=embedder.dims, mode=mode, items=items, cached_items=cached, calls=usage.calls,
                         prompt_tokens=usage.prompt_tokens, estimated=usage.estimated)


# --- reporting ------------------------------------------------------------------------------------

def base_model(model_id: str) -> str:
    """`gemini-embedding-2@768+media-prefix` -> `gemini-embedding-2`: what the price list names."""
    return model_id.split("@", 1)[0].removeprefix("models/")


def price_per_million(model_id: str, overrides: dict[str, float] | None = None) -> float | None:
    prices = {**PRICES_PER_MILLION, **(overrides or {})}
    name = base_model(model_id)
    if name in prices:
        return prices[name]
    return None if name.startswith(PAID_PREFIXES) else 0.0


@dataclass(frozen=True)
class UsageLine:
    tenant: str
    model: str
    dims: int
    mode: str
    items: int
    cached_items: int
    calls: int
    prompt_tokens: int
    estimated: bool
    cost_usd: float | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def usage_report(session: Session, tenant: str | None, since: date | None,
                 overrides: dict[str, float] | None = None) -> list[UsageLine]:
    lines = []
    for row in repository.usage_totals(session, tenant, since):
        price = price_per_million(row["model"], overrides)
        if price is not None and row["mode"] == "batch":
            price *= BATCH_DISCOUNT
        cost = None if price is None else round(row["prompt_tokens"] / 1e6 * price, 6)
        lines.append(UsageLine(**row, cost_usd=cost))
    return lines


def format_report(lines: list[UsageLine]) -> str:
    header = ("tenant", "model", "dims", "mode", "items", "cached", "calls", "tokens", "cost_usd")
    rows = [(line.tenant, line.model, str(line.dims), line.mode, str(line.items), str(line.cached_items),
             str(line.calls), f"{line.prompt_tokens}{'~' if line.estimated else ''}",
             "?" if line.cost_usd is None else f"{line.cost_usd:.6f}") for line in lines]
    known = [line.cost_usd for line in lines if line.cost_usd is not None]
    total = f"{sum(known):.6f}" + (" (+ unpriced models)" if len(known) < len(lines) else "")
    rows.append(("total", "", "", "", str(sum(x.items for x in lines)), str(sum(x.cached_items for x in lines)),
                 str(sum(x.calls for x in lines)), str(sum(x.prompt_tokens for x in lines)), total))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in (header, *rows)]
    return "\n".join(out) + "\n(~ estimated tokens; cost in USD per the price table, see README)"
