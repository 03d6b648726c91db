"""The full pipeline with GOVERNANCE_EMBEDDER=gemini: a real worker, the real SDK, a wire-level fake."""
import io
import uuid

import pytest
from PIL import Image

from tests.e2e.conftest import cli, wait_for_decisions, write_jsonl
from tests.fakes.fake_gemini import FakeGemini

pytestmark = pytest.mark.e2e


@pytest.fixture
def gemini_env(e2e_env):
    with FakeGemini(api_key="e2e-secret-key") as fake:
        env = dict(e2e_env, GOVERNANCE_EMBEDDER="gemini", GEMINI_API_KEY="e2e-secret-key",
                   GOOGLE_GEMINI_BASE_URL=fake.base_url, GOVERNANCE_GEMINI_MAX_RETRIES="1")
        yield env, fake


def test_every_asset_goes_through_the_sdk_with_its_prefix(gemini_env, worker, tmp_path):
    env, fake = gemini_env
    tenant = f"gem-{uuid.uuid4().hex[:8]}"
    image = io.BytesIO()
    Image.new("RGB", (24, 24), (0, 90, 200)).save(image, format="PNG")
    roots = env["FILE_ROOT"]
    with open(f"{roots}/blue.png", "wb") as handle:
        handle.write(image.getvalue())
    exemplars = [{"asset_id": f"ex{i}", "tenant": tenant, "text": f"exemplar sentence {i}", "label": "l"}
                 for i in range(150)]
    assert cli(env, "exemplars", "import", str(write_jsonl(tmp_path / "ex.jsonl", exemplars)),
               "--batch-size", "150").stdout.strip() == "150"
    calls = fake.embed_calls
    assert sorted(len(c.parts) for c in calls) == [50, 100]  # split at 100 requests per call

    fake.fail_next(3, status=429)  # a burst of quota errors delays the work, loses nothing
    events = [{"asset_id": "t1", "tenant": tenant, "text": "hello there"},
              {"asset_id": "img", "tenant": tenant, "uri": f"file://{roots}/blue.png"}]
    cli(env, "publish", str(write_jsonl(tmp_path / "s.jsonl", events)))
    w = worker(env)
    found = {d["asset_id"]: d for d in wait_for_decisions(env, tenant, 2, timeout_s=180)}
    assert set(found) == {"t1", "img"}
    for d in found.values():
        assert d["embedding_model"] == "gemini-embedding-2@768" and d["action"] != "reject", d["reason"]

    upload_parts = [parts for c in fake.embed_calls[2:] for parts in c.parts]
    texts = [p["text"] for parts in upload_parts for p in parts if "text" in p]
    assert {t.split(" | ")[0] for t in texts} == {"task: classification", "task: clustering"}
    assert "task: classification | query: hello there" in texts
    media = [parts for parts in upload_parts if any("inline_data" in p or "inlineData" in p for p in parts)]
    assert media and all(len(parts) == 1 for parts in media)  # media carry no prefix part
    assert "e2e-secret-key" not in w.log()
