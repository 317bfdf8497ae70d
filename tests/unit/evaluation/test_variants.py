"""The VM variants: metrics, recovered gain, which inputs each variant is trained on, staleness."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solaris_batch.evaluation.serve import VMInputs
from solaris_batch.evaluation.split import EvalSplit, Rows
from solaris_batch.evaluation.variants import (
    Metrics,
    VariantScores,
    budget_quality,
    recovered_gain,
    score_test,
    solaris,
    staleness,
    train_variants,
)
from solaris_batch.evaluation.vm import VMConfig, VMTraining, vm_features

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_recovered_gain():
    assert recovered_gain(0.70, 0.74, 0.78) == pytest.approx(0.5)
    assert recovered_gain(0.70, 0.78, 0.78) == pytest.approx(1.0)
    assert recovered_gain(0.70, 0.72, 0.70) is None  # no ceiling gain to recover
    assert recovered_gain(None, 0.72, 0.8) is None


def test_metrics_hand_computed_and_rounded():
    # pairs (pos, neg): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both -> AUC 3/4; NE against a 50% base rate
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    ll = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    m = Metrics.of(y, p, 0.5)
    assert m == Metrics(0.75, round(ll / math.log(2), 6))
    assert m.ne == 0.681367  # 0.472288 nats / ln 2
    assert Metrics.of(np.array([1, 1]), np.array([0.2, 0.3]), 0.0) == Metrics(None, None)


def test_budget_quality_reads_the_budgets_variant():
    m = {"vm": Metrics(0.70, 0.9), "vm_fm_all": Metrics(0.78, 0.8), solaris("2x"): Metrics(0.74, 0.85)}
    scores = VariantScores(m, Metrics(0.8, 0.7), {})
    inputs = VMInputs({}, np.zeros(4, bool), np.zeros((4, 1), np.float32),
                      {"2x": np.array([True, False, True, True])}, np.zeros((4, 1), np.float32), np.zeros(4))
    q = budget_quality(scores, inputs, np.array([True, True, False, True]), "2x")
    assert q.impression_hit_rate == 0.666667  # test rows 0, 1, 3: two of three hit
    assert q.vm_solaris == Metrics(0.74, 0.85)
    assert q.recovered_gain == pytest.approx(0.5)  # (0.74 - 0.70) / (0.78 - 0.70)


def _inputs(n, seed):
    """Tiny VM inputs whose snapshot at ``1x`` holds every pair with the fresh FM's embedding."""
    rng = np.random.default_rng(seed)
    fresh = rng.normal(size=(n, 4)).astype(np.float32)
    y = rng.random(n) < 1 / (1 + np.exp(-(fresh[:, 0] - 1)))
    x = vm_features(rng.integers(0, 20, n), rng.integers(0, 10, n), rng.integers(0, 3, n), np.ones(n, np.int64),
                    rng.integers(0, 10**10, n), VMConfig())
    half = np.arange(n) % 2 == 0
    return VMInputs(x, y, fresh.copy(), {"1x": np.ones(n, bool), "2x": half}, fresh, rng.normal(size=n))


def test_variants_differ_only_in_their_fm_input_or_labels():
    inputs, n = _inputs(300, 0), 300
    train, test = np.arange(n) < 200, np.arange(n) >= 200
    v = train_variants(inputs, train, ["1x", "2x"], distill_label_weight=1.0, training=VMTraining(epochs=1))
    assert list(v) == ["vm", "vm_distilled", "vm_fm_all", "vm_solaris@1x", "vm_solaris@2x"]
    assert [x.source for x in v.values()] == [None, None, "fresh", "1x", "2x"]
    p = {name: x.score(inputs, test) for name, x in v.items()}
    # w = 1: the distilled target is the clicks themselves
    assert np.array_equal(p["vm_distilled"], p["vm"])
    # a snapshot that holds every pair with the fresh embedding is the fresh FM
    assert np.array_equal(p["vm_solaris@1x"], p["vm_fm_all"])
    assert not np.array_equal(p["vm_solaris@2x"], p["vm_fm_all"])
    s = score_test(v, inputs, test, 0.3, np.arange(n) // 2, "1x")
    assert set(s.metrics) == set(v) and s.metrics["vm_solaris@1x"] == s.metrics["vm_fm_all"]
    assert list(s.auc_diff_ci95) == ["vm_solaris-vm", "vm_solaris-vm_distilled", "vm_solaris-vm_fm_all"]
    assert s.auc_diff_ci95["vm_solaris-vm_fm_all"] == (0.0, 0.0)


def test_staleness_skips_windows_without_impressions():
    n = 40
    inputs = _inputs(n, 1)
    v = train_variants(inputs, np.arange(n) < 20, ["2x"], 0.5, VMTraining(epochs=1))
    # 20 impressions at 0.5h, then 10 at 2.5h and 10 at 4.5h; T = 2h: windows 2h, 3h (empty), 4h after it
    hours = np.r_[np.full(20, 0.5), np.full(10, 2.5), np.full(10, 4.5)]
    imps = Rows(np.arange(n), (hours * 3_600_000_000).astype(np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                np.ones(n, bool), inputs.clicked, np.array(["feed"] * n, dtype=object))
    st = staleness(v, inputs, imps, EvalSplit(EPOCH + 2 * H, H, 2, 3), "2x", 0.3)
    assert [(w.window, w.hours_after, w.start, w.impressions) for w in st] == [
        (0, 0.0, "1970-01-01T02:00:00+00:00", 10), (2, 2.0, "1970-01-01T04:00:00+00:00", 10)]
    assert [w.hit_rate for w in st] == [0.5, 0.5]  # every other row hits at 2x
    assert st[0].clicks == int(inputs.clicked[20:30].sum())
