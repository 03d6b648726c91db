"""Vectors from content: the Embedder protocol, backends, windows, cache, models, usage."""
