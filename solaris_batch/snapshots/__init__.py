"""Embedding shards, snapshot manifests, validation gates and atomic publish."""
