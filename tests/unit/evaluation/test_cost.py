"""Coverage and cost of each budget over the horizon, and the cost block (hand-computed)."""

from datetime import UTC, datetime, timedelta

import numpy as np

from solaris_batch.evaluation.cost import (
    BudgetCost,
    Cost,
    Horizon,
    auc_gain_per_million_pairs,
    budget_costs,
    knee,
    pool_costs,
)
from solaris_batch.evaluation.serve import Served
from solaris_batch.evaluation.split import Rows
from solaris_batch.timeutil import Window

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_budget_costs_hand_computed():
    # 7 scored rows from 2 requests; plan ranks (-1: unplanned), rank 1 asked twice, rank 4 never
    rank = np.array([0, 1, 1, 3, -1, 5, 2])
    c = budget_costs(rank, {"0": 0, "a": 2, "b": 4, "c": 8}, n_requests=2, batch_pairs_per_s=1000.0)
    assert c == [
        # no pair kept: no hit, nothing wasted
        BudgetCost("0", 0, 0.0, None, 0, 0.0, 0.0, 0, 7, 2, 0.0),
        # ranks 0, 1 kept: rows 0, 1, 2 hit (3/7); both pairs asked for; 2 pairs / 1000 per s / 2 requests
        BudgetCost("a", 2, 0.428571, 0.6667, 0, 0.0, 1.0, 3, 7, 2, 0.002),
        # ranks 0..3: rows 0, 1, 2, 3, 6 hit (5/7)
        BudgetCost("b", 4, 0.714286, 0.8, 0, 0.0, 2.0, 5, 7, 2, 0.004),
        # ranks 0..7: every planned row hits (6/7); ranks 4, 6, 7 asked by none: 3 of 8 wasted
        BudgetCost("c", 8, 0.857143, 1.3333, 3, 0.375, 4.0, 6, 7, 2, 0.008),
    ]


def test_pooled_costs_sum_counts_then_take_ratios():
    a = budget_costs(np.array([0, 1, -1]), {"1x": 1, "2x": 2}, n_requests=1, batch_pairs_per_s=100.0)
    b = budget_costs(np.array([0, 2, 2, -1, -1]), {"1x": 2, "2x": 4}, n_requests=3, batch_pairs_per_s=100.0)
    one, two = pool_costs([a, b])
    # 1x: 1 + 2 pairs; hits 1 (of 3 rows) + 1 (of 5; rank 1 never asked: wasted) -> 2/8; 0.03 s over 4 requests
    assert one == BudgetCost("1x", 3, 0.25, 1.5, 1, 0.333333, 7.5, 2, 8, 4, 0.03)
    # 2x: 2 + 4 pairs; hits 2 + 3 -> 5/8; wasted 0 + 2 (ranks 1, 3)
    assert two == BudgetCost("2x", 6, 0.625, 1.2, 2, 0.333333, 15.0, 5, 8, 4, 0.06)


def test_knee_is_where_the_marginal_gain_per_pair_halves():
    # marginal gains per pair: 0.02/100, 0.015/100 (not halved), 0.005/200 (halved)
    assert knee([100, 200, 400], [0.72, 0.735, 0.74], 0.70) == 2
    assert knee([100, 200], [0.72, 0.73], 0.70) == 1  # exactly half
    assert knee([100, 200], [0.72, 0.74], 0.70) is None  # never halves
    assert knee([100, 200], [0.69, 0.74], 0.70) is None  # the first budget gains nothing
    assert knee([100], [None], 0.70) is None
    assert auc_gain_per_million_pairs(0.72, 0.70, 100) == 200.0
    assert auc_gain_per_million_pairs(0.72, None, 100) is None and auc_gain_per_million_pairs(0.72, 0.7, 0) is None


def _served(rank, budget_pairs):
    n = len(rank)
    z = np.zeros((n, 1), np.float32)
    return Served(np.asarray(rank), np.zeros(n, np.int64), z, np.zeros(n, np.float32), z, np.zeros(n, bool),
                  {b: np.asarray(v) for b, v in budget_pairs.items()}, (), 1234.56, "cpu")


def test_horizon_takes_the_test_windows_rows():
    us = 3_600_000_000
    rows = Rows(np.array([1, 1, 2, 2, 3]), np.array([0, 1, 2, 3, 4]) * us // 2, np.array([5, 5, 5, 6, 6]),
                np.array([10, 10, 11, 11, 10]), np.ones(5, bool), np.zeros(5, bool), np.array(["f"] * 5, dtype=object))
    served = _served([0, 2, 1, -1, 4], {"1x": [9, 9, 3, 3, 3], "2x": [9, 9, 6, 6, 6]})
    h = Horizon.of(rows, served, Window(EPOCH + timedelta(hours=1), EPOCH + timedelta(hours=2)))
    # rows at 1h and 1.5h; the budgets' pairs are those of the test window's plan
    assert h.rank.tolist() == [1, -1] and h.budget_pairs == {"1x": 3, "2x": 6}
    assert h.requests.tolist() == [2] and h.pairs == 2  # (5, 11) and (6, 11)


def test_cost_block_from_online_timings():
    rows = Rows(np.array([1, 1, 2]), np.zeros(3, np.int64), np.array([5, 5, 6]), np.array([10, 11, 10]),
                np.ones(3, bool), np.zeros(3, bool), np.array(["f"] * 3, dtype=object))
    h = Horizon(rows, np.array([0, -1, 1]), {"2x": 2})
    head = BudgetCost("2x", 2, 0.666667, 1.0, 0, 0.0, 1.0, 2, 3, 2, 0.002)
    c = Cost.of(_served([0], {"2x": [2]}), h, np.array([0.001, 0.002, 0.003, 0.004]), head)
    # p50 of 1..4 ms is 2.5 ms; p99 interpolates 1 + 0.99 * 3 = 3.97 ms; mean 2.5 ms -> 2.5 s per 1k requests
    assert c == Cost("cpu", 1234.6, 2, 3, 3, 2.5, 3.97, 2.5, 1.0, 2.5)
    none = Cost.of(_served([0], {"2x": [2]}), h, np.array([]), head)
    assert none.online_fm_ms_per_request_p50 is None and none.online_over_batch is None
