"""The online lookup module that serving processes embed."""

from solaris_batch.serving.store import EmbeddingStore, LookupResult

__all__ = ["EmbeddingStore", "LookupResult"]
