"""The online lookup module that serving processes embed."""

from solaris_batch.serving.store import HIT, MISS, STALE, EmbeddingStore, LookupResult

__all__ = ["EmbeddingStore", "LookupResult", "HIT", "MISS", "STALE"]
