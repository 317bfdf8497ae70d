"""The vertical model: it uses FM features on a hit, ignores them on a miss, and trains deterministically."""

import numpy as np

from solaris_batch.evaluation.vm import (
    FMInput,
    VMConfig,
    VMTraining,
    predict_vm,
    train_vm,
    vm_features,
)
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


def _fm(emb, hit, side=None):
    return FMInput(emb, np.asarray(hit, bool), np.zeros((len(emb), 0), np.float32) if side is None else side)


def test_vm_uses_fm_features_when_hit_and_ignores_them_on_miss():
    x, y, emb = _synthetic(6000, 1)
    xt, yt, et = _synthetic(3000, 2)
    tr = VMTraining(epochs=3)
    plain = train_vm(x, y, training=tr)
    with_fm = train_vm(x, y, _fm(emb, np.ones(len(y))), training=tr)
    a_plain = auc(yt, predict_vm(plain, xt))
    a_fm = auc(yt, predict_vm(with_fm, xt, _fm(et, np.ones(len(yt)))))
    assert a_fm > a_plain + 0.15
    # On a miss the learned default replaces the row's embedding: its values cannot matter.
    miss = np.zeros(len(yt), bool)
    p1 = predict_vm(with_fm, xt, _fm(et, miss))
    p2 = predict_vm(with_fm, xt, _fm(np.random.default_rng(9).normal(size=et.shape).astype(np.float32), miss))
    assert np.array_equal(p1, p2)
    assert not np.array_equal(p1, predict_vm(with_fm, xt, _fm(et, ~miss)))


def test_vm_reads_the_side_columns():
    # clicks driven by a logit-like side column; the embedding is noise
    x, y, emb = _synthetic(6000, 3)
    xt, yt, et = _synthetic(3000, 5)
    side, side_t = emb[:, :1] * 2, et[:, :1] * 2
    noise = np.random.default_rng(0).normal(size=(len(y), 8)).astype(np.float32)
    tr = VMTraining(epochs=3)
    m = train_vm(x, y, _fm(noise, np.ones(len(y)), side), training=tr)
    assert m.config.fm_side == 1
    a_side = auc(yt, predict_vm(m, xt, _fm(noise[: len(yt)], np.ones(len(yt)), side_t)))
    a_zero = auc(yt, predict_vm(m, xt, _fm(noise[: len(yt)], np.ones(len(yt)), np.zeros_like(side_t))))
    assert a_side > a_zero + 0.15


def test_vm_training_is_deterministic():
    x, y, emb = _synthetic(2000, 4)
    a = predict_vm(train_vm(x, y), x)
    b = predict_vm(train_vm(x, y), x)
    assert np.array_equal(a, b)
