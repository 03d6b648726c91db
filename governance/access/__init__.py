"""Who may call the HTTP API: API keys and their scopes, and the per-key rate limit."""
