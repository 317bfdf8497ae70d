"""The vertical model: it uses FM features on a hit, ignores them on a miss, and trains deterministically."""

import numpy as np

from solaris_batch.evaluation.vm import VMConfig, VMTraining, predict_vm, train_vm, vm_features
from solaris_batch.metrics import auc


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
