"""The price table and the usage table's text (pure)."""
from governance.embedding.backends.hashing import HashingEmbedder
from governance.embedding.protocol import Task
from governance.embedding.usage import UsageLine, embed_measured, format_report, price_per_million
from governance.ingest.content import Content


def line(model, tokens, cost, estimated=False):
    return UsageLine("t", model, 768, "online", 3, 1, 2, tokens, estimated, cost)


def test_prices_by_base_model_with_overrides_and_free_offline_models():
    assert price_per_million("gemini-embedding-2@768") == 0.20
    assert price_per_million("gemini-embedding-2@3072+media-prefix") == 0.20
    assert price_per_million("gemini-embedding-001@768") == 0.15
    assert price_per_million("gemini-embedding-001@768", {"gemini-embedding-001": 0.3}) == 0.3
    assert price_per_million("hashing-v1@768") == 0.0
    assert price_per_million("offline:minilm-l6-v2+img-v1@384") == 0.0
    assert price_per_million("gemini-embedding-9@768") is None  # unknown paid model: no guess


def test_report_marks_estimates_and_totals_known_costs():
    text = format_report([line("gemini-embedding-2@768", 5000, 0.001), line("hashing-v1", 40, 0.0, True),
                          line("gemini-embedding-9@768", 10, None)])
    rows = text.splitlines()
    assert rows[0].split() == ["tenant", "model", "dims", "mode", "items", "cached", "calls", "tokens", "cost_usd"]
    assert "40~" in rows[2] and rows[3].split()[-1] == "?"
    assert rows[4].split()[:6] == ["total", "9", "3", "6", "5050", "0.001000"]
    assert "unpriced" in rows[4]


def test_offline_embedders_are_estimated_per_call():
    items = [Content("text", "text/plain", text="x" * 41), Content("text", "text/plain", text="abcd")]
    vectors, spent = embed_measured(HashingEmbedder(128), items, Task.CLASSIFICATION)
    assert vectors.shape == (2, 128)
    # One token per 3 UTF-8 bytes, rounded up (windowing.estimate_tokens): 14 + 2.
    assert (spent.calls, spent.prompt_tokens, spent.estimated) == (1, 14 + 2, True)
