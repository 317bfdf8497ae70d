"""The VM variants the evaluation compares, trained alike, and their scores on the test horizon.

Every variant is the one vertical model of ``vm.py``, trained on the same training impressions with
the same seed and epochs; only its FM input or its labels differ:

* ``vm``: IDs and context only.
* ``vm_distilled``: the same inputs, trained on ``w * click + (1 - w) * sigmoid(FM logit)``.
* ``vm_fm_all``: plus a fresh FM embedding for every impression (the ceiling).
* ``vm_solaris@<budget>``: plus the snapshot embedding on a hit, a learned default and a miss flag
  otherwise, one per budget of the sweep (the headline budget's is the report's ``vm_solaris``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solaris_batch.evaluation import log, rounded
from solaris_batch.evaluation.serve import FRESH, VMInputs
from solaris_batch.evaluation.split import EvalSplit, Rows
from solaris_batch.evaluation.vm import VerticalModel, VMConfig, VMTraining, predict_vm, train_vm
from solaris_batch.metrics import auc, normalized_entropy, paired_auc_diff_ci

CI_AGAINST = ("vm", "vm_distilled", "vm_fm_all")
"""The variants the headline ``vm_solaris`` is compared with by paired bootstrap."""


@dataclass(frozen=True)
class Metrics:
    """Click-prediction quality of one variant on some rows, rounded to 6 places.

    Attributes:
        auc: ROC AUC; None when the rows hold one class only.
        ne: normalized entropy against the training base rate; None when that rate is 0 or 1.
    """

    auc: float | None
    ne: float | None

    @classmethod
    def of(cls, labels: np.ndarray, probs: np.ndarray, base_rate: float) -> Metrics:
        """AUC and NE of click probabilities ``probs`` against ``labels``."""
        a, ne = auc(labels, probs), normalized_entropy(labels, probs, base_rate)
        # round() on the values as computed (NE is a numpy float): not ``rounded``, which casts first
        return cls(None if a is None else round(a, 6), None if ne is None else round(ne, 6))


def recovered_gain(base: float | None, treated: float | None, ceiling: float | None) -> float | None:
    """Share of the ceiling's gain over the base that the treatment recovers (``None`` when the
    ceiling does not beat the base, so there is no gain to share)."""
    if base is None or treated is None or ceiling is None or ceiling <= base:
        return None
    return (treated - base) / (ceiling - base)


def solaris(budget: str) -> str:
    """Name of the variant fed by ``budget``'s snapshots."""
    return f"vm_solaris@{budget}"


@dataclass(frozen=True)
class Variant:
    """A trained VM and the FM input it reads: None, ``FRESH`` or a budget (see ``VMInputs.fm_input``)."""

    model: VerticalModel
    source: str | None

    def score(self, inputs: VMInputs, sel: np.ndarray) -> np.ndarray:
        """Click probabilities (float64) of the rows ``sel`` (a boolean mask over ``inputs``)."""
        return predict_vm(self.model, inputs.features(sel), *inputs.fm_input(self.source, sel))


def train_variants(inputs: VMInputs, train: np.ndarray, budgets: list[str], distill_label_weight: float,
                   training: VMTraining) -> dict[str, Variant]:
    """Train every variant on the rows ``train``: ``vm``, ``vm_distilled``, ``vm_fm_all`` and one
    ``solaris(b)`` per budget, all with ``training``."""
    y, w = inputs.clicked[train], distill_label_weight
    soft = w * y + (1 - w) / (1 + np.exp(-inputs.fresh_logit[train]))
    sources: dict[str, tuple[str | None, np.ndarray]] = {
        "vm": (None, y), "vm_distilled": (None, soft), "vm_fm_all": (FRESH, y),
        **{solaris(b): (b, y) for b in budgets},
    }
    x, cfg0, cfg_fm = inputs.features(train), VMConfig(), VMConfig(fm_dim=inputs.fresh_emb.shape[1])
    log(f"train the VM variants on {int(train.sum()):,} impressions ({int(y.sum()):,} clicks)")
    return {name: Variant(train_vm(cfg0 if src is None else cfg_fm, x, target, *inputs.fm_input(src, train),
                                   training=training), src)
            for name, (src, target) in sources.items()}


@dataclass(frozen=True)
class VariantScores:
    """The variants on the test horizon.

    Attributes:
        metrics: every trained variant's metrics, by name.
        fm_fresh: the fresh FM's own click probabilities (a reference, not a ranker we could run).
        auc_diff_ci95: ``"vm_solaris-<other>"`` -> 95% paired-bootstrap interval (over requests) of the
            headline ``vm_solaris`` AUC minus ``<other>``'s, rounded to 6 places; None if undefined.
    """

    metrics: dict[str, Metrics]
    fm_fresh: Metrics
    auc_diff_ci95: dict[str, tuple[float, float] | None]


def score_test(variants: dict[str, Variant], inputs: VMInputs, test: np.ndarray, base_rate: float,
               request_id: np.ndarray, budget: str) -> VariantScores:
    """Score every variant on the rows ``test``; ``request_id`` (per input row) groups the bootstrap,
    ``budget`` names the headline ``vm_solaris``."""
    y = inputs.clicked[test]
    scores = {name: v.score(inputs, test) for name, v in variants.items()}
    ci = {f"vm_solaris-{other}": paired_auc_diff_ci(y, scores[solaris(budget)], scores[other], request_id[test])
          for other in CI_AGAINST}
    return VariantScores({name: Metrics.of(y, s, base_rate) for name, s in scores.items()},
                         Metrics.of(y, 1 / (1 + np.exp(-inputs.fresh_logit[test])), base_rate),
                         {k: None if v is None else (round(v[0], 6), round(v[1], 6)) for k, v in ci.items()})


@dataclass(frozen=True)
class BudgetQuality:
    """What one budget's snapshots buy the VM on the test horizon.

    Attributes:
        impression_hit_rate: share of test impressions whose pair the snapshot held.
        vm_solaris: the VM fed by this budget's snapshots.
        recovered_gain: ``recovered_gain`` of its AUC between ``vm`` and ``vm_fm_all``.
    """

    impression_hit_rate: float
    vm_solaris: Metrics
    recovered_gain: float | None


def budget_quality(scores: VariantScores, inputs: VMInputs, test: np.ndarray, budget: str) -> BudgetQuality:
    """The test-horizon quality of ``budget``'s variant."""
    m = scores.metrics
    return BudgetQuality(round(float(inputs.hit[budget][test].mean()), 6), m[solaris(budget)],
                         rounded(recovered_gain(m["vm"].auc, m[solaris(budget)].auc, m["vm_fm_all"].auc)))


@dataclass(frozen=True)
class StaleWindow:
    """The test snapshot serving one window after T without refresh (an entry of ``staleness``).

    Attributes:
        window: j, the window's index after T (0 is the test horizon).
        hours_after: j * horizon, in hours.
        start: the window's start, UTC ISO.
        impressions: impressions in the window.
        clicks: their clicks.
        hit_rate: share of them the headline budget's snapshot held.
        vm: the VM alone.
        vm_solaris: the VM fed by T's snapshot (headline budget).
        vm_fm_all: the VM fed by a fresh FM.
    """

    window: int
    hours_after: float
    start: str
    impressions: int
    clicks: int
    hit_rate: float
    vm: Metrics
    vm_solaris: Metrics
    vm_fm_all: Metrics


def staleness(variants: dict[str, Variant], inputs: VMInputs, impressions: Rows, split: EvalSplit, budget: str,
              base_rate: float) -> list[StaleWindow]:
    """The headline variants on each of ``split.stale_windows()`` that holds an impression."""
    out = []
    for j, w in enumerate(split.stale_windows()):
        sel = impressions.within(w.start, w.end)
        if not sel.any():
            continue
        yk = inputs.clicked[sel]
        out.append(StaleWindow(
            j, round(j * split.horizon.total_seconds() / 3600, 3), w.start.isoformat(), int(sel.sum()),
            int(yk.sum()), round(float(inputs.hit[budget][sel].mean()), 6),
            *(Metrics.of(yk, variants[name].score(inputs, sel), base_rate)
              for name in ("vm", solaris(budget), "vm_fm_all"))))
    return out
