"""Offline audio and video features: deterministic unit vectors where alike sounds and footage are close."""
import numpy as np
import pytest

from governance.embedding.backends.hashing import HashingEmbedder
from governance.embedding.protocol import EmbeddingError, Task
from governance.ingest.content import Content
from tests import media_samples as ms


@pytest.fixture(scope="module")
def embedder():
    return HashingEmbedder(256)


def embed(embedder, modality, mime, *payloads):
    return embedder.embed([Content(modality, mime, data=p) for p in payloads], Task.CLASSIFICATION)


def test_audio_vectors_are_deterministic_and_closer_for_alike_sounds(embedder):
    low, low_longer, high = ms.wav_bytes(2, pitch=300), ms.wav_bytes(3, pitch=300), ms.wav_bytes(2, pitch=2500)
    vectors = embed(embedder, "audio", "audio/wav", low, low_longer, high)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.05
    np.testing.assert_array_equal(vectors, embed(HashingEmbedder(256), "audio", "audio/wav", low, low_longer, high))


def test_video_vectors_are_closer_for_alike_footage(embedder):
    red, red_longer = ms.mp4_bytes(3, colour=(255, 0, 0)), ms.mp4_bytes(4, colour=(255, 0, 0))
    blue = ms.mp4_bytes(3, colour=(0, 0, 255))
    vectors = embed(embedder, "video", "video/mp4", red, red_longer, blue)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.05


def test_audio_and_video_do_not_collide_with_images(embedder):
    [audio] = embed(embedder, "audio", "audio/wav", ms.wav_bytes(2))
    [video] = embed(embedder, "video", "video/mp4", ms.mp4_bytes(2))
    [image] = embed(embedder, "image", "image/png", ms.image_bytes("PNG"))
    assert abs(float(audio @ video)) < 0.5 and abs(float(video @ image)) < 0.5


@pytest.mark.parametrize("modality, mime, reason", [("audio", "audio/wav", "corrupt_audio"),
                                                    ("video", "video/mp4", "corrupt_video")])
def test_undecodable_media_is_a_permanent_error_with_its_reason(embedder, modality, mime, reason):
    with pytest.raises(EmbeddingError, match=f"^{reason}:") as raised:
        embed(embedder, modality, mime, b"\x00\x00\x00\x18ftypmp42" + b"junk" * 50)
    assert not raised.value.transient
