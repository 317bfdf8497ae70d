"""Spark-compatible xxhash64 and the shard function built on it."""

import numpy as np

from solaris_batch.hashing import shard_of, xxhash64


def test_xxhash64_matches_values_printed_by_spark():
    # Spark 4.3: SELECT x, xxhash64(CAST(x AS BIGINT)), pmod(xxhash64(CAST(x AS BIGINT)), 7)
    # (re-checked live against the running Spark in tests/integration/test_speculate_spark.py).
    ids = np.array([0, 1, 42, -5, 1099511627775], dtype=np.int64)
    assert xxhash64(ids).tolist() == [-5252525462095825812, -7001672635703045582, -6876166290308861218,
                                      -5259934538394028452, -430038556417902972]
    assert shard_of(ids, 7).tolist() == [4, 5, 6, 6, 6]


def test_shard_of_is_stable_and_in_range():
    ids = np.arange(-50, 10_000, dtype=np.int64)
    s = shard_of(ids, 7)
    assert s.min() >= 0 and s.max() < 7
    assert np.array_equal(s, shard_of(ids.copy(), 7))
    counts = np.bincount(s, minlength=7)
    assert counts.min() > 0.8 * counts.mean()  # roughly balanced
