"""The Gemini backend: client, Batch API, shared quota, breaker, retry budget."""
