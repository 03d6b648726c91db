"""A sentence-transformers BERT checkpoint (all-MiniLM-L6-v2 by default) run in pure numpy.

The checkpoint is a local directory: config.json, model.safetensors, tokenizer.json,
1_Pooling/config.json and sentence_bert_config.json. Nothing is downloaded and torch is never
imported; the BERT encoder forward pass is written out below with float32 matmuls. Tokens,
long-text windows and pooling are governance.embedding.backends.bert_text's, shared with the ONNX build.

model_id: "minilm-l6-v2" when model.safetensors is the published all-MiniLM-L6-v2 file (by
sha256); any other checkpoint gets "st-<type>-l<layers>-h<hidden>-<sha256 prefix>".
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from scipy.special import erf  # scipy comes with scikit-learn; exact erf keeps GELU as in BERT

from governance.embedding.backends.bert_text import WindowedBertText, default_checkpoint_path
from governance.embedding.backends.blas import blas_limit

# sha256 of model.safetensors -> readable id. The MiniLM digest is the Hugging Face LFS object id
# of sentence-transformers/all-MiniLM-L6-v2; any other checkpoint gets an id carrying its own
# digest, so two checkpoints never share a model_id (and so never share vectors).
KNOWN_CHECKPOINTS = {
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db": "minilm-l6-v2",
}
__all__ = ["KNOWN_CHECKPOINTS", "SentenceTransformerEmbedder", "default_checkpoint_path"]


class SentenceTransformerEmbedder(WindowedBertText):
    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 32, threads: int | None = None):
        """`threads` caps BLAS threads during the forward pass (None: leave BLAS as configured).
        On a busy 2-core box, or with several worker processes, 1 is much faster than 2: OpenBLAS
        threads spin-wait and small matmuls suffer badly from oversubscription."""
        from safetensors.numpy import load

        path = Path(model_path) if model_path is not None else default_checkpoint_path()
        super().__init__(path, batch_size=batch_size)
        self.threads = threads
        config = self.config
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {config['hidden_act']!r} in {path}")

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

    # ---- forward pass ---------------------------------------------------------------------

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._pool(self._forward(ids, mask), mask)

    def _thread_limit(self):
        return blas_limit(self.threads)

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
