"""Click-prediction metrics against hand-computed values and naive references."""

import math

import numpy as np
import pytest

from solaris_batch.metrics import auc, log_loss, normalized_entropy, paired_auc_diff_ci


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
