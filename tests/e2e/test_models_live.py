"""Usage and model switching through the CLI, with a live worker that is never restarted."""
import json
import uuid

import pytest

from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl

pytestmark = pytest.mark.e2e
OFFLINE = "offline:minilm-l6-v2-int8+effnet-lite0-v1@384"  # the default text backend, GOVERNANCE_TEXT_BACKEND=onnx
BANK = [("Simmer the onions in butter until golden.", "cooking"), ("Knead the dough and let it rise.", "cooking"),
        ("The central bank raised interest rates.", "finance"), ("Bond yields fell after the auction.", "finance")]


def usage_json(env, tenant):
    return {(r["model"], r["dims"]): r for r in json.loads(cli(env, "usage", "--tenant", tenant, "--json").stdout)}


def test_usage_then_reembed_switches_a_live_worker_to_the_new_model(e2e_env, worker, tmp_path):
    tenant = f"mdl-{uuid.uuid4().hex[:8]}"
    bank = [{"asset_id": f"ex{i}", "tenant": tenant, "text": t, "label": label} for i, (t, label) in enumerate(BANK)]
    cli(e2e_env, "exemplars", "import", str(write_jsonl(tmp_path / "bank.jsonl", bank)))
    uploads = [{"asset_id": "u1", "tenant": tenant, "text": "Fry the garlic in butter."},
               {"asset_id": "u2", "tenant": tenant, "text": "Fry the garlic in butter."}]  # a cache hit
    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "up.jsonl", uploads)))
    w = worker(e2e_env)
    before = wait_for_decisions(e2e_env, tenant, 2)
    assert {d["embedding_model"] for d in before} == {"hashing-v1@768"}

    row = usage_json(e2e_env, tenant)[("hashing-v1@768", 768)]
    assert (row["items"], row["cached_items"], row["calls"], row["estimated"]) == (5, 1, 2, True)
    tokens = row["prompt_tokens"]
    assert tokens > 0 and row["cost_usd"] == 0.0  # offline models cost nothing
    priced = dict(e2e_env, GOVERNANCE_EMBEDDING_PRICES="hashing-v1=1000")
    table = cli(priced, "usage", "--tenant", tenant).stdout.splitlines()
    assert table[1].split() == [tenant, "hashing-v1@768", "768", "online", "5", "1", "2", f"{tokens}~",
                                f"{tokens / 1000:.6f}"]
    assert cli(e2e_env, "usage", "--tenant", tenant, "--since", "2999-01-01", "--json").stdout.strip() == "[]"

    partial = cli(e2e_env, "reembed", "--model", "offline", "--tenant", tenant, "--limit", "3", "--batch-size", "2")
    assert "re-embedding [" in partial.stderr and "3/3" in partial.stderr
    first = json.loads(partial.stdout)
    assert (first["model"], first["embedded"], first["switched"]) == (OFFLINE, 3, False)
    assert first["remaining"] == first["assets"] - 3

    resumed = json.loads(cli(e2e_env, "reembed", "--model", "offline", "--tenant", tenant).stdout)
    assert (resumed["already_done"], resumed["embedded"], resumed["remaining"], resumed["switched"]) == (
        3, first["assets"] - 3, 0, True)
    assert usage_json(e2e_env, tenant)[(OFFLINE, 384)]["items"] == first["assets"] - 1

    cli(e2e_env, "publish", str(write_jsonl(tmp_path / "next.jsonl", [
        {"asset_id": "u3", "tenant": tenant, "text": "Simmer onions slowly in butter."}])))
    found = {d["asset_id"]: d for d in wait_for_decisions(e2e_env, tenant, 3, timeout_s=180)}
    assert found["u3"]["embedding_model"] == OFFLINE, found["u3"]
    assert found["u3"]["neighbors"] and found["u3"]["neighbors"][0]["label"] == "cooking"
    assert w.alive()


def test_reembed_through_the_batch_api_then_a_live_worker_decides_with_gemini(e2e_env, worker, tmp_path):
    from tests.fakes.fake_gemini import FakeGemini

    tenant = f"mdb-{uuid.uuid4().hex[:8]}"
    with FakeGemini(api_key="e2e-batch-key", batch_polls=3) as fake:
        # The process default stays hashing; only this tenant moves to Gemini.
        env = dict(e2e_env, GEMINI_API_KEY=fake.api_key, GOOGLE_GEMINI_BASE_URL=fake.base_url)
        bank = [{"asset_id": f"ex{i}", "tenant": tenant, "text": t, "label": label}
                for i, (t, label) in enumerate(BANK)]
        cli(env, "exemplars", "import", str(write_jsonl(tmp_path / "bank.jsonl", bank)))
        w = worker(env)
        done = cli(env, "reembed", "--model", "gemini-embedding-2", "--dims", "768", "--tenant", tenant,
                   "--batch-api", "--poll-s", "0.05")
        summary = json.loads(done.stdout)
        assert (summary["model"], summary["embedded"], summary["switched"], summary["batch_api"]) == (
            "gemini-embedding-2@768", 4, True, True)
        assert len(fake.batch_jobs) == 2 and fake.embed_calls == []  # classification and clustering jobs
        batch = usage_json(env, tenant)[("gemini-embedding-2@768", 768)]
        assert batch["mode"] == "batch" and batch["cost_usd"] == round(batch["prompt_tokens"] / 1e6 * 0.10, 6)

        cli(env, "publish", str(write_jsonl(tmp_path / "up.jsonl", [
            {"asset_id": "u1", "tenant": tenant, "text": BANK[2][0]}])))
        [decision] = wait_for_decisions(env, tenant, 1, timeout_s=120)
        assert decision["embedding_model"] == "gemini-embedding-2@768", decision
        assert decision["neighbors"][0]["asset_id"] == "ex2" and decision["neighbors"][0]["distance"] < 1e-5
        assert fake.embed_calls == []  # the exemplar's bytes again: the batch vectors serve it, no new spend
        assert fake.api_key not in w.log()
