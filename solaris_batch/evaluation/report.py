"""The typed evaluation report and its renderings: ``report.json``, ``report.md`` and plots.

``Report.to_json`` is the machine-readable contract (``../shared/OUTPUTS.md``, ``docs/outputs.md``):
pooled over the test horizons ``at``, the per-variant ``{"auc", "ne"}`` of ``vm``, ``vm_distilled``,
``vm_solaris`` (the headline budget's), ``vm_solaris_user_mean``, ``vm_solaris_distilled`` and
``vm_fm_all``; ``hit_rate``, ``recovered_gain``, ``fm_pairs_per_hit``, ``best_solaris``, the
``budgets`` sweep with AUC gain per million FM pairs, ``cost_per_gain``; and per horizon, ``runs``
with its own ``budgets``, ``staleness``, ``cost``, ``split`` and ``windows``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from solaris_batch.evaluation.cost import BudgetCost, Cost, auc_gain_per_million_pairs, knee
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.serve import ServedWindow
from solaris_batch.evaluation.split import SplitSummary
from solaris_batch.evaluation.variants import BestSolaris, BudgetQuality, Metrics, StaleWindow

LABELS = {"vm": "VM alone", "vm_distilled": "VM distilled from the FM", "vm_solaris": "VM + SOLARIS",
          "vm_solaris_user_mean": "VM + SOLARIS, user-mean on misses",
          "vm_solaris_distilled": "VM + SOLARIS, distilled (hybrid)",
          "vm_fm_all": "VM + FM on every pair (ceiling)", "fm_fresh": "FM alone, online (reference)"}


@dataclass(frozen=True)
class BudgetResult:
    """One budget of the sweep: its coverage and cost, and what it buys the VM."""

    cost: BudgetCost
    quality: BudgetQuality

    @property
    def budget(self) -> str:
        """The budget, as given."""
        return self.cost.budget

    def to_json(self, vm_auc: float | None = None) -> dict:
        """The sweep entry of ``report.json`` (with ``auc_gain_per_million_fm_pairs`` over ``vm_auc``)."""
        c, q = self.cost, self.quality
        return {"budget": c.budget, "budget_pairs": c.budget_pairs, "hit_rate": c.hit_rate,
                "impression_hit_rate": q.impression_hit_rate, "vm_solaris": asdict(q.vm_solaris),
                "recovered_gain": q.recovered_gain, "fm_pairs_per_hit": c.fm_pairs_per_hit,
                "wasted_pairs": c.wasted_pairs, "wasted_share": c.wasted_share,
                "batch_device_s_per_1k_requests": c.batch_device_s_per_1k_requests,
                "auc_gain_per_million_fm_pairs": auc_gain_per_million_pairs(q.vm_solaris.auc, vm_auc,
                                                                            c.budget_pairs)}


@dataclass(frozen=True)
class RunOptions:
    """The report's ``options`` block: the knobs that shaped the numbers."""

    train_windows: int
    staleness_windows: int
    lookback: str
    fm_window: str
    speculator: str
    distill_label_weight: float
    vm_epochs: int
    seed: int

    @classmethod
    def of(cls, opts: EvalOptions, speculator: Path | str) -> RunOptions:
        """``opts`` with the speculator actually used (a version folder or ``heuristic``)."""
        return cls(opts.train_windows, opts.staleness_windows, opts.lookback, opts.fm_window, str(speculator),
                   opts.distill_label_weight, opts.vm_training.epochs, opts.vm_training.seed)


@dataclass(frozen=True)
class RunReport:
    """One test horizon of the evaluation (an entry of ``runs``).

    Attributes:
        at: T, the horizon's start, UTC ISO.
        variants: the headline variants' metrics on this horizon alone (report names).
        budgets: the sweep on this horizon, smallest budget first.
        staleness: T's snapshot serving later windows.
        cost: precompute vs online FM.
        split: where each model's data came from.
        windows: the serving windows' snapshots.
        speculator: the speculator that planned them (a version folder or ``heuristic``).
        seconds: wall seconds of this horizon (timing).
    """

    at: str
    variants: dict[str, Metrics]
    budgets: tuple[BudgetResult, ...]
    staleness: tuple[StaleWindow, ...]
    cost: Cost
    split: SplitSummary
    windows: tuple[ServedWindow, ...]
    speculator: str
    seconds: float

    def to_json(self) -> dict:
        """The ``runs`` entry of ``report.json``."""
        return {"at": self.at, **{k: asdict(m) for k, m in self.variants.items()},
                "budgets": [b.to_json(self.variants["vm"].auc) for b in self.budgets],
                "staleness": [asdict(w) for w in self.staleness], "cost": asdict(self.cost),
                "split": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.split).items()},
                "windows": [asdict(w) for w in self.windows], "speculator": self.speculator,
                "seconds": self.seconds}


@dataclass(frozen=True)
class Report:
    """Everything one ``solaris evaluate`` run found, pooled over its test horizons.

    Attributes:
        at: the test horizons' starts T, UTC ISO, ascending.
        horizon: the horizon (and serving-window) length, e.g. ``1h``.
        budget: the headline budget; its entry of ``budgets`` gives ``vm_solaris`` and the headline rates.
        variants: the headline variants' pooled metrics, by report name (``variants.headline_names``).
        fm_fresh: the fresh FM's own click probabilities (reference).
        best: the best SOLARIS-fed variant, with its paired-bootstrap intervals.
        budgets: the pooled sweep, smallest budget first.
        runs: each horizon's own numbers.
        options: the knobs used.
        seconds: wall seconds of the whole run (timing).
    """

    at: tuple[str, ...]
    horizon: str
    budget: str
    variants: dict[str, Metrics]
    fm_fresh: Metrics
    best: BestSolaris
    budgets: tuple[BudgetResult, ...]
    runs: tuple[RunReport, ...]
    options: RunOptions
    seconds: float

    @property
    def head(self) -> BudgetResult:
        """The headline budget's entry of the sweep."""
        return next(b for b in self.budgets if b.budget == self.budget)

    @property
    def vm_solaris(self) -> Metrics:
        """The VM fed by the headline budget's snapshots."""
        return self.variants["vm_solaris"]

    def cost_per_gain(self) -> dict:
        """The report's ``cost_per_gain`` block: AUC gain per million FM pairs of FM everywhere (the FM
        on every scored row of the horizons) and the budget where the sweep's marginal gain per FM
        pair halves (``knee.__doc__``)."""
        vm, rows = self.variants["vm"].auc, sum(r.cost.horizon_rows for r in self.runs)
        k = knee([b.cost.budget_pairs for b in self.budgets], [b.quality.vm_solaris.auc for b in self.budgets], vm)
        return {"fm_everywhere_pairs": rows,
                "fm_everywhere_auc_gain_per_million_fm_pairs": auc_gain_per_million_pairs(
                    self.variants["vm_fm_all"].auc, vm, rows),
                "marginal_gain_halves_at": None if k is None else self.budgets[k].budget}

    def to_json(self) -> dict:
        """``report.json``: plain JSON values, keys in the documented order."""
        head, vm = self.head, self.variants["vm"].auc
        return {
            "at": list(self.at), "horizon": self.horizon, "budget": self.budget,
            **{k: asdict(m) for k, m in self.variants.items()},
            "hit_rate": head.cost.hit_rate, "recovered_gain": head.quality.recovered_gain,
            "fm_pairs_per_hit": head.cost.fm_pairs_per_hit,
            "fm_fresh": asdict(self.fm_fresh),
            "best_solaris": self.best.to_json(),
            "budgets": [b.to_json(vm) for b in self.budgets],
            "cost_per_gain": self.cost_per_gain(),
            "runs": [r.to_json() for r in self.runs],
            "options": asdict(self.options),
            "seconds": self.seconds,
        }


def _f(v, fmt: str = ".4f") -> str:
    """``v`` formatted, or ``n/a`` for None."""
    return "n/a" if v is None else format(v, fmt)


def _verdict(best: BestSolaris, other: str) -> str:
    """Whether ``best`` beats ``other``, as its interval says."""
    ci = best.auc_diff_ci95.get(other)
    if ci is None:
        return f"vs {LABELS[other]}: undefined"
    word = "beats" if ci[0] > 0 else ("loses to" if ci[1] < 0 else "is not separable from")
    return f"{word} {LABELS[other]} (AUC difference [{ci[0]:+.4f}, {ci[1]:+.4f}])"


def markdown(r: Report) -> str:
    """The report for a person deciding whether to deploy."""
    n_imp = sum(x.split.test_impressions for x in r.runs)
    n_clk = sum(x.split.test_clicks for x in r.runs)
    lines = [
        f"# SOLARIS evaluation at {', '.join(r.at)} (horizon {r.horizon}, budget {r.budget})", "",
        f"{len(r.runs)} test horizon(s) pooled: {n_imp:,} impressions, {n_clk:,} clicks. Each horizon's VMs train"
        f" on the {r.options.train_windows} serving windows before it; its FM and speculator on data before those.",
        "", "## Click prediction on the test horizons", "",
        "| variant | AUC | NE |", "| --- | ---: | ---: |",
    ]
    for v, m in {**r.variants, "fm_fresh": r.fm_fresh}.items():
        lines.append(f"| {LABELS[v]} | {_f(m.auc)} | {_f(m.ne)} |")
    b, head = r.best, r.head
    lines += [
        "", f"Best SOLARIS-fed variant: **{LABELS[b.variant]}**, AUC {_f(b.auc)}, recovering"
        f" **{_f(b.recovered_gain, '.1%')}** of the ceiling's AUC gain over the VM. 95% paired-bootstrap intervals"
        " over test requests: it " + "; it ".join(_verdict(b, o) for o in b.auc_diff_ci95) + ".",
        "", f"At budget {r.budget} the snapshots served **{_f(head.cost.hit_rate, '.1%')}** of the horizons' scored"
        f" rows, at {_f(head.cost.fm_pairs_per_hit, '.2f')} FM pairs computed per served hit.", "",
        "## Budget sweep: recovered gain and cost", "",
        "| budget | planned pairs | hit rate | impression hit rate | AUC | NE | recovered gain | FM pairs / hit"
        " | wasted pairs | AUC gain / 1M FM pairs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    vm = r.variants["vm"].auc
    for x in r.budgets:
        bc, q = x.cost, x.quality
        lines.append(f"| {bc.budget} | {bc.budget_pairs:,} | {_f(bc.hit_rate, '.3f')} |"
                     f" {_f(q.impression_hit_rate, '.3f')} | {_f(q.vm_solaris.auc)} |"
                     f" {_f(q.vm_solaris.ne)} | {_f(q.recovered_gain, '.1%')} |"
                     f" {_f(bc.fm_pairs_per_hit, '.2f')} | {bc.wasted_share:.1%} |"
                     f" {_f(auc_gain_per_million_pairs(q.vm_solaris.auc, vm, bc.budget_pairs), '.4f')} |")
    g = r.cost_per_gain()
    lines += ["", f"FM on every scored row ({g['fm_everywhere_pairs']:,} pairs): "
              f"{_f(g['fm_everywhere_auc_gain_per_million_fm_pairs'], '.4f')} AUC per 1M FM pairs. The marginal gain"
              f" per FM pair halves at budget **{g['marginal_gain_halves_at'] or 'none of the sweep'}**."]
    for x in r.runs:
        c = x.cost
        lines += [
            "", f"## Horizon {x.at}", "",
            f"VM {_f(x.variants['vm'].auc)}, distilled {_f(x.variants['vm_distilled'].auc)}, + SOLARIS"
            f" {_f(x.variants['vm_solaris'].auc)}, hybrid {_f(x.variants['vm_solaris_distilled'].auc)}, ceiling"
            f" {_f(x.variants['vm_fm_all'].auc)} (AUC). Speculator: {x.speculator}.", "",
            "| hours after T | impressions | hit rate | AUC VM | AUC VM + SOLARIS | AUC VM + fresh FM | gap |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for w in x.staleness:
            a, bb = w.vm_solaris.auc, w.vm_fm_all.auc
            gap = None if a is None or bb is None else bb - a
            lines.append(f"| {w.hours_after:g} | {w.impressions:,} | {w.hit_rate:.3f} | {_f(w.vm.auc)} |"
                         f" {_f(a)} | {_f(bb)} | {_f(gap)} |")
        lines += [
            "", f"Cost ({c.device}): batch FM {c.batch_pairs_per_s:,.0f} pairs/s; precompute at {r.budget}"
            f" {_f(c.batch_device_s_per_1k_requests, '.4f')} device-s per 1k requests ({c.horizon_requests:,}"
            f" requests); FM online p50 {_f(c.online_fm_ms_per_request_p50, '.2f')} ms, p99"
            f" {_f(c.online_fm_ms_per_request_p99, '.2f')} ms per request,"
            f" **{_f(c.online_over_batch, '.1f')}x** the precompute cost, and on the latency path.",
        ]
    lines += ["", "Plots: `auc_by_variant.png`, `recovered_gain.png`, `staleness.png` (first horizon), `cost.png`.",
              ""]
    return "\n".join(lines)


def plot(r: Report, out: Path) -> list[Path]:
    """Write ``auc_by_variant.png``, ``recovered_gain.png``, ``staleness.png`` and ``cost.png`` into
    ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    variants = r.variants
    fig, ax = plt.subplots(figsize=(9, 3.8))
    vals = [m.auc or 0.5 for m in variants.values()]
    ax.bar([LABELS[n].replace(" (ceiling)", "\n(ceiling)").replace(", ", ",\n") for n in variants], vals,
           color=["#999", "#c99", "#3a7", "#5b9", "#7c8", "#36c"])
    lo = min(vals) - 0.02
    ax.set_ylim(lo, max(vals) + 0.01)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("test AUC")
    ax.set_title(f"Click AUC by variant (budget {r.budget}, hit rate {r.head.cost.hit_rate:.1%})")
    ax.tick_params(axis="x", labelsize=8)
    save(fig, "auc_by_variant.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    pts = [(b.cost.hit_rate, b.quality.recovered_gain, b.budget) for b in r.budgets
           if b.quality.recovered_gain is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        for x, y, b in pts:
            ax.annotate(b, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("request hit rate")
    ax.set_ylabel("share of the ceiling's AUC gain")
    ax.set_title("Recovered gain vs hit rate (budget sweep)")
    save(fig, "recovered_gain.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    st = r.runs[0].staleness
    h = [w.hours_after for w in st]
    for label, auc_of in (("VM", lambda w: w.vm.auc), ("VM + SOLARIS (snapshot at T)", lambda w: w.vm_solaris.auc),
                          ("VM + fresh FM", lambda w: w.vm_fm_all.auc)):
        ax.plot(h, [auc_of(w) for w in st], marker="o", label=label)
    ax.set_xlabel("hours after the snapshot's T")
    ax.set_ylabel("AUC")
    ax2 = ax.twinx()
    ax2.plot(h, [w.hit_rate for w in st], color="gray", linestyle=":", label="hit rate")
    ax2.set_ylabel("impression hit rate")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"Quality vs staleness (T = {r.runs[0].at})")
    save(fig, "staleness.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"batch {b.budget}" for b in r.budgets] + ["FM online"]
    online = [x.cost.online_device_s_per_1k_requests for x in r.runs if x.cost.online_device_s_per_1k_requests]
    vals = [b.cost.batch_device_s_per_1k_requests for b in r.budgets] + [sum(online) / max(len(online), 1)]
    ax.bar(labels, vals, color=["#3a7"] * len(r.budgets) + ["#c33"])
    ax.set_yscale("log")
    ax.set_ylabel(f"{r.runs[0].cost.device} seconds per 1k requests")
    ax.set_title("FM compute: precompute vs online")
    save(fig, "cost.png")
    return paths


def write_report(r: Report, out: Path) -> None:
    """Write ``report.json``, ``report.md`` and the plots of ``r`` into ``out``."""
    from solaris_batch.storage import write_json_atomic

    out = Path(out)
    write_json_atomic(r.to_json(), out / "report.json")
    (out / "report.md").write_text(markdown(r))
    plot(r, out)
