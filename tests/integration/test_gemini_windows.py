"""Every modality through the real google-genai SDK to the wire-level fake, with windows in Postgres."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from governance.embedding import window_planning
from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.protocol import Task, task_prefixed
from governance.embedding.vector_cache import embed_with_cache
from governance.ingest.assets import load
from governance.ingest.events import UploadEvent
from governance.moderation.pipeline import Context
from governance.ingest.inbox import accept_events
from governance.moderation.batch_pipeline import process_upload
from governance.storage import repository
from tests import media_samples as ms
from tests.fakes.fake_gemini import FakeGemini, expected_vector
from sqlalchemy import text

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def clean_sdk_env(monkeypatch):
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeGemini() as server:
        yield server


def gemini(fake, **overrides) -> GeminiEmbedder:
    return GeminiEmbedder(**{**dict(api_key=fake.api_key, base_url=fake.base_url, timeout_s=10, max_retries=0),
                             **overrides})


def asset(settings, data: bytes | None = None, text: str | None = None, asset_id: str = "a"):
    fields = {"text": text} if text is not None else {"data_b64": base64.b64encode(data).decode()}
    return load(UploadEvent.parse({"asset_id": asset_id, **fields}), settings)


def unit(vector):
    return vector / np.linalg.norm(vector)


MODALITIES = {
    "text": (lambda: None, "text/plain"),
    "png": (lambda: ms.image_bytes("PNG"), "image/png"),
    "jpeg": (lambda: ms.image_bytes("JPEG"), "image/jpeg"),
    "webp": (lambda: ms.image_bytes("WEBP"), "image/png"),
    "gif": (lambda: ms.image_bytes("GIF"), "image/png"),
    "bmp": (lambda: ms.image_bytes("BMP"), "image/png"),
    "wav": (lambda: ms.wav_bytes(2), "audio/wav"),
    "mp3": (lambda: ms.mp3_bytes(2), "audio/mpeg"),
    "flac": (lambda: ms.flac_bytes(2), "audio/wav"),
    "ogg": (lambda: ms.ogg_bytes(2), "audio/wav"),
    "m4a": (lambda: ms.m4a_bytes(2), "audio/wav"),
    "mp4": (lambda: ms.mp4_bytes(2), "video/mp4"),
    "mov": (lambda: ms.mov_bytes(2), "video/quicktime"),
    "webm": (lambda: ms.webm_bytes(2), "video/mp4"),
    "avi": (lambda: ms.avi_bytes(2), "video/mp4"),
    "pdf": (lambda: ms.pdf_bytes(2), "application/pdf"),
}


def test_each_modality_is_one_request_and_one_vector_with_an_accepted_mime_on_the_wire(db, settings, tenant, fake):
    names = list(MODALITIES)
    assets = [asset(settings, text="a short caption") if n == "text" else asset(settings, MODALITIES[n][0](), asset_id=n)
              for n in names]
    embedded = embed_with_cache(db, gemini(fake), tenant, assets, Task.CLASSIFICATION)

    [call] = fake.embed_calls  # 16 assets, one call, one request each
    assert len(embedded) == len(call.parts) == len(names)
    for name, parts, details, result in zip(names, call.parts, call.part_details, embedded):
        [detail] = details
        if name == "text":
            assert detail == {"text": task_prefixed(Task.CLASSIFICATION, "a short caption")}
        else:
            assert detail["mime_type"] == MODALITIES[name][1], name  # converted where Gemini needs it
        np.testing.assert_allclose(result.vector, unit(expected_vector(parts, 768)), rtol=1e-5, atol=1e-6)
    assert not db.execute(text("SELECT 1 FROM embedding_windows WHERE tenant = :t"), {"t": tenant}).all()


class Sent:
    """Every request of every call, in order (the embedders below make one call at a time)."""

    def __init__(self, fake):
        self.parts = [p for c in fake.embed_calls for p in c.parts]
        self.part_details = [d for c in fake.embed_calls for d in c.part_details]


def check_windows(db, tenant, embedder, loaded, result, call, unit_name, sizes, limit):
    """Requests on the wire, stored windows and the pooled vector all agree."""
    measured = [d[0].get(unit_name) for d in call.part_details]
    # Video frames quantise a window to whole frames (0.5 s at 2 fps), never beyond its span.
    assert measured == pytest.approx(sizes, abs=0.6) and all(m <= limit for m in measured)
    stored = repository.embedding_windows(db, tenant, loaded.sha256, embedder.model_id, embedder.dims, result.task)
    assert [w["window"] for w in stored] == list(range(len(sizes)))
    assert [w["weight"] for w in stored] == pytest.approx(sizes, abs=0.25)
    wire = np.stack([unit(expected_vector(parts, 768)) for parts in call.parts])
    np.testing.assert_allclose(np.stack([w["vector"] for w in stored]), wire, rtol=1e-5, atol=1e-6)
    pooled = window_planning.pool(wire, [w["weight"] for w in stored])
    np.testing.assert_allclose(result.vector, pooled, rtol=1e-5, atol=1e-6)
    assert min(float(result.vector @ w) for w in wire) < 0.99  # the pool is not just one window


def test_a_13_page_pdf_is_three_window_requests_stored_and_pooled(db, settings, tenant, fake):
    embedder = gemini(fake)
    loaded = asset(settings, ms.pdf_bytes(13))
    [result] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLASSIFICATION)
    [call] = fake.embed_calls
    check_windows(db, tenant, embedder, loaded, result, call, "pages", [4, 5, 4], 6)


def test_400_s_of_audio_is_three_wav_windows_of_at_most_180_s(db, settings, tenant, fake):
    embedder = gemini(fake, max_in_flight=1)
    loaded = asset(settings, ms.flac_bytes(400))
    [result] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLASSIFICATION)
    call = Sent(fake)  # 3 x 4.3 MB of WAV: split into calls by request size
    assert {d[0]["mime_type"] for d in call.part_details} == {"audio/wav"}
    check_windows(db, tenant, embedder, loaded, result, call, "seconds", [400 / 3] * 3, 180)


def test_250_s_of_video_is_three_mp4_windows_of_at_most_120_s(db, settings, tenant, fake):
    embedder = gemini(fake)
    loaded = asset(settings, ms.mp4_bytes(250, fps=2))
    [result] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLASSIFICATION)
    [call] = fake.embed_calls
    assert {d[0]["mime_type"] for d in call.part_details} == {"video/mp4"}
    check_windows(db, tenant, embedder, loaded, result, call, "seconds", [250 / 3] * 3, 120)


def test_text_over_the_token_limit_is_windowed_and_every_window_is_prefixed(db, settings, tenant, fake):
    embedder = gemini(fake)
    text = " ".join(f"sentence number {i} about the harbour" for i in range(2000))
    loaded = asset(settings, text=text)
    [result] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLUSTERING)
    [call] = fake.embed_calls
    texts = [d[0]["text"] for d in call.part_details]
    assert len(texts) >= 2 and all(t.startswith("task: clustering | query: ") for t in texts)
    assert "".join(t.removeprefix("task: clustering | query: ") for t in texts) == text
    assert all(window_planning.estimate_tokens(t) <= 8192 for t in texts)
    stored = repository.embedding_windows(db, tenant, loaded.sha256, embedder.model_id, 768, result.task)
    assert [w["unit"] for w in stored] == ["chars"] * len(texts)


def test_a_cached_windowed_asset_costs_no_new_call_and_stores_no_new_windows(db, settings, tenant, fake):
    embedder = gemini(fake)
    loaded = asset(settings, ms.pdf_bytes(13))
    [first] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLASSIFICATION)
    asset_pks = repository.upsert_assets(db, tenant, [dict(asset_id="a", sha256=loaded.sha256, modality="pdf",
                                                           mime_type="application/pdf", size_bytes=1)])
    repository.store_embeddings(db, tenant, embedder.model_id, 768, [dict(
        asset_pk=asset_pks["a"], sha256=loaded.sha256, modality="pdf", task=first.task, vector=first.vector)])
    [again] = embed_with_cache(db, embedder, tenant, [loaded], Task.CLASSIFICATION)
    assert again.cached and len(fake.embed_calls) == 1
    np.testing.assert_allclose(again.vector, first.vector, atol=1e-6)
    assert len(repository.embedding_windows(db, tenant, loaded.sha256, embedder.model_id, 768, first.task)) == 3


def test_an_asset_over_the_window_cap_is_rejected_before_any_call(db, settings, tenant, fake):
    ctx = Context(settings=settings, embedder=gemini(fake, max_windows=2))
    data = base64.b64encode(ms.flac_bytes(400)).decode()
    [(_, event_id)] = accept_events(db, [(0, {"asset_id": "long", "tenant": tenant, "data_b64": data})]).new
    decision = process_upload(db, ctx, tenant, event_id)
    assert decision["action"] == "reject"
    assert decision["reason"].startswith("too_many_windows: 400.0 s of audio needs 3 windows, more than 2")
    assert fake.embed_calls == []


@pytest.mark.parametrize("mime, data, message", [
    ("image/gif", lambda: ms.image_bytes("GIF"), "Unsupported MIME type: image/gif"),
    ("audio/flac", lambda: ms.flac_bytes(1), "Unsupported MIME type: audio/flac"),
    ("audio/wav", lambda: ms.wav_bytes(181), "exceeds 180 s"),
    ("video/mp4", lambda: ms.mp4_bytes(121, fps=1), "exceeds 120 s"),
    ("application/pdf", lambda: ms.pdf_bytes(7), "at most 6 are supported"),
])
def test_the_fake_refuses_what_google_would_so_unwindowed_media_cannot_pass(fake, mime, data, message):
    from google import genai
    from google.genai import errors, types

    client = genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.base_url))
    content = types.Content(parts=[types.Part.from_bytes(data=data(), mime_type=mime)])
    with pytest.raises(errors.ClientError) as raised:
        client.models.embed_content(model="gemini-embedding-2", contents=[content])
    assert raised.value.code == 400 and message in raised.value.message
