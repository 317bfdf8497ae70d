"""Coverage of a plan over a horizon (hand-computed)."""

from solaris_batch.speculate.metrics import coverage


def test_coverage_hand_computed():
    # planned pairs: (1,10) (1,11) (2,10); horizon rows: (1,10) x2, (2,20), (3,10)
    r = coverage([1, 1, 2], [10, 11, 10], [1, 1, 2, 3], [10, 10, 20, 10])
    assert r["horizon_rows"] == 4 and r["horizon_pairs"] == 3 and r["planned_pairs"] == 3
    assert r["request_hit_rate"] == 2 / 4
    assert r["pair_recall"] == 1 / 3
    assert r["precision"] == 1 / 3
