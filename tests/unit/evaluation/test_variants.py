"""The VM variants: metrics, recovered gain, which inputs each variant is trained on, staleness."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solaris_batch.evaluation.serve import FRESH, FMSource, VMInputs
from solaris_batch.evaluation.split import EvalSplit, Rows
from solaris_batch.evaluation.variants import (
    SOLARIS_FED,
    HorizonScores,
    Metrics,
    VariantScores,
    budget_quality,
    pool,
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


def _inputs(n, seed):
    """Tiny VM inputs whose snapshot at ``1x`` holds every pair with the fresh FM's embedding and logit."""
    rng = np.random.default_rng(seed)
    fresh = rng.normal(size=(n, 4)).astype(np.float32)
    logit = rng.normal(size=n).astype(np.float32)
    y = rng.random(n) < 1 / (1 + np.exp(-(fresh[:, 0] - 1)))
    x = vm_features(rng.integers(0, 20, n), rng.integers(0, 10, n), rng.integers(0, 3, n), np.ones(n, np.int64),
                    rng.integers(0, 10**10, n), VMConfig())
    half = np.arange(n) % 2 == 0
    return VMInputs(x, y, fresh.copy(), logit.copy(), np.zeros(n, np.float32), {"1x": np.ones(n, bool), "2x": half},
                    fresh, logit, fresh.copy(), np.ones(n, bool))


def _scores(y, probs, groups, train_clicks=3, train_rows=10, hit=None):
    n = len(y)
    return HorizonScores(np.asarray(y, bool), {k: np.asarray(v, float) for k, v in probs.items()}, np.full(n, 0.5),
                         np.asarray(groups), hit or {"2x": np.ones(n, bool)}, train_clicks, train_rows)


def test_budget_quality_reads_the_budgets_variant():
    m = {"vm": Metrics(0.70, 0.9), "vm_fm_all": Metrics(0.78, 0.8), solaris("2x"): Metrics(0.74, 0.85)}
    s = _scores([0, 1, 1], {}, [0, 1, 2], hit={"2x": np.array([True, False, True])})
    q = budget_quality(m, s, "2x")
    assert q.impression_hit_rate == 0.666667  # two of three rows hit
    assert q.vm_solaris == Metrics(0.74, 0.85)
    assert q.recovered_gain == pytest.approx(0.5)  # (0.74 - 0.70) / (0.78 - 0.70)


def test_variants_differ_only_in_their_fm_input_or_labels():
    inputs, n = _inputs(300, 0), 300
    train, test = np.arange(n) < 200, np.arange(n) >= 200
    v = train_variants(inputs, train, ["1x", "2x"], "1x", distill_label_weight=1.0, training=VMTraining(epochs=1))
    assert list(v) == ["vm", "vm_distilled", "vm_fm_all", "vm_solaris@1x", "vm_solaris@2x", "vm_solaris_user_mean",
                       "vm_solaris_distilled"]
    assert [x.source for x in v.values()] == [None, None, FRESH, FMSource("1x"), FMSource("2x"),
                                              FMSource("1x", "user_mean"), FMSource("1x")]
    p = {name: x.score(inputs, test) for name, x in v.items()}
    # w = 1: the distilled target is the clicks themselves
    assert np.array_equal(p["vm_distilled"], p["vm"])
    assert np.array_equal(p["vm_solaris_distilled"], p["vm_solaris@1x"])
    # a snapshot that holds every pair with the fresh embedding and logit (age 0) is the fresh FM
    assert np.array_equal(p["vm_solaris@1x"], p["vm_fm_all"])
    assert not np.array_equal(p["vm_solaris@2x"], p["vm_fm_all"])
    s = score_test(v, inputs, train, test, np.arange(n) // 2)
    assert (s.train_clicks, s.train_rows) == (int(inputs.clicked[train].sum()), 200)
    vs = VariantScores.of(s, "1x")
    assert set(vs.metrics) == set(v) and vs.metrics["vm_solaris@1x"] == vs.metrics["vm_fm_all"]
    assert list(vs.best.auc_diff_ci95) == ["vm", "vm_distilled", "vm_fm_all"]
    best = vs.headline("1x")[vs.best.variant]
    assert best.auc == max(vs.headline("1x")[k].auc for k in SOLARIS_FED) == vs.best.auc


def test_best_solaris_is_the_highest_auc_fed_variant_with_paired_intervals():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.random(n) < 0.3
    good = y + rng.normal(0, 0.6, n)  # informative
    weak = y + rng.normal(0, 2.0, n)
    probs = {"vm": weak, "vm_distilled": weak + rng.normal(0, 0.5, n), "vm_fm_all": y + rng.normal(0, 0.3, n),
             "vm_solaris@2x": weak, "vm_solaris_user_mean": weak, "vm_solaris_distilled": good}
    vs = VariantScores.of(_scores(y, probs, np.arange(n) // 4), "2x")
    assert vs.best.variant == "vm_solaris_distilled"
    assert vs.best.beats("vm") and vs.best.beats("vm_distilled") and not vs.best.beats("vm_fm_all")
    gain = (vs.metrics["vm_solaris_distilled"].auc - vs.metrics["vm"].auc) / (
        vs.metrics["vm_fm_all"].auc - vs.metrics["vm"].auc)
    assert vs.best.recovered_gain == pytest.approx(gain, abs=1e-6)
    # ties go to the first of SOLARIS_FED: the plain snapshot variant
    tie = {**probs, "vm_solaris_distilled": weak}
    assert VariantScores.of(_scores(y, tie, np.arange(n)), "2x").best.variant == "vm_solaris"


def test_pool_concatenates_rows_and_keeps_requests_apart():
    a = _scores([1, 0, 1], {"vm": [0.9, 0.2, 0.4]}, [0, 0, 5], train_clicks=2, train_rows=10)
    b = _scores([0, 1], {"vm": [0.3, 0.8]}, [0, 1], train_clicks=6, train_rows=10)
    p = pool([a, b])
    assert p.clicked.tolist() == [True, False, True, False, True]
    assert p.probs["vm"].tolist() == [0.9, 0.2, 0.4, 0.3, 0.8]
    assert p.groups.tolist() == [0, 0, 5, 6, 7]  # b's request 0 is not a's request 0
    assert p.base_rate == 0.4  # (2 + 6) / (10 + 10)
    # pooled AUC over the five rows: positives 0.9, 0.4, 0.8 vs negatives 0.2, 0.3 -> all 6 pairs ordered
    assert p.metrics()["vm"].auc == 1.0


def test_staleness_skips_windows_without_impressions():
    n = 40
    inputs = _inputs(n, 1)
    v = train_variants(inputs, np.arange(n) < 20, ["2x"], "2x", 0.5, VMTraining(epochs=1))
    # 20 impressions at 0.5h, then 10 at 2.5h and 10 at 4.5h; T = 2h: windows 2h, 3h (empty), 4h after it
    hours = np.r_[np.full(20, 0.5), np.full(10, 2.5), np.full(10, 4.5)]
    imps = Rows(np.arange(n), (hours * 3_600_000_000).astype(np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                np.ones(n, bool), inputs.clicked, np.array(["feed"] * n, dtype=object))
    st = staleness(v, inputs, imps, EvalSplit(EPOCH + 2 * H, H, 2, 3), "2x", 0.3)
    assert [(w.window, w.hours_after, w.start, w.impressions) for w in st] == [
        (0, 0.0, "1970-01-01T02:00:00+00:00", 10), (2, 2.0, "1970-01-01T04:00:00+00:00", 10)]
    assert [w.hit_rate for w in st] == [0.5, 0.5]  # every other row hits at 2x
    assert st[0].clicks == int(inputs.clicked[20:30].sum())
