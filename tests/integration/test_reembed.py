"""`reembed` on a real PostgreSQL: batches, resuming, unreadable sources, and the switch."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from governance.embedding.backends.hashing import HashingEmbedder
from governance.embedding.reembed import reembed
from governance.moderation.exemplar_banks import import_exemplars
from governance.moderation.pipeline import Context, for_tenant
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository
from governance.storage.embedding_tables import EmbeddingUsage
from governance.storage.tables import Embedding

pytestmark = pytest.mark.timeout(60)
LONG_TEXT = "A long exemplar about bread and ovens. " * 80  # over the 2,000-character stored excerpt


def png(colour=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def ctx(settings):
    return Context(settings=settings, embedder=HashingEmbedder(768))


def decide(db, ctx, tenant, event):
    [(_, event_id)] = accept_events(db, [(0, {"tenant": tenant, **event})]).new
    return process_upload(db, ctx, tenant, event_id)


def vectors_of(db, tenant, dims):
    db.expire_all()
    return {(pk, in_bank) for pk, in_bank in db.execute(
        select(Embedding.asset_pk, Embedding.in_bank).where(Embedding.tenant == tenant, Embedding.dims == dims))}


def test_reembed_resumes_reports_unreadable_assets_and_switches(db, ctx, settings, tenant, tmp_path, batches):
    exemplars = [{"asset_id": "short", "tenant": tenant, "text": "Simmer the onions in butter.", "label": "cooking"},
                 {"asset_id": "long", "tenant": tenant, "text": LONG_TEXT, "label": "cooking"},
                 {"asset_id": "picture", "tenant": tenant, "data_b64": base64.b64encode(png()).decode(), "label": "blue"},
                 {"asset_id": "rates", "tenant": tenant, "text": "Interest rates rose again.", "label": "finance"}]
    assert import_exemplars(db, ctx, exemplars).imported == 4
    decide(db, ctx, tenant, {"asset_id": "upload", "text": "Fry garlic in butter."})
    # Images read from files: only the file holds their bytes (a text's excerpt can stand in for it).
    gone, changed = tmp_path / "gone.png", tmp_path / "changed.png"
    gone.write_bytes(png((200, 0, 0)))
    changed.write_bytes(png((0, 200, 0)))
    decide(db, ctx, tenant, {"asset_id": "deleted", "uri": f"file://{gone}"})
    decide(db, ctx, tenant, {"asset_id": "changed", "uri": f"file://{changed}"})
    gone.unlink()
    changed.write_bytes(png((0, 0, 200)))
    target = HashingEmbedder(384)
    progress = []

    first = reembed(batches, settings, tenant, "hashing", target, batch_size=2, limit=3,
                    progress=lambda done, total: progress.append((done, total)))
    assert (first.total, first.already_done, first.embedded, first.remaining, first.switched) == (7, 0, 3, 4, False)
    assert progress == [(0, 3), (2, 3), (3, 3)]
    assert for_tenant(db, ctx, tenant).embedder is ctx.embedder  # not switched: still the old model
    done_first = vectors_of(db, tenant, 384)
    assert len(done_first) == 3

    second = reembed(batches, settings, tenant, "hashing", target, batch_size=2)
    assert (second.already_done, second.embedded, second.remaining, second.switched) == (3, 2, 0, True)
    reasons = dict(second.unreadable)
    assert set(reasons) == {"deleted", "changed"}
    assert reasons["deleted"].startswith("unreadable_source: ") and "source_changed" not in reasons["deleted"]
    assert reasons["changed"] == "unreadable_source: source_changed: content no longer matches the stored sha256"

    pks = {repository.asset_by_id(db, tenant, a).id: a for a in ("short", "long", "picture", "rates", "upload")}
    after = vectors_of(db, tenant, 384)
    assert {pk for pk, _ in after} == set(pks) and done_first <= after
    assert {pks[pk] for pk, in_bank in after if in_bank} == {"short", "long", "picture", "rates"}
    spent = db.scalar(select(func.sum(EmbeddingUsage.items)).where(EmbeddingUsage.tenant == tenant,
                                                                   EmbeddingUsage.dims == 384))
    assert spent == 5  # each readable asset embedded once over both runs

    switched = for_tenant(db, ctx, tenant).embedder
    assert switched.dims == 384
    decision = decide(db, ctx, tenant, {"asset_id": "next", "text": "Simmer onions in plenty of butter."})
    assert decision["neighbors"] and decision["neighbors"][0]["asset_id"] == "short"
    assert {dims for dims in db.scalars(select(Embedding.dims).where(
        Embedding.asset_pk == repository.asset_by_id(db, tenant, "next").id))} == {384}

    again = reembed(batches, settings, tenant, "hashing", target)  # nothing left: a no-op that stays switched
    assert (again.already_done, again.embedded, again.switched) == (6, 0, True)
