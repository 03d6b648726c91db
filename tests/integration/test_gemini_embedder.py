"""GeminiEmbedder through the real google-genai SDK, against a local fake of the Gemini API."""
from __future__ import annotations

import io
import logging
import socket
import traceback
import wave

import numpy as np
import pytest

from governance.embedding.backends.gemini.client import GeminiEmbedder
from governance.embedding.protocol import EmbeddingError, Task, task_prefixed
from governance.ingest.content import Content
from tests.fakes.fake_gemini import FakeGemini, Fault, decode_b64, expected_vector
from tests.media_samples import mp4_bytes

pytestmark = pytest.mark.timeout(60)
SDK_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_API_VERSION",
           "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE")


@pytest.fixture(autouse=True)
def clean_sdk_env(monkeypatch):
    for name in SDK_ENV:  # a developer's real key or endpoint must never leak into these tests
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeGemini(api_key="sk-test-SECRET-0123456789") as server:
        yield server


@pytest.fixture
def sleeps():
    return []


def embedder(fake, sleeps, **overrides) -> GeminiEmbedder:
    options = dict(api_key=fake.api_key, base_url=fake.base_url, timeout_s=5, sleep=sleeps.append,
                   rand=lambda: 1.0)
    return GeminiEmbedder(**{**options, **overrides})


def text(value: str) -> Content:
    return Content("text", "text/plain", text=value)


def png_bytes(colour=(200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes((np.sin(np.arange(800) / 3) * 8000).astype("<i2").tobytes())
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=72, height=72)
    writer.write(buffer)
    return buffer.getvalue()


def mixed_items() -> list[Content]:
    return [text("a cat on a mat"), Content("image", "image/png", data=png_bytes()),
            Content("image", "image/jpeg", data=jpeg_bytes()), Content("audio", "audio/wav", data=wav_bytes()),
            Content("pdf", "application/pdf", data=pdf_bytes()), Content("video", "video/mp4", data=mp4_bytes(2))]


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def test_mixed_batch_gives_one_vector_per_asset_in_order(fake, sleeps):
    items = mixed_items()
    vectors = embedder(fake, sleeps).embed(items, Task.CLASSIFICATION)

    assert vectors.shape == (len(items), 768) and vectors.dtype == np.float32
    [call] = fake.embed_calls
    assert [len(parts) for parts in call.parts] == [1] * len(items)  # never merged into one vector
    for item, parts, row in zip(items, call.parts, vectors):
        [part] = parts
        if item.modality == "text":
            assert part == {"text": task_prefixed(Task.CLASSIFICATION, item.text)}
        else:  # media travel as inline bytes with their own MIME type, without a prefix
            blob = part["inline_data"]
            assert blob["mime_type"] == item.mime_type and decode_b64(blob["data"]) == item.data
        np.testing.assert_allclose(row, unit(expected_vector(parts, 768)), rtol=1e-5, atol=1e-6)
    assert len({row.tobytes() for row in vectors}) == len(items)


@pytest.mark.parametrize("task", list(Task))
def test_every_text_part_carries_the_task_prefix_and_media_none(fake, sleeps, task):
    items = [text(f"post {i}") for i in range(5)] + [Content("image", "image/png", data=png_bytes())]
    embedder(fake, sleeps).embed(items, task)

    parts = fake.embed_calls[0].parts
    assert [p[0]["text"] for p in parts[:5]] == [f"task: {task.value} | query: post {i}" for i in range(5)]
    assert ["text" in part for part in parts[5]] == [False]


def test_prefix_media_adds_a_prefix_part_and_names_a_different_space(fake, sleeps):
    plain, prefixed = embedder(fake, sleeps), embedder(fake, sleeps, prefix_media=True)
    image = Content("image", "image/png", data=png_bytes())
    prefixed.embed([image], Task.CLUSTERING)

    [parts] = fake.embed_calls[0].parts
    assert parts[0] == {"text": "task: clustering | query: "} and "inline_data" in parts[1]
    assert plain.model_id == "gemini-embedding-2@768" and prefixed.model_id != plain.model_id
    assert (plain.prefix_policy, prefixed.prefix_policy) == ("text", "text+media")


def test_250_items_are_split_into_three_calls_of_at_most_100(fake, sleeps):
    sizes = []
    items = [text(f"item {i}") for i in range(250)]
    vectors = embedder(fake, sleeps, before_call=sizes.append).embed(items, Task.CLUSTERING)

    calls = fake.embed_calls
    assert sorted(len(c.body["requests"]) for c in calls) == [50, 100, 100]
    assert sorted(sizes) == [50, 100, 100]
    # Calls run in parallel; rows must still line up with their items.
    for i in (0, 99, 100, 199, 200, 249):
        expected = unit(expected_vector([{"text": task_prefixed(Task.CLUSTERING, f"item {i}")}], 768))
        np.testing.assert_allclose(vectors[i], expected, rtol=1e-5, atol=1e-6)


def test_large_media_split_calls_by_request_size(fake, sleeps):
    items = [Content("image", "image/png", data=png_bytes() + bytes(1_000_000) + bytes([i])) for i in range(3)]
    embedder(fake, sleeps, max_request_bytes=3_000_000).embed(items, Task.CLASSIFICATION)
    assert sorted(len(c.body["requests"]) for c in fake.embed_calls) == [1, 2]


def test_parallel_calls_are_bounded_by_max_in_flight(fake, sleeps):
    fake.gather_next(3)  # the first three are held until all three are in: three at once, however slow
    fake.latency_s = 0.3  # every call stays a while, so a fourth one in flight would be seen
    embedder(fake, sleeps, max_batch=1, max_in_flight=3).embed([text(str(i)) for i in range(8)], Task.CLUSTERING)
    assert len(fake.embed_calls) == 8 and fake.max_concurrency == 3


@pytest.mark.parametrize("dims", [128, 768, 3072])
def test_dims_are_requested_and_vectors_are_unit_norm(fake, sleeps, dims):
    model = embedder(fake, sleeps, dims=dims)
    vectors = model.embed(mixed_items(), Task.CLASSIFICATION)

    assert model.model_id == f"gemini-embedding-2@{dims}" and vectors.shape[1] == dims
    assert {r["outputDimensionality"] for r in fake.embed_calls[0].body["requests"]} == {dims}
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_api_version_selects_the_path(fake, sleeps, version):
    embedder(fake, sleeps, api_version=version).embed([text("x")], Task.CLUSTERING)
    assert fake.embed_calls[0].path == f"/{version}/models/gemini-embedding-2:batchEmbedContents"


def test_environment_base_url_version_and_key_are_honoured(fake, sleeps, monkeypatch):
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1beta")
    monkeypatch.setenv("GEMINI_API_KEY", fake.api_key)
    GeminiEmbedder(sleep=sleeps.append).embed([text("from env")], Task.CLUSTERING)

    [call] = fake.embed_calls
    assert call.path.startswith("/v1beta/models/") and call.key_ok


def test_key_travels_in_header_and_never_in_errors_or_logs(fake, sleeps, caplog):
    model = embedder(fake, sleeps, max_retries=1)
    model.embed([text("x")], Task.CLUSTERING)
    assert fake.embed_calls[0].key_ok and "x-goog-api-key" not in fake.embed_calls[0].headers

    # A proxy that echoes the key back must not put it into our exceptions or logs.
    fake.fail_next(2, status=503, message=f"upstream rejected key {fake.api_key}")
    with caplog.at_level(logging.DEBUG, logger="governance"), pytest.raises(EmbeddingError) as raised:
        model.embed([text("y")], Task.CLUSTERING)
    rendered = "".join(traceback.format_exception(raised.value))
    assert "upstream rejected key ***" in str(raised.value)
    assert fake.api_key not in rendered and fake.api_key not in caplog.text and "retry 1/1" in caplog.text


def test_wrong_key_is_a_permanent_error_without_the_key(fake, sleeps):
    with pytest.raises(EmbeddingError) as raised:
        embedder(fake, sleeps, api_key="sk-wrong-KEY-987").embed([text("x")], Task.CLUSTERING)
    assert not raised.value.transient and "gemini_http_400" in str(raised.value)
    assert "sk-wrong-KEY-987" not in str(raised.value) and sleeps == []
    assert [c.key_ok for c in fake.embed_calls] == [False]


def test_burst_of_429_and_503_is_retried_with_growing_full_jitter_backoff(fake, sleeps):
    fake.fail_next(3, status=429)
    fake.fail_next(3, status=503)
    model = embedder(fake, sleeps, backoff_cap_s=3)
    vectors = model.embed([text("eventually")], Task.CLASSIFICATION)

    assert vectors.shape == (1, 768) and len(fake.embed_calls) == 7
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]  # rand()=1 shows the jitter ceiling
    assert (model.usage.calls, model.usage.retries, model.usage.items) == (7, 6, 1)


def test_full_jitter_draws_below_the_ceiling(fake, sleeps):
    fake.fail_next(2, status=503)
    embedder(fake, sleeps, rand=lambda: 0.25).embed([text("x")], Task.CLUSTERING)
    assert sleeps == [0.125, 0.25]


def test_retry_info_hint_raises_the_backoff(fake, sleeps):
    fake.script(Fault(status=429, retry_delay="7s"))
    embedder(fake, sleeps).embed([text("x")], Task.CLUSTERING)
    assert sleeps == [7.0]


def test_transient_errors_give_up_after_max_retries(fake, sleeps):
    fake.fail_next(10, status=503)
    with pytest.raises(EmbeddingError) as raised:
        embedder(fake, sleeps, max_retries=2).embed([text("x")], Task.CLUSTERING)
    assert raised.value.transient and "gave up after 2 retries" in str(raised.value)
    assert len(fake.embed_calls) == 3


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent_and_not_retried(fake, sleeps, status):
    fake.fail_next(1, status=status)
    with pytest.raises(EmbeddingError) as raised:
        embedder(fake, sleeps).embed([text("x")], Task.CLUSTERING)
    assert not raised.value.transient and f"gemini_http_{status}" in str(raised.value)
    assert len(fake.embed_calls) == 1 and sleeps == []


def test_a_hang_hits_the_client_timeout_as_a_transient_error(fake, sleeps):
    fake.hang_next(seconds=120)  # longer than the test may run: only the client's timeout ends the call
    with pytest.raises(EmbeddingError) as raised:
        embedder(fake, sleeps, timeout_s=0.5, max_retries=0).embed([text("x")], Task.CLUSTERING)
    assert raised.value.transient and "gemini_timeout" in str(raised.value)


def test_a_hang_then_recovery_succeeds_on_retry(fake, sleeps):
    fake.hang_next(seconds=20)
    vectors = embedder(fake, sleeps, timeout_s=0.5).embed([text("x")], Task.CLUSTERING)
    assert vectors.shape == (1, 768) and len(fake.embed_calls) == 2 and len(sleeps) == 1


def test_connection_refused_is_transient(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = GeminiEmbedder(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=1, sleep=sleeps.append)
    with pytest.raises(EmbeddingError) as raised:
        model.embed([text("x")], Task.CLUSTERING)
    assert raised.value.transient and "gemini_connection" in str(raised.value) and len(sleeps) == 1


@pytest.mark.parametrize("kind", ["nan", "inf", "wrong_dims", "missing"])
def test_invalid_vectors_are_permanent_errors(fake, sleeps, kind):
    fake.corrupt_next(kind)
    with pytest.raises(EmbeddingError) as raised:
        embedder(fake, sleeps).embed([text("a"), text("b")], Task.CLUSTERING)
    assert not raised.value.transient and str(raised.value).startswith("invalid_embedding:")
    assert len(fake.embed_calls) == 1


def test_embedding_001_uses_task_type_and_is_text_only(fake, sleeps):
    model = embedder(fake, sleeps, model="gemini-embedding-001")
    model.embed([text("plain")], Task.CLASSIFICATION)
    [request] = fake.embed_calls[0].body["requests"]
    assert request["taskType"] == "CLASSIFICATION" and request["content"]["parts"] == [{"text": "plain"}]

    with pytest.raises(EmbeddingError, match="^unsupported_modality:"):
        model.embed([text("ok"), Content("image", "image/png", data=png_bytes())], Task.CLUSTERING)
    assert len(fake.embed_calls) == 1  # rejected before any call


def test_unsupported_media_types_are_rejected_before_any_call(fake, sleeps):
    with pytest.raises(EmbeddingError, match="^unsupported_mime:.*image/gif") as raised:
        embedder(fake, sleeps).embed([text("ok"), Content("image", "image/gif", data=b"GIF89a")], Task.CLUSTERING)
    assert not raised.value.transient and fake.embed_calls == []


def test_usage_counts_tokens_from_usage_metadata(fake, sleeps):
    model = embedder(fake, sleeps)
    model.embed([text("abcdefgh"), Content("image", "image/png", data=png_bytes())], Task.CLUSTERING)
    prefixed = len(task_prefixed(Task.CLUSTERING, "abcdefgh"))
    assert model.usage.prompt_tokens == model.usage.total_tokens == prefixed // 4 + 1 + 258


def test_no_items_make_no_calls(fake, sleeps):
    assert embedder(fake, sleeps).embed([], Task.CLUSTERING).shape == (0, 768)
    assert fake.embed_calls == []


def test_fake_rejects_more_than_100_requests_like_google(fake):
    from google import genai
    from google.genai import errors, types

    client = genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.base_url))
    contents = [types.Content(parts=[types.Part(text=str(i))]) for i in range(101)]
    with pytest.raises(errors.ClientError) as raised:
        client.models.embed_content(model="gemini-embedding-2", contents=contents)
    assert raised.value.code == 400 and "at most 100" in raised.value.message
