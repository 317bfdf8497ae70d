"""Backtest report: pooling per-horizon sums into ratios, and the coverage plot."""

from __future__ import annotations

from pathlib import Path


def ratios(hit_rows: int, matched_pairs: int, planned_pairs: int, horizon_rows: int, horizon_pairs: int) -> dict:
    """The three coverage ratios from sums (same definitions as ``speculate.metrics.coverage``)."""
    return {
        "request_hit_rate": hit_rows / horizon_rows if horizon_rows else 0.0,
        "pair_recall": matched_pairs / horizon_pairs if horizon_pairs else 0.0,
        "precision": matched_pairs / planned_pairs if planned_pairs else 0.0,
    }


def pool_results(per_at: list[dict]) -> list[dict]:
    """One row per (strategy, budget) over all horizons: sums of rows and pairs, then ratios.

    ``budget_pairs`` and ``planned_pairs`` are totals over the horizons.
    """
    keys: dict[tuple[str, str], dict] = {}
    for p in per_at:
        for r in p["results"]:
            acc = keys.setdefault((r["strategy"], r["budget"]), {
                "strategy": r["strategy"], "budget": r["budget"], "budget_pairs": 0, "hit_rows": 0,
                "matched_pairs": 0, "planned_pairs": 0, "horizon_rows": 0, "horizon_pairs": 0})
            for k in ("budget_pairs", "hit_rows", "matched_pairs", "planned_pairs"):
                acc[k] += r[k]
            acc["horizon_rows"] += p["horizon_rows"]
            acc["horizon_pairs"] += p["horizon_pairs"]
    out = []
    for acc in keys.values():
        out.append({"strategy": acc["strategy"], "budget": acc["budget"], "budget_pairs": acc["budget_pairs"],
                    **ratios(acc["hit_rows"], acc["matched_pairs"], acc["planned_pairs"], acc["horizon_rows"],
                             acc["horizon_pairs"]),
                    "planned_pairs": acc["planned_pairs"], "hit_rows": acc["hit_rows"]})
    return out


def lift(report: dict, budget: str) -> float | None:
    """Relative request-hit-rate gain of ``learned`` over the better baseline at ``budget``."""
    by = {r["strategy"]: r["request_hit_rate"] for r in report["results"] if r["budget"] == budget}
    base = max((v for k, v in by.items() if k != "learned"), default=None)
    if "learned" not in by or not base:
        return None
    return by["learned"] / base - 1.0


def plot_coverage(report: dict, path: Path) -> Path:
    """Request hit rate vs budget, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    strategies = list(dict.fromkeys(r["strategy"] for r in report["results"]))
    for s in strategies:
        rs = sorted((r for r in report["results"] if r["strategy"] == s), key=lambda r: r["budget_pairs"])
        ax.plot([r["budget_pairs"] for r in rs], [r["request_hit_rate"] for r in rs], marker="o", label=s)
        for r in rs:
            ax.annotate(r["budget"], (r["budget_pairs"], r["request_hit_rate"]), fontsize=7,
                        textcoords="offset points", xytext=(3, -9))
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("planned pairs (budget, summed over horizons)")
    ax.set_ylabel("request hit rate")
    ax.set_title(f"Speculator backtest: {len(report['at'])} horizon(s) of {report['horizon']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
