"""Routers by capability; each route is thin: parse, one transaction, one domain call, format."""
