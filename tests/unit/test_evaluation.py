"""Evaluation metrics against hand-computed values and naive references; the VM's miss semantics."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solaris_batch.evaluation.run import Rows, available_windows, pair_ranks, recovered_gain
from solaris_batch.evaluation.vm import VMConfig, VMTraining, predict_vm, train_vm, vm_features
from solaris_batch.logs.layout import SUCCESS, partition_dir
from solaris_batch.metrics import auc


def test_recovered_gain():
    assert recovered_gain(0.70, 0.74, 0.78) == pytest.approx(0.5)
    assert recovered_gain(0.70, 0.78, 0.78) == pytest.approx(1.0)
    assert recovered_gain(0.70, 0.72, 0.70) is None  # no ceiling gain to recover
    assert recovered_gain(None, 0.72, 0.8) is None


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
