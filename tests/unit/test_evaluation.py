"""Evaluation metrics against hand-computed values and naive references; the VM's miss semantics."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solaris_batch.evaluation.metrics import (
    auc,
    log_loss,
    normalized_entropy,
    paired_auc_diff_ci,
    recovered_gain,
)
from solaris_batch.evaluation.run import Rows, available_windows, pair_ranks
from solaris_batch.evaluation.vm import VMConfig, VMTraining, predict_vm, train_vm, vm_features
from solaris_batch.logs.layout import SUCCESS, partition_dir


def naive_auc(y, s):
    """P(score of a random positive > a random negative), ties counting one half: all pairs."""
    pos, neg = s[y == 1], s[y == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def test_auc_hand_computed():
    # pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8>both yes -> 3 of 4
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    # one tie between the positive 0.4 and the negative 0.4: (1 + 0.5 + 1 + 1) / 4
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.4, 0.9])) == 0.875
    assert auc(np.array([1, 1]), np.array([0.1, 0.2])) is None


def test_auc_equals_naive_pairwise_with_many_ties():
    rng = np.random.default_rng(3)
    y = rng.random(700) < 0.2
    s = rng.integers(0, 12, 700).astype(float)  # heavy ties
    assert auc(y, s) == pytest.approx(naive_auc(y.astype(int), s), abs=1e-12)


def test_log_loss_and_normalized_entropy_hand_computed():
    y = np.array([1, 0, 0, 0])
    p = np.array([0.5, 0.25, 0.25, 0.25])
    ll = -(math.log(0.5) + 3 * math.log(0.75)) / 4  # 0.3890482...
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # entropy of the 25% base rate, 0.5623351...
    assert log_loss(y, p) == pytest.approx(ll, abs=1e-12)
    assert normalized_entropy(y, p) == pytest.approx(ll / h, abs=1e-12)
    assert normalized_entropy(y, p) == pytest.approx(0.691844, abs=1e-6)
    # predicting the base rate itself scores exactly 1
    assert normalized_entropy(y, np.full(4, 0.25)) == pytest.approx(1.0, abs=1e-12)
    # an explicit (training) base rate normalizes by that entropy instead
    h10 = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))
    assert normalized_entropy(y, p, base_rate=0.1) == pytest.approx(ll / h10, abs=1e-12)
    assert normalized_entropy(np.zeros(3), np.full(3, 0.1)) is None


def test_recovered_gain():
    assert recovered_gain(0.70, 0.74, 0.78) == pytest.approx(0.5)
    assert recovered_gain(0.70, 0.78, 0.78) == pytest.approx(1.0)
    assert recovered_gain(0.70, 0.72, 0.70) is None  # no ceiling gain to recover
    assert recovered_gain(None, 0.72, 0.8) is None


def test_paired_bootstrap_interval_brackets_a_clear_difference():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.3
    good = y + rng.normal(0, 0.8, 3000)
    bad = y + rng.normal(0, 3.0, 3000)
    lo, hi = paired_auc_diff_ci(y, good, bad, np.arange(3000) // 3, n_boot=100)
    d = auc(y, good) - auc(y, bad)
    assert 0 < lo <= d <= hi
    lo, hi = paired_auc_diff_ci(y, good, good, np.arange(3000) // 3, n_boot=50)
    assert lo == hi == 0.0


def test_pair_ranks_follow_the_plan_order_score_then_ids():
    # plan order: (1,10,.9) (2,10,.9) (1,11,.5) (3,12,.1) -> ranks 0, 1, 2, 3
    pu = np.array([3, 1, 2, 1])
    pa = np.array([12, 11, 10, 10])
    sc = np.array([0.1, 0.5, 0.9, 0.9], np.float32)
    r = pair_ranks(pu, pa, sc, np.array([2, 3, 1, 1, 5, 1]), np.array([10, 12, 11, 10, 5, 12]))
    assert r.tolist() == [1, 3, 2, 0, -1, -1]
    # a budget of 2 pairs keeps exactly the two 0.9 pairs
    assert ((r >= 0) & (r < 2)).tolist() == [True, False, False, True, False, False]


def test_available_windows_counts_consecutive_complete_hours(tmp_path):
    t0 = datetime(2026, 11, 21, 10, tzinfo=UTC)
    for h in (0, 1, 2, 4):
        d = partition_dir(tmp_path, t0 + timedelta(hours=h))
        d.mkdir(parents=True)
        (d / SUCCESS).touch()
    assert available_windows(tmp_path, t0, timedelta(hours=1), 9) == 3
    assert available_windows(tmp_path, t0, timedelta(hours=2), 9) == 1
    assert available_windows(tmp_path, t0, timedelta(hours=1), 2) == 2
    assert available_windows(tmp_path, t0 + timedelta(hours=3), timedelta(hours=1), 9) == 0


def test_rows_within_is_half_open():
    us = 3_600_000_000
    rows = Rows(*(np.arange(4) for _ in range(2)), np.arange(4), np.arange(4), np.ones(4, bool),
                np.zeros(4, bool), np.array(["feed"] * 4, dtype=object))
    rows.ts_us = np.array([0, us - 1, us, 2 * us])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert rows.within(epoch, epoch + timedelta(hours=1)).tolist() == [True, True, False, False]


def _synthetic(n, seed):
    """Clicks driven by a hidden 8-d 'FM embedding' the ID features cannot see."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    p = 1 / (1 + np.exp(-(-2.0 + 2.0 * emb[:, 0])))
    y = rng.random(n) < p
    x = vm_features(rng.integers(0, 50, n), rng.integers(0, 30, n), rng.integers(0, 5, n), rng.integers(1, 3, n),
                    rng.integers(0, 10**10, n), VMConfig())
    return x, y, emb


def test_vm_uses_fm_features_when_hit_and_ignores_them_on_miss():
    x, y, emb = _synthetic(6000, 1)
    xt, yt, et = _synthetic(3000, 2)
    tr = VMTraining(epochs=3)
    plain = train_vm(VMConfig(), x, y, training=tr)
    with_fm = train_vm(VMConfig(fm_dim=8), x, y, emb, np.ones(len(y), bool), training=tr)
    a_plain = auc(yt, predict_vm(plain, xt))
    a_fm = auc(yt, predict_vm(with_fm, xt, et, np.ones(len(yt), bool)))
    assert a_fm > a_plain + 0.15
    # On a miss the learned default replaces the row's embedding: its values cannot matter.
    miss = np.zeros(len(yt), bool)
    p1 = predict_vm(with_fm, xt, et, miss)
    p2 = predict_vm(with_fm, xt, np.random.default_rng(9).normal(size=et.shape).astype(np.float32), miss)
    assert np.array_equal(p1, p2)
    assert not np.array_equal(p1, predict_vm(with_fm, xt, et, ~miss))


def test_vm_training_is_deterministic():
    x, y, emb = _synthetic(2000, 4)
    a = predict_vm(train_vm(VMConfig(), x, y), x)
    b = predict_vm(train_vm(VMConfig(), x, y), x)
    assert np.array_equal(a, b)
