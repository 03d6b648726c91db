"""Clusters of recent uploads: analysis, stable identities, rendering, stored reports."""
