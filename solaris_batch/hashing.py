"""Stable 64-bit hashing of int64 ids, bit-identical to Spark's ``xxhash64(col)``.

Spark assigns plan shards with ``pmod(xxhash64(user_id), n)``; serving fleets and the FM's hashed
embedding tables use the same function from numpy, so every component agrees on where a user lives.
"""

from __future__ import annotations

import numpy as np

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
SPARK_SEED = 42


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def xxhash64(ids: np.ndarray, seed: int = SPARK_SEED) -> np.ndarray:
    """XXH64 of each int64 as Spark's ``XXH64.hashLong``; returns int64 (Spark's signed value)."""
    x = np.ascontiguousarray(ids, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = np.uint64(seed) + _P5 + np.uint64(8)
        h = h ^ (_rotl(x * _P2, 31) * _P1)
        h = _rotl(h, 27) * _P1 + _P4
        h ^= h >> np.uint64(33)
        h *= _P2
        h ^= h >> np.uint64(29)
        h *= _P3
        h ^= h >> np.uint64(32)
    return h.view(np.int64)


def shard_of(user_ids: np.ndarray, n: int) -> np.ndarray:
    """Shard of each user, ``pmod(xxhash64(user_id), n)`` as in the speculate job (int32)."""
    return np.mod(xxhash64(user_ids), n).astype(np.int32)


def bucket_of(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Hash ids into ``[0, n)`` for hashed embedding tables (int64)."""
    return np.mod(xxhash64(ids, seed), n)
