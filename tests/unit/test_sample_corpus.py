"""The bundled demo corpus is what its generator writes, and its policy file is valid."""
import json
import subprocess
import sys
from pathlib import Path

from governance.moderation.policy_store import parse_policy

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "governance" / "sample"


def test_the_committed_uploads_are_what_the_seeded_generator_writes(tmp_path):
    check = subprocess.run([sys.executable, "scripts/make_sample_uploads.py", "--check"], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    edited = tmp_path / "uploads.jsonl"
    *kept, last_generated = (SAMPLE / "uploads.jsonl").read_text().splitlines()
    edited.write_text("\n".join([*kept, last_generated.replace("sports", "cooking")]) + "\n")
    stale = subprocess.run([sys.executable, "scripts/make_sample_uploads.py", "--check", "--out", str(edited)],
                           cwd=ROOT, capture_output=True, text=True)
    assert stale.returncode == 1 and "differs" in stale.stderr


def test_every_upload_is_distinct_and_says_what_it_is():
    rows = [json.loads(line) for line in (SAMPLE / "uploads.jsonl").read_text().splitlines()]
    texts = [r["text"] for r in rows if "text" in r]
    assert len(set(texts)) == len(texts)
    assert len({r["event_id"] for r in rows}) == len({r["asset_id"] for r in rows}) == len(rows)
    exemplar_labels = {json.loads(line)["label"] for line in (SAMPLE / "exemplars.jsonl").read_text().splitlines()}
    assert {r["metadata"]["expected"] for r in rows} == exemplar_labels | {"anomaly", "emerging", "reject"}


def test_the_demo_policy_blocks_spam_and_reviews_anomalies():
    policy = parse_policy((SAMPLE / "policy.toml").read_text()).policy
    assert {label for label, rule in policy.labels.items() if rule.action == "block"} == \
        {"crypto_spam", "phishing", "qr_spam"}
    assert policy.anomaly_action == "review" and policy.default.action == "allow"
