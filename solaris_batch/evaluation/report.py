"""Write an evaluation report: ``report.json`` (machine-readable), ``report.md`` and plots."""

from __future__ import annotations

from pathlib import Path

LABELS = {"vm": "VM alone", "vm_solaris": "VM + SOLARIS", "vm_fm_all": "VM + FM on every pair (ceiling)",
          "vm_distilled": "VM distilled from the FM", "fm_fresh": "FM alone, online (reference)"}


def _f(v, fmt: str = ".4f") -> str:
    return "n/a" if v is None else format(v, fmt)


def markdown(r: dict) -> str:
    """The report for a person deciding whether to deploy."""
    c, s = r["cost"], r["split"]
    lines = [
        f"# SOLARIS evaluation at {r['at']} (horizon {r['horizon']}, budget {r['budget']})", "",
        f"Test horizon: {s['test_impressions']:,} impressions, {s['test_clicks']:,} clicks. VMs trained on"
        f" {s['train_impressions']:,} impressions ({s['train_clicks']:,} clicks) in {s['vm_train'][0]} .."
        f" {s['vm_train'][1]}; FM trained until {s['fm_trained_until']}.", "",
        "## Click prediction on the test horizon", "",
        "| variant | AUC | NE |", "| --- | ---: | ---: |",
    ]
    for v in ("vm", "vm_distilled", "vm_solaris", "vm_fm_all", "fm_fresh"):
        lines.append(f"| {LABELS[v]} | {_f(r[v]['auc'])} | {_f(r[v]['ne'])} |")
    ci = r.get("auc_diff_ci95") or {}
    if ci:
        lines += ["", "AUC differences, 95% paired bootstrap intervals over test requests: " + "; ".join(
            f"{k.replace('-', ' - ')} [{v[0]:+.4f}, {v[1]:+.4f}]" for k, v in ci.items() if v) + "."]
    lines += [
        "", f"At budget {r['budget']} the snapshot served **{_f(r['hit_rate'], '.1%')}** of the horizon's scored"
        f" rows and VM + SOLARIS recovers **{_f(r['recovered_gain'], '.1%')}** of the ceiling's AUC gain over"
        f" the VM, at {_f(r['fm_pairs_per_hit'], '.2f')} FM pairs computed per served hit.", "",
        "## Budget sweep: recovered gain vs hit rate", "",
        "| budget | planned pairs | hit rate | impression hit rate | AUC | NE | recovered gain | FM pairs / hit"
        " | wasted pairs | device-s / 1k requests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for b in r["budgets"]:
        lines.append(f"| {b['budget']} | {b['budget_pairs']:,} | {_f(b['hit_rate'], '.3f')} |"
                     f" {_f(b['impression_hit_rate'], '.3f')} | {_f(b['vm_solaris']['auc'])} |"
                     f" {_f(b['vm_solaris']['ne'])} | {_f(b['recovered_gain'], '.1%')} |"
                     f" {_f(b['fm_pairs_per_hit'], '.2f')} | {b['wasted_share']:.1%} |"
                     f" {_f(b['batch_device_s_per_1k_requests'], '.4f')} |")
    lines += [
        "", "## Staleness: the test snapshot serving later windows without refresh", "",
        "| hours after T | impressions | hit rate | AUC VM | AUC VM + SOLARIS | AUC VM + fresh FM | gap |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in r["staleness"]:
        a, b = w["vm_solaris"]["auc"], w["vm_fm_all"]["auc"]
        gap = None if a is None or b is None else b - a
        lines.append(f"| {w['hours_after']:g} | {w['impressions']:,} | {w['hit_rate']:.3f} | {_f(w['vm']['auc'])} |"
                     f" {_f(a)} | {_f(b)} | {_f(gap)} |")
    lines += [
        "", f"## Cost ({c['device']})", "",
        f"- Batch FM throughput: {c['batch_pairs_per_s']:,.0f} pairs/s.",
        f"- Precompute at {r['budget']}: {_f(c['batch_device_s_per_1k_requests'], '.4f')} device-seconds per 1k"
        f" requests ({c['horizon_requests']:,} requests, {c['horizon_rows']:,} scored rows in the horizon).",
        f"- FM online per request: p50 {_f(c['online_fm_ms_per_request_p50'], '.2f')} ms, p99"
        f" {_f(c['online_fm_ms_per_request_p99'], '.2f')} ms, {_f(c['online_device_s_per_1k_requests'], '.3f')}"
        f" device-seconds per 1k requests: **{_f(c['online_over_batch'], '.1f')}x** the precompute cost, and on"
        " the latency path.",
        "", "Plots: `auc_by_variant.png`, `recovered_gain.png`, `staleness.png`, `cost.png`.", "",
    ]
    return "\n".join(lines)


def plot(r: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)

    names = ["vm", "vm_distilled", "vm_solaris", "vm_fm_all"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    vals = [r[n]["auc"] or 0.5 for n in names]
    ax.bar([LABELS[n].replace(" (ceiling)", "\n(ceiling)") for n in names], vals,
           color=["#999", "#c99", "#3a7", "#36c"])
    lo = min(vals) - 0.02
    ax.set_ylim(lo, max(vals) + 0.01)
    for i, v in enumerate(vals):
        ax.text(i, v, f"{v:.4f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("test AUC")
    ax.set_title(f"Click AUC by variant (budget {r['budget']}, hit rate {r['hit_rate']:.1%})")
    ax.tick_params(axis="x", labelsize=8)
    save(fig, "auc_by_variant.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    pts = [(b["hit_rate"], b["recovered_gain"], b["budget"]) for b in r["budgets"] if b["recovered_gain"] is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        for x, y, b in pts:
            ax.annotate(b, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set_xlabel("request hit rate")
    ax.set_ylabel("share of the ceiling's AUC gain")
    ax.set_title("Recovered gain vs hit rate (budget sweep)")
    save(fig, "recovered_gain.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    st = r["staleness"]
    h = [w["hours_after"] for w in st]
    for key, label in (("vm", "VM"), ("vm_solaris", "VM + SOLARIS (snapshot at T)"), ("vm_fm_all", "VM + fresh FM")):
        ax.plot(h, [w[key]["auc"] for w in st], marker="o", label=label)
    ax.set_xlabel("hours after the snapshot's T")
    ax.set_ylabel("AUC")
    ax2 = ax.twinx()
    ax2.plot(h, [w["hit_rate"] for w in st], color="gray", linestyle=":", label="hit rate")
    ax2.set_ylabel("impression hit rate")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Quality vs staleness")
    save(fig, "staleness.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"batch {b['budget']}" for b in r["budgets"]] + ["FM online"]
    vals = [b["batch_device_s_per_1k_requests"] for b in r["budgets"]] + [r["cost"]["online_device_s_per_1k_requests"] or 0]
    ax.bar(labels, vals, color=["#3a7"] * len(r["budgets"]) + ["#c33"])
    ax.set_yscale("log")
    ax.set_ylabel(f"{r['cost']['device']} seconds per 1k requests")
    ax.set_title("FM compute: precompute vs online")
    save(fig, "cost.png")
    return paths


def write_report(r: dict, out: Path) -> None:
    from solaris_batch.storage import write_json_atomic

    out = Path(out)
    write_json_atomic(r, out / "report.json")
    (out / "report.md").write_text(markdown(r))
    plot(r, out)
