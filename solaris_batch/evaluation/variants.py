"""The VM variants the evaluation compares, trained alike, and their scores on the test horizon.

Every variant is the one vertical model of ``vm.py``, trained on the same training impressions with
the same seed and epochs; only its FM input or its labels differ:

* ``vm``: IDs and context only.
* ``vm_distilled``: the same inputs, trained on ``w * click + (1 - w) * sigmoid(FM logit)``.
* ``vm_fm_all``: plus a fresh FM embedding and logit for every impression (the ceiling).
* ``vm_solaris@<budget>``: plus, on a hit, the snapshot's embedding, the FM logit it stores and its
  age; a learned default and a miss flag otherwise. One per budget of the sweep; the headline
  budget's is the report's ``vm_solaris``.
* ``vm_solaris_user_mean``: the headline budget's snapshot read with the store's ``user_mean``
  fallback: a miss of a known user reads the mean of its embeddings in the snapshot.
* ``vm_solaris_distilled``: the headline budget's snapshot inputs, trained on the distilled target
  (the hybrid: distillation helps every pair, the snapshot the planned ones).

``best_solaris`` is the SOLARIS-fed variant (the last three) with the highest test AUC; the report
compares it with ``vm``, ``vm_distilled`` and ``vm_fm_all`` by paired bootstrap over requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solaris_batch.evaluation import log, rounded
from solaris_batch.evaluation.serve import FRESH, FMSource, VMInputs
from solaris_batch.evaluation.split import EvalSplit, Rows
from solaris_batch.evaluation.vm import VerticalModel, VMTraining, predict_vm, train_vm
from solaris_batch.metrics import auc, normalized_entropy, paired_auc_diff_ci

CI_AGAINST = ("vm", "vm_distilled", "vm_fm_all")
"""The variants ``best_solaris`` is compared with by paired bootstrap."""
SOLARIS_FED = ("vm_solaris", "vm_solaris_user_mean", "vm_solaris_distilled")
"""The variants fed by the headline budget's snapshots, candidates for ``best_solaris``."""


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


def headline_names(budget: str) -> dict[str, str]:
    """Report name -> trained variant name of the headline variants (``vm_solaris`` is ``budget``'s)."""
    return {"vm": "vm", "vm_distilled": "vm_distilled", "vm_solaris": solaris(budget),
            "vm_solaris_user_mean": "vm_solaris_user_mean", "vm_solaris_distilled": "vm_solaris_distilled",
            "vm_fm_all": "vm_fm_all"}


@dataclass(frozen=True)
class Variant:
    """A trained VM and the FM input it reads (None: none; see ``VMInputs.fm_input``)."""

    model: VerticalModel
    source: FMSource | None

    def score(self, inputs: VMInputs, sel: np.ndarray) -> np.ndarray:
        """Click probabilities (float64) of the rows ``sel`` (a boolean mask over ``inputs``)."""
        return predict_vm(self.model, inputs.features(sel), inputs.fm_input(self.source, sel))


def train_variants(inputs: VMInputs, train: np.ndarray, budgets: list[str], budget: str, distill_label_weight: float,
                   training: VMTraining) -> dict[str, Variant]:
    """Train every variant on the rows ``train``: ``vm``, ``vm_distilled``, ``vm_fm_all``, one
    ``solaris(b)`` per budget of ``budgets``, and the headline ``budget``'s ``vm_solaris_user_mean``
    and ``vm_solaris_distilled``, all with ``training``."""
    y, w = inputs.clicked[train], distill_label_weight
    soft = w * y + (1 - w) / (1 + np.exp(-inputs.fresh_logit[train]))
    sources: dict[str, tuple[FMSource | None, np.ndarray]] = {
        "vm": (None, y), "vm_distilled": (None, soft), "vm_fm_all": (FRESH, y),
        **{solaris(b): (FMSource(b), y) for b in budgets},
        "vm_solaris_user_mean": (FMSource(budget, "user_mean"), y),
        "vm_solaris_distilled": (FMSource(budget), soft),
    }
    x = inputs.features(train)
    log(f"train the VM variants on {int(train.sum()):,} impressions ({int(y.sum()):,} clicks)")
    return {name: Variant(train_vm(x, target, inputs.fm_input(src, train), training=training), src)
            for name, (src, target) in sources.items()}


@dataclass(frozen=True)
class HorizonScores:
    """Every variant's click probabilities on test rows: what the metrics and intervals are computed
    from, and what several test horizons pool (``pool``).

    Attributes:
        clicked: (n,) bool labels.
        probs: variant name -> (n,) float64 probabilities.
        fm_fresh: (n,) the fresh FM's own click probabilities.
        groups: (n,) int64 bootstrap groups (requests; distinct across pooled horizons).
        hit: budget -> (n,) bool, whether its snapshot held the row's pair.
        train_clicks: clicks of the training rows behind these scores (the NE base rate's numerator).
        train_rows: training rows behind them.
    """

    clicked: np.ndarray
    probs: dict[str, np.ndarray]
    fm_fresh: np.ndarray
    groups: np.ndarray
    hit: dict[str, np.ndarray]
    train_clicks: int
    train_rows: int

    @property
    def base_rate(self) -> float:
        """The training click rate (NE's reference)."""
        return self.train_clicks / max(self.train_rows, 1)

    def metrics(self) -> dict[str, Metrics]:
        """Every variant's metrics on these rows, by trained name."""
        return {name: Metrics.of(self.clicked, p, self.base_rate) for name, p in self.probs.items()}


def score_test(variants: dict[str, Variant], inputs: VMInputs, train: np.ndarray, test: np.ndarray,
                request_id: np.ndarray) -> HorizonScores:
    """Every variant's scores on the rows ``test`` (``request_id`` per input row groups the bootstrap)."""
    return HorizonScores(inputs.clicked[test], {name: v.score(inputs, test) for name, v in variants.items()},
                      1 / (1 + np.exp(-inputs.fresh_logit[test].astype(np.float64))), request_id[test],
                      {b: h[test] for b, h in inputs.hit.items()}, int(inputs.clicked[train].sum()),
                      int(train.sum()))


def pool(parts: list[HorizonScores]) -> HorizonScores:
    """Several test horizons' scores as one set of rows: groups are renumbered per part so that a
    request of one horizon never resamples with another's; the NE base rate pools the training rows."""
    offs = np.cumsum([0] + [int(p.groups.max()) + 1 if len(p.groups) else 0 for p in parts])
    return HorizonScores(np.concatenate([p.clicked for p in parts]),
                      {k: np.concatenate([p.probs[k] for p in parts]) for k in parts[0].probs},
                      np.concatenate([p.fm_fresh for p in parts]),
                      np.concatenate([np.asarray(p.groups, np.int64) + o for p, o in zip(parts, offs, strict=False)]),
                      {k: np.concatenate([p.hit[k] for p in parts]) for k in parts[0].hit},
                      sum(p.train_clicks for p in parts), sum(p.train_rows for p in parts))


@dataclass(frozen=True)
class BestSolaris:
    """The SOLARIS-fed variant with the highest test AUC, and how sure its margins are.

    Attributes:
        variant: its report name (one of ``SOLARIS_FED``).
        auc: its AUC.
        recovered_gain: share of ``vm_fm_all``'s AUC gain over ``vm`` it recovers.
        auc_diff_ci95: other -> 95% paired-bootstrap interval of its AUC minus the other's (over
            requests; None if undefined), for each of ``CI_AGAINST``.
    """

    variant: str
    auc: float | None
    recovered_gain: float | None
    auc_diff_ci95: dict[str, tuple[float, float] | None]

    def beats(self, other: str) -> bool | None:
        """Whether the interval against ``other`` lies above 0 (None when undefined)."""
        ci = self.auc_diff_ci95.get(other)
        return None if ci is None else ci[0] > 0

    def to_json(self) -> dict:
        """The report's ``best_solaris`` block."""
        return {"variant": self.variant, "auc": self.auc, "recovered_gain": self.recovered_gain,
                **{f"auc_diff_vs_{k}_ci95": None if v is None else list(v) for k, v in self.auc_diff_ci95.items()}}


@dataclass(frozen=True)
class VariantScores:
    """The variants on the test horizon(s).

    Attributes:
        metrics: every trained variant's metrics, by its trained name.
        fm_fresh: the fresh FM's own click probabilities (a reference, not a ranker we could run).
        best: the best SOLARIS-fed variant at the headline budget.
    """

    metrics: dict[str, Metrics]
    fm_fresh: Metrics
    best: BestSolaris

    @classmethod
    def of(cls, s: HorizonScores, budget: str) -> VariantScores:
        """Metrics of ``s`` and its best SOLARIS-fed variant at the headline ``budget``."""
        metrics = s.metrics()
        names = headline_names(budget)
        best = max(SOLARIS_FED, key=lambda v: (metrics[names[v]].auc or 0.0, -SOLARIS_FED.index(v)))
        ci = {other: paired_auc_diff_ci(s.clicked, s.probs[names[best]], s.probs[other], s.groups)
              for other in CI_AGAINST}
        m = {k: metrics[v].auc for k, v in names.items()}
        return cls(metrics, Metrics.of(s.clicked, s.fm_fresh, s.base_rate), BestSolaris(
            best, m[best], rounded(recovered_gain(m["vm"], m[best], m["vm_fm_all"])),
            {k: None if v is None else (round(v[0], 6), round(v[1], 6)) for k, v in ci.items()}))

    def headline(self, budget: str) -> dict[str, Metrics]:
        """The headline variants' metrics by report name (see ``headline_names``)."""
        return {k: self.metrics[v] for k, v in headline_names(budget).items()}


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


def budget_quality(m: dict[str, Metrics], s: HorizonScores, budget: str) -> BudgetQuality:
    """The quality of ``budget``'s variant on the rows of ``s``, whose metrics are ``m``."""
    return BudgetQuality(round(float(s.hit[budget].mean()), 6) if len(s.clicked) else 0.0, m[solaris(budget)],
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
