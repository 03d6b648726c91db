"""Offline audio and video features, projected into `dims` by fixed-seed Gaussian matrices.

Audio: a log-mel spectrogram (16 kHz mono, 25 ms frames, 10 ms hop, 40 bands) summarised by
each band's mean and spread, the spread of its frame-to-frame change, and loudness, centroid and
zero-crossing statistics. Video: per-frame image features of up to `VIDEO_FRAMES` evenly
spaced frames, their mean and spread, plus motion (mean absolute change between consecutive
sampled frames). The frame features are the surface features of governance.embedding.backends.hashing
unless the embedder passes its own (the offline embedder passes EfficientNet-Lite0's, so its
video frames and images are seen by the same model). Audio features, and the hashing
embedder's video features, are surface features: similar sound or footage is close; meaning
is not modelled.

Changing a seed or a feature changes every vector of that modality: bump its version, and name
the new version in the embedders' model ids so old and new vectors are never compared. (v1 is
not in the model ids: adding these modalities left every text and image vector as it was.)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from governance.embedding.protocol import EmbeddingError, l2_normalise
from governance.ingest import media

AUDIO_VERSION = "aud-v1"
VIDEO_VERSION = "vid-v1"
AUDIO_SEED = 20261201
VIDEO_SEED = 20261202
VIDEO_FRAMES = 8
MEL_BANDS = 40
_FRAME, _HOP = 400, 160  # 25 ms and 10 ms at 16 kHz
# Offline features read the whole signal (their embedders state no time limit); decoding stops here.
_MAX_DECODE_S = 4 * 3600
# PIL frames -> one feature row per frame.
FrameFeatures = Callable[[list], np.ndarray]


def _mel_filterbank(rate: int, n_fft: int, bands: int) -> np.ndarray:
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    mels = np.linspace(hz_to_mel(50.0), hz_to_mel(rate / 2), bands + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.floor((n_fft + 1) * hz / rate).astype(int)
    bank = np.zeros((bands, n_fft // 2 + 1), dtype=np.float32)
    for i in range(bands):
        left, centre, right = bins[i], max(bins[i + 1], bins[i] + 1), max(bins[i + 2], bins[i + 1] + 2)
        bank[i, left:centre] = np.linspace(0, 1, centre - left, endpoint=False)
        bank[i, centre:right] = np.linspace(1, 0, right - centre, endpoint=False)
    return bank


_MEL = _mel_filterbank(media.AUDIO_RATE, 512, MEL_BANDS)


def audio_features(data: bytes) -> np.ndarray:
    try:
        samples = media.decode_audio(data, _MAX_DECODE_S).astype(np.float32) / 32768.0
    except media.MediaError as exc:
        raise EmbeddingError(str(exc)) from None
    if samples.size < _FRAME:
        samples = np.pad(samples, (0, _FRAME - samples.size))
    # Long recordings: statistics over at most 6,000 evenly spaced frames keep memory bounded.
    starts = np.arange(0, samples.size - _FRAME + 1, _HOP)
    if starts.size > 6_000:
        starts = starts[np.linspace(0, starts.size - 1, 6_000).astype(int)]
    frames = samples[starts[:, None] + np.arange(_FRAME)[None, :]] * np.hanning(_FRAME).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, n=512, axis=1)) ** 2
    logmel = np.log(power @ _MEL.T + 1e-6)
    delta = np.diff(logmel, axis=0) if len(logmel) > 1 else np.zeros_like(logmel)
    freqs = np.fft.rfftfreq(512, 1 / media.AUDIO_RATE)
    energy = power.sum(axis=1) + 1e-9
    centroid = (power @ freqs) / energy / (media.AUDIO_RATE / 2)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    zcr = (np.abs(np.diff(np.signbit(frames), axis=1)).mean(axis=1))
    summary = np.array([rms.mean(), rms.std(), centroid.mean(), centroid.std(), zcr.mean(), zcr.std(),
                        (rms > 0.01).mean()], dtype=np.float32)
    blocks = [logmel.mean(axis=0) - logmel.mean(), logmel.std(axis=0), np.abs(delta).mean(axis=0), summary]
    return _joined(blocks)


def surface_frame_features(images: list) -> np.ndarray:
    from governance.embedding.backends.image_features import pil_image_features

    return np.stack([pil_image_features(image) for image in images])


def video_features(data: bytes, frame_features: FrameFeatures = surface_frame_features,
                   seconds: float | None = None) -> np.ndarray:
    try:
        if seconds is None:
            # Content reaches an embedder after governance.ingest.assets checked its limits.
            seconds = media.probe_video(data, max_pixels=1 << 62, budget_mb=1 << 40).seconds
        images = media.sample_frames(data, VIDEO_FRAMES, seconds)
    except media.MediaError as exc:
        raise EmbeddingError(str(exc)) from None
    per_frame = frame_features(images)
    grays = [np.asarray(image.convert("L").resize((32, 32)), dtype=np.float32) / 255.0 for image in images]
    changes = [float(np.abs(b - a).mean()) for a, b in zip(grays, grays[1:])] or [0.0]
    motion = np.array([np.mean(changes), np.max(changes), np.std(changes)], dtype=np.float32)
    return _joined([per_frame.mean(axis=0), per_frame.std(axis=0), motion])


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([b / max(1e-9, float(np.linalg.norm(b))) for b in blocks]).astype(np.float32)


class MediaProjector:
    """Projects audio and video features into `dims`; matrices are drawn once per process."""

    def __init__(self, dims: int, frame_features: FrameFeatures = surface_frame_features):
        self.dims = dims
        self._frame_features = frame_features
        self._matrices: dict[str, np.ndarray] = {}

    def _project(self, kind: str, seed: int, features: np.ndarray) -> np.ndarray:
        matrix = self._matrices.get(kind)
        if matrix is None:
            rng = np.random.default_rng(seed)
            matrix = self._matrices[kind] = rng.standard_normal((features.size, self.dims)).astype(np.float32)
        return l2_normalise((features @ matrix)[None, :])[0]

    def audio(self, data: bytes) -> np.ndarray:
        return self._project("audio", AUDIO_SEED, audio_features(data))

    def video(self, data: bytes) -> np.ndarray:
        return self._project("video", VIDEO_SEED, video_features(data, self._frame_features))
