"""The bank, the seeding and the uploads the integration tests share (their fixtures: conftest.py)."""
from __future__ import annotations

from governance.moderation import knn_cache
from governance.moderation.exemplar_banks import import_exemplars
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository

BANK = {
    "cooking": ["Simmer the onions in butter until golden, then add garlic and thyme.",
                "Knead the dough for ten minutes and let it rise in a warm kitchen.",
                "Roast the vegetables with olive oil, salt and rosemary at 200 degrees."],
    "finance": ["The central bank raised interest rates by a quarter point to fight inflation.",
                "Quarterly earnings beat analyst forecasts as revenue grew eight percent.",
                "Bond yields fell after the treasury announced a smaller auction."],
}
SPAM = "WIN a FREE cruise!!! Claim your prize voucher code XJ-4411 now at prizes-winner dot example"


def seed(db, ctx, tenant, bank=BANK, prefix=None) -> None:
    """One exemplar per text, `<label>-<i>` (or `<prefix>-<n>`), all imported and none rejected."""
    pairs = [(label, i, text) for label, texts in bank.items() for i, text in enumerate(texts)]
    items = [{"asset_id": f"{prefix}-{n}" if prefix else f"{label}-{i}", "tenant": tenant, "text": text,
              "label": label} for n, (label, i, text) in enumerate(pairs)]
    result = import_exemplars(db, ctx, items)
    assert result.imported == len(items) and not result.rejected


def publish(db, *events) -> list[tuple[str, str]]:
    """Accept the events into the inbox; the (tenant, event_id) of each new one."""
    return accept_events(db, list(enumerate(events))).new


def upload(db, ctx, tenant, asset_id, text) -> dict | None:
    """Publish one text upload and decide it in this transaction."""
    [(_, event_id)] = publish(db, {"asset_id": asset_id, "tenant": tenant, "text": text})
    return process_upload(db, ctx, tenant, event_id)


def knn_path_served(tenant: str) -> str:
    """"cache" when this process's bank cache holds one of the tenant's banks (it is filled only by
    a kNN that the cache answered), else "hnsw": read from the cache's state, nothing patched."""
    held = [key for cache in knn_cache._caches.values() for key, (_, bank) in cache._banks.items()
            if key[0] == tenant and bank is not None]
    return "cache" if held else "hnsw"


def flagged_decision(db, tenant, n, at, score) -> None:
    """A decision the anomaly detector flagged, decided at `at`."""
    repository.insert_decisions(db, [dict(
        tenant=tenant, event_id=f"e{n}", asset_id=f"a{n}", asset_pk=None, action="review", label="x", score=0.5,
        labels=[], anomaly={"score": score, "threshold": 0.5, "flagged": True}, neighbors=[], reason="anomaly",
        embedding_model="m", policy_version="p", bank_version=1, decided_at=at)])
