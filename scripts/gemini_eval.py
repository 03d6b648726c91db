"""The dev-corpus evaluation through the real google-genai SDK, against the wire-level fake.

The real Gemini API is out of reach here, so this starts tests/fakes/fake_gemini.py on loopback,
points the documented environment (GOVERNANCE_EMBEDDER=gemini, GEMINI_API_KEY,
GOOGLE_GEMINI_BASE_URL) at it and runs the evaluation harness on it, with a fresh embedded data
folder. Afterwards it checks what the fake received: at most 100 requests per call, the task
prefix on every text part, and that the usable answers carried one vector per embedded asset.

    .venv/bin/python scripts/gemini_eval.py --corpus ../shared/data/dev-corpus

The fake's vectors are a hash of the content, so the label and anomaly figures mean nothing
here; what counts is that every event is decided or rejected, none lost or doubled.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.fake_gemini import FakeGemini  # noqa: E402 - after the path is set

PREFIX = re.compile(r"^task: (classification|clustering) \| query: ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "run_eval.py")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "governance")
    with FakeGemini(api_key="eval-key") as fake, tempfile.TemporaryDirectory(prefix="gemini-eval-") as data:
        env = dict(os.environ, GOVERNANCE_EMBEDDER="gemini", GEMINI_API_KEY="eval-key",
                   GOOGLE_GEMINI_BASE_URL=fake.base_url, GOVERNANCE_DATA_DIR=data)
        for name in ("DATABASE_URL", "CELERY_BROKER_URL", "GOOGLE_API_KEY"):
            env.pop(name, None)
        try:
            done = subprocess.run([sys.executable, str(args.eval), "--corpus", str(args.corpus), "--cli", cli],
                                  env=env, capture_output=True, text=True, timeout=3600)
        finally:
            subprocess.run([cli, "embedded", "stop"], env=env, capture_output=True, timeout=120)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        result = json.loads(done.stdout)
        calls = fake.embed_calls
        sizes = [len(call.parts) for call in calls]
        text_parts = [p["text"] for call in calls for request in call.parts for p in request if "text" in p]
        media_parts = [p for call in calls for request in call.parts for p in request if "text" not in p]
    checks = {
        "calls": len(calls),
        "max_requests_per_call": max(sizes, default=0),
        "text_parts": len(text_parts),
        "text_parts_without_prefix": sum(not PREFIX.match(t) for t in text_parts),
        "media_parts": len(media_parts),
        "lost": result["lost"], "doubled": result["doubled"], "decided": result["decided"],
        "bad_rejected": result["bad_rejected"], "events_per_s": result["events_per_s"],
    }
    print(json.dumps(checks, indent=2))
    ok = (checks["max_requests_per_call"] <= 100 and checks["text_parts_without_prefix"] == 0
          and checks["lost"] == 0 and checks["doubled"] == 0 and checks["media_parts"] > 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
