"""Click-prediction metrics: ROC AUC, log loss, normalized entropy, paired bootstrap of AUC differences.

The bottom layer's home for them, so that FM training (``model/``) and the evaluation
(``evaluation/``) score clicks with the same code.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, tied scores sharing their average rank.

    Returns None when only one class is present (AUC is undefined there).
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, n = int(y.sum()), len(y)
    if pos == 0 or pos == n:
        return None
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    # Ranks 1..n; each run of equal scores gets the mean of its first and last rank.
    first = np.r_[True, ss[1:] != ss[:-1]]
    run = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n] - 1
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = (starts[run] + ends[run]) / 2.0 + 1.0
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * (n - pos)))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy in nats; probabilities are clipped to ``[1e-12, 1 - 1e-12]``."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def normalized_entropy(labels: np.ndarray, probs: np.ndarray, base_rate: float | None = None) -> float | None:
    """Log loss divided by the entropy of always predicting ``base_rate`` (He et al., 2014).

    ``base_rate`` is the background click-through rate: pass the training set's, as the paper does;
    it defaults to the evaluated labels' mean. Below 1 beats the constant predictor; lower is better.
    Returns None when the base rate is 0 or 1 (no entropy to normalize by).
    """
    y = np.asarray(labels, dtype=np.float64)
    p0 = float(y.mean()) if base_rate is None else float(base_rate)
    if not 0.0 < p0 < 1.0:
        return None
    h = -(p0 * np.log(p0) + (1 - p0) * np.log(1 - p0))
    return log_loss(y, probs) / h


def paired_auc_diff_ci(labels: np.ndarray, a: np.ndarray, b: np.ndarray, groups: np.ndarray,
                       n_boot: int = 200, level: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Bootstrap interval of ``AUC(a) - AUC(b)`` on the same rows, resampling whole ``groups``
    (requests) with replacement, so that rows of one request stay together. None if undefined."""
    y = np.asarray(labels, dtype=bool)
    uniq, inv = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        w = np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq))[inv]
        idx = np.repeat(np.arange(len(y)), w)
        da, db = auc(y[idx], a[idx]), auc(y[idx], b[idx])
        if da is not None and db is not None:
            diffs.append(da - db)
    if len(diffs) < n_boot // 2:
        return None
    q = (1 - level) / 2
    return float(np.quantile(diffs, q)), float(np.quantile(diffs, 1 - q))
