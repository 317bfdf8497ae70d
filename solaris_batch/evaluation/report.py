"""The typed evaluation report and its renderings: ``report.json``, ``report.md`` and plots.

``Report.to_json`` is the machine-readable contract (``../shared/OUTPUTS.md``): the per-variant
``{"auc", "ne"}`` of ``vm``, ``vm_fm_all``, ``vm_distilled`` and ``vm_solaris`` (the headline
budget's), ``hit_rate``, ``recovered_gain``, ``fm_pairs_per_hit``, and the ``budgets``, ``staleness``,
``cost``, ``split``, ``windows`` and ``options`` blocks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from solaris_batch.evaluation.cost import BudgetCost, Cost
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.serve import ServedWindow
from solaris_batch.evaluation.split import SplitSummary
from solaris_batch.evaluation.variants import BudgetQuality, Metrics, StaleWindow

LABELS = {"vm": "VM alone", "vm_solaris": "VM + SOLARIS", "vm_fm_all": "VM + FM on every pair (ceiling)",
          "vm_distilled": "VM distilled from the FM", "fm_fresh": "FM alone, online (reference)"}


@dataclass(frozen=True)
class BudgetResult:
    """One budget of the sweep: its coverage and cost, and what it buys the VM."""

    cost: BudgetCost
    quality: BudgetQuality

    @property
    def budget(self) -> str:
        """The budget, as given."""
        return self.cost.budget

    def to_json(self) -> dict:
        """The sweep entry of ``report.json``."""
        c, q = self.cost, self.quality
        return {"budget": c.budget, "budget_pairs": c.budget_pairs, "hit_rate": c.hit_rate,
                "impression_hit_rate": q.impression_hit_rate, "vm_solaris": asdict(q.vm_solaris),
                "recovered_gain": q.recovered_gain, "fm_pairs_per_hit": c.fm_pairs_per_hit,
                "wasted_pairs": c.wasted_pairs, "wasted_share": c.wasted_share,
                "batch_device_s_per_1k_requests": c.batch_device_s_per_1k_requests}


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
class Report:
    """Everything one ``solaris evaluate`` run found.

    Attributes:
        at: T, the test horizon's start, UTC ISO.
        horizon: the horizon (and serving-window) length, e.g. ``1h``.
        budget: the headline budget; its entry of ``budgets`` gives ``vm_solaris`` and the headline rates.
        vm: the VM alone on the test horizon.
        vm_fm_all: the VM fed a fresh FM embedding for every impression (the ceiling).
        vm_distilled: the VM trained on clicks blended with FM probabilities.
        fm_fresh: the fresh FM's own click probabilities (reference).
        auc_diff_ci95: ``"vm_solaris-<other>"`` -> 95% paired-bootstrap interval of the AUC difference.
        budgets: the sweep, smallest budget first.
        staleness: T's snapshot serving later windows.
        cost: precompute vs online FM.
        split: where each model's data came from.
        windows: the serving windows' snapshots.
        options: the knobs used.
        seconds: wall seconds of the whole run (timing).
    """

    at: str
    horizon: str
    budget: str
    vm: Metrics
    vm_fm_all: Metrics
    vm_distilled: Metrics
    fm_fresh: Metrics
    auc_diff_ci95: dict[str, tuple[float, float] | None]
    budgets: tuple[BudgetResult, ...]
    staleness: tuple[StaleWindow, ...]
    cost: Cost
    split: SplitSummary
    windows: tuple[ServedWindow, ...]
    options: RunOptions
    seconds: float

    @property
    def head(self) -> BudgetResult:
        """The headline budget's entry of the sweep."""
        return next(b for b in self.budgets if b.budget == self.budget)

    @property
    def vm_solaris(self) -> Metrics:
        """The VM fed by the headline budget's snapshots."""
        return self.head.quality.vm_solaris

    @property
    def variants(self) -> dict[str, Metrics]:
        """The four VM variants, in the order they are shown: alone, distilled, + SOLARIS, ceiling."""
        return {"vm": self.vm, "vm_distilled": self.vm_distilled, "vm_solaris": self.vm_solaris,
                "vm_fm_all": self.vm_fm_all}

    def to_json(self) -> dict:
        """``report.json``: plain JSON values, keys in the documented order."""
        head = self.head
        return {
            "at": self.at, "horizon": self.horizon, "budget": self.budget,
            "vm": asdict(self.vm), "vm_fm_all": asdict(self.vm_fm_all), "vm_distilled": asdict(self.vm_distilled),
            "vm_solaris": asdict(self.vm_solaris),
            "hit_rate": head.cost.hit_rate, "recovered_gain": head.quality.recovered_gain,
            "fm_pairs_per_hit": head.cost.fm_pairs_per_hit,
            "fm_fresh": asdict(self.fm_fresh),
            "auc_diff_ci95": {k: None if v is None else list(v) for k, v in self.auc_diff_ci95.items()},
            "budgets": [b.to_json() for b in self.budgets],
            "staleness": [asdict(w) for w in self.staleness],
            "cost": asdict(self.cost),
            "split": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.split).items()},
            "windows": [asdict(w) for w in self.windows],
            "options": asdict(self.options),
            "seconds": self.seconds,
        }


def _f(v, fmt: str = ".4f") -> str:
    """``v`` formatted, or ``n/a`` for None."""
    return "n/a" if v is None else format(v, fmt)


def markdown(r: Report) -> str:
    """The report for a person deciding whether to deploy."""
    c, s = r.cost, r.split
    lines = [
        f"# SOLARIS evaluation at {r.at} (horizon {r.horizon}, budget {r.budget})", "",
        f"Test horizon: {s.test_impressions:,} impressions, {s.test_clicks:,} clicks. VMs trained on"
        f" {s.train_impressions:,} impressions ({s.train_clicks:,} clicks) in {s.vm_train[0]} .."
        f" {s.vm_train[1]}; FM trained until {s.fm_trained_until}.", "",
        "## Click prediction on the test horizon", "",
        "| variant | AUC | NE |", "| --- | ---: | ---: |",
    ]
    for v, m in {**r.variants, "fm_fresh": r.fm_fresh}.items():
        lines.append(f"| {LABELS[v]} | {_f(m.auc)} | {_f(m.ne)} |")
    if r.auc_diff_ci95:
        lines += ["", "AUC differences, 95% paired bootstrap intervals over test requests: " + "; ".join(
            f"{k.replace('-', ' - ')} [{v[0]:+.4f}, {v[1]:+.4f}]" for k, v in r.auc_diff_ci95.items() if v) + "."]
    head = r.head
    lines += [
        "", f"At budget {r.budget} the snapshot served **{_f(head.cost.hit_rate, '.1%')}** of the horizon's scored"
        f" rows and VM + SOLARIS recovers **{_f(head.quality.recovered_gain, '.1%')}** of the ceiling's AUC gain"
        f" over the VM, at {_f(head.cost.fm_pairs_per_hit, '.2f')} FM pairs computed per served hit.", "",
        "## Budget sweep: recovered gain vs hit rate", "",
        "| budget | planned pairs | hit rate | impression hit rate | AUC | NE | recovered gain | FM pairs / hit"
        " | wasted pairs | device-s / 1k requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in r.budgets:
        bc, q = b.cost, b.quality
        lines.append(f"| {bc.budget} | {bc.budget_pairs:,} | {_f(bc.hit_rate, '.3f')} |"
                     f" {_f(q.impression_hit_rate, '.3f')} | {_f(q.vm_solaris.auc)} |"
                     f" {_f(q.vm_solaris.ne)} | {_f(q.recovered_gain, '.1%')} |"
                     f" {_f(bc.fm_pairs_per_hit, '.2f')} | {bc.wasted_share:.1%} |"
                     f" {_f(bc.batch_device_s_per_1k_requests, '.4f')} |")
    lines += [
        "", "## Staleness: the test snapshot serving later windows without refresh", "",
        "| hours after T | impressions | hit rate | AUC VM | AUC VM + SOLARIS | AUC VM + fresh FM | gap |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in r.staleness:
        a, b = w.vm_solaris.auc, w.vm_fm_all.auc
        gap = None if a is None or b is None else b - a
        lines.append(f"| {w.hours_after:g} | {w.impressions:,} | {w.hit_rate:.3f} | {_f(w.vm.auc)} |"
                     f" {_f(a)} | {_f(b)} | {_f(gap)} |")
    lines += [
        "", f"## Cost ({c.device})", "",
        f"- Batch FM throughput: {c.batch_pairs_per_s:,.0f} pairs/s.",
        f"- Precompute at {r.budget}: {_f(c.batch_device_s_per_1k_requests, '.4f')} device-seconds per 1k"
        f" requests ({c.horizon_requests:,} requests, {c.horizon_rows:,} scored rows in the horizon).",
        f"- FM online per request: p50 {_f(c.online_fm_ms_per_request_p50, '.2f')} ms, p99"
        f" {_f(c.online_fm_ms_per_request_p99, '.2f')} ms, {_f(c.online_device_s_per_1k_requests, '.3f')}"
        f" device-seconds per 1k requests: **{_f(c.online_over_batch, '.1f')}x** the precompute cost, and on"
        " the latency path.",
        "", "Plots: `auc_by_variant.png`, `recovered_gain.png`, `staleness.png`, `cost.png`.", "",
    ]
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
    fig, ax = plt.subplots(figsize=(7, 3.5))
    vals = [m.auc or 0.5 for m in variants.values()]
    ax.bar([LABELS[n].replace(" (ceiling)", "\n(ceiling)") for n in variants], vals,
           color=["#999", "#c99", "#3a7", "#36c"])
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
    st = r.staleness
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
    ax.set_title("Quality vs staleness")
    save(fig, "staleness.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"batch {b.budget}" for b in r.budgets] + ["FM online"]
    vals = [b.cost.batch_device_s_per_1k_requests for b in r.budgets] + [r.cost.online_device_s_per_1k_requests or 0]
    ax.bar(labels, vals, color=["#3a7"] * len(r.budgets) + ["#c33"])
    ax.set_yscale("log")
    ax.set_ylabel(f"{r.cost.device} seconds per 1k requests")
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
