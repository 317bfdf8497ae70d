import numpy as np

from solaris_batch.hashing import shard_of, xxhash64
from solaris_batch.speculate.metrics import coverage


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


def test_coverage_hand_computed():
    # planned pairs: (1,10) (1,11) (2,10); horizon rows: (1,10) x2, (2,20), (3,10)
    r = coverage([1, 1, 2], [10, 11, 10], [1, 1, 2, 3], [10, 10, 20, 10])
    assert r["horizon_rows"] == 4 and r["horizon_pairs"] == 3 and r["planned_pairs"] == 3
    assert r["request_hit_rate"] == 2 / 4
    assert r["pair_recall"] == 1 / 3
    assert r["precision"] == 1 / 3
