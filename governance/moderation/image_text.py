"""Text inside images: OCR once per image upload, its text embedded and voted against the text exemplars.

`GOVERNANCE_OCR=auto` reads images for embedders that do not read the text in a picture themselves
(the offline ones; Gemini's multimodal vectors already carry it), `on` and `off` say so for every
embedder. The text vote is evidence next to the pixel vote (vote.combine_votes decides between
them); it counts only when OCR read at least a few confident characters (ingest/ocr.py) and the
text lies as close to an exemplar of the label it votes for as the text bank's own members lie to
their nearest neighbour (the anomaly quantile of the bank's leave-one-out 1-NN distances), so that
a stray line on a photo cannot outvote its pixels. The policy's k-th-neighbour anomaly threshold is
no gate here: it let a phone number on a clipart sign vote (nearest exemplar 0.78 away, threshold
0.79 on the development corpus), and a label of fewer than k exemplars would never pass it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from governance.embedding.protocol import Embedder, EmbeddingError, Task
from governance.embedding.vector_cache import embed_each, task_key
from governance.ingest import ocr
from governance.ingest.assets import LoadedAsset
from governance.ingest.content import Content
from governance.moderation import knn_cache
from governance.moderation.pipeline import Context, anomaly_threshold, knn_scan
from governance.moderation.vote import Vote, knn_vote
from governance.storage.rows import Neighbor

# The exemplars a text read in a picture is compared with: those embedded from text.
TEXT_MODALITIES = frozenset({"text", "pdf"})


@dataclass(frozen=True)
class TextEvidence:
    """What OCR read in one image, and (when it read something) how its text voted."""

    read: ocr.ImageText
    vote: Vote | None = None
    neighbors: tuple[Neighbor, ...] = ()
    threshold: float | None = None  # the text bank's anomaly threshold of nearest-neighbour distances
    error: str | None = None  # the text embedder refused the text

    @property
    def nearest(self) -> float | None:
        """Distance to the nearest positive exemplar of the label the text votes for."""
        label = self.vote.label if self.vote else None
        return min((n.distance for n in self.neighbors if n.label == label and n.polarity == "positive"),
                   default=None)

    @property
    def counts(self) -> bool:
        """Whether the text vote may decide: it names a label whose exemplars the text is close to."""
        nearest = self.nearest
        return nearest is not None and self.threshold is not None and nearest <= self.threshold

    def as_dict(self, used: bool) -> dict:
        vote = self.vote or Vote(label=None, score=0.0)
        return {"text": self.read.text, "confidence": self.read.confidence, "label": vote.label,
                "score": round(vote.score, 6), "used": used,
                "nearest": None if self.nearest is None else round(self.nearest, 6),
                "threshold": None if self.threshold is None else round(self.threshold, 6),
                "neighbors": [{"asset_id": n.asset_id, "label": n.label, "distance": round(n.distance, 6),
                               **({"polarity": n.polarity} if n.polarity != "positive" else {})}
                              for n in self.neighbors],
                **({"error": self.read.error or self.error} if self.read.error or self.error else {})}


def ocr_enabled(ctx: Context, embedder: Embedder) -> bool:
    mode = ctx.settings.ocr
    if mode == "auto":
        return not getattr(embedder, "reads_text_in_images", False) and ocr.available()
    return mode == "on"


def read_images(ctx: Context, embedder: Embedder, assets: list[LoadedAsset]) -> list[ocr.ImageText | None]:
    """What OCR reads in each image (None for other modalities, or with OCR off); identical
    pictures in one batch are read once."""
    if not ocr_enabled(ctx, embedder):
        return [None] * len(assets)
    read: dict[str, ocr.ImageText] = {}
    out: list[ocr.ImageText | None] = []
    for asset in assets:
        if asset.content.modality != "image" or asset.content.data is None:
            out.append(None)
            continue
        if asset.sha256 not in read:
            read[asset.sha256] = ocr.read_text(asset.content.data, min_confidence=ctx.settings.ocr_min_confidence,
                                               seconds=ctx.settings.ocr_seconds,
                                               threads=ctx.settings.embedder_threads)
        out.append(read[asset.sha256])
    return out


def text_evidence(session: Session, ctx: Context, tenant: str, reads: list[ocr.ImageText | None],
                  version: int) -> list[TextEvidence | None]:
    """Each image's text embedded with the tenant's embedder and voted against the text exemplars.
    Transient embedding errors propagate (the batch is retried); a permanent one is noted."""
    embedder = ctx.embedder
    out: list[TextEvidence | None] = [None if r is None else TextEvidence(r) for r in reads]
    wanted = [i for i, r in enumerate(reads) if r is not None and r.text]
    if not wanted:
        return out
    texts = [_text_asset(reads[i].text) for i in wanted]
    outcomes = embed_each(session, embedder, tenant, texts, Task.CLASSIFICATION)
    task = task_key(embedder, Task.CLASSIFICATION, "text")
    ok = [(i, o) for i, o in zip(wanted, outcomes) if not isinstance(o, EmbeddingError)]
    found = knn_cache.nearest(session, tenant, embedder.model_id, embedder.dims, task, [o.vector for _, o in ok],
                              ctx.policy.k, version, modalities=TEXT_MODALITIES, **knn_scan(ctx)) if ok else []
    threshold = anomaly_threshold(session, ctx, tenant, "text", task, version, k=1) if ok else 1.0
    for (i, _), neighbors in zip(ok, found):
        out[i] = TextEvidence(reads[i], knn_vote(neighbors, ctx.policy.k), tuple(neighbors), threshold)
    for i, outcome in zip(wanted, outcomes):
        if isinstance(outcome, EmbeddingError):
            out[i] = TextEvidence(reads[i], error=f"text_embedding_failed: {outcome}")
    return out


def _text_asset(text: str) -> LoadedAsset:
    raw = text.encode("utf-8")
    return LoadedAsset(Content(modality="text", mime_type="text/plain", text=text), hashlib.sha256(raw).hexdigest(),
                       len(raw), None, None)
