"""Backtest pooling and lift (``solaris_batch.speculate.report``)."""

import pytest

from solaris_batch.speculate.report import lift, pool_results


def test_pool_results_sums_before_ratios():
    per_at = [
        {"horizon_rows": 10, "horizon_pairs": 5, "results": [
            {"strategy": "learned", "budget": "1x", "budget_pairs": 4, "hit_rows": 6, "matched_pairs": 3,
             "planned_pairs": 4},
            {"strategy": "repeat", "budget": "1x", "budget_pairs": 4, "hit_rows": 5, "matched_pairs": 2,
             "planned_pairs": 4}]},
        {"horizon_rows": 30, "horizon_pairs": 15, "results": [
            {"strategy": "learned", "budget": "1x", "budget_pairs": 8, "hit_rows": 12, "matched_pairs": 5,
             "planned_pairs": 8},
            {"strategy": "repeat", "budget": "1x", "budget_pairs": 8, "hit_rows": 10, "matched_pairs": 4,
             "planned_pairs": 6}]},
    ]
    rows = {r["strategy"]: r for r in pool_results(per_at)}
    assert rows["learned"]["request_hit_rate"] == 18 / 40 and rows["learned"]["pair_recall"] == 8 / 20
    assert rows["learned"]["precision"] == 8 / 12 and rows["learned"]["budget_pairs"] == 12
    assert rows["repeat"]["precision"] == 6 / 10
    assert lift({"results": pool_results(per_at)}, "1x") == pytest.approx((18 / 40) / (15 / 40) - 1)
