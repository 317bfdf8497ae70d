"""The typed report renders report.json in the documented shape, report.md and the plots."""

import json

from solaris_batch.evaluation.cost import BudgetCost, Cost
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.report import (
    BudgetResult,
    Report,
    RunOptions,
    RunReport,
    markdown,
    write_report,
)
from solaris_batch.evaluation.serve import ServedWindow
from solaris_batch.evaluation.split import SplitSummary
from solaris_batch.evaluation.variants import BestSolaris, BudgetQuality, Metrics, StaleWindow

VARIANTS = ["vm", "vm_distilled", "vm_solaris", "vm_solaris_user_mean", "vm_solaris_distilled", "vm_fm_all"]
TOP_KEYS = ["at", "horizon", "budget", *VARIANTS, "hit_rate", "recovered_gain", "fm_pairs_per_hit", "fm_fresh",
            "best_solaris", "budgets", "cost_per_gain", "runs", "options", "seconds"]


def _report() -> Report:
    def budget(b, pairs, hit, auc, gain):
        return BudgetResult(BudgetCost(b, pairs, hit, 2.0, 10, 0.1, 0.5, int(hit * 400), 400, 40, 0.02),
                            BudgetQuality(hit + 0.1, Metrics(auc, 0.9), gain))

    variants = dict(zip(VARIANTS, [Metrics(0.70, 0.95), Metrics(0.71, 0.96), Metrics(0.74, 0.9), Metrics(0.735, 0.9),
                                   Metrics(0.75, 0.89), Metrics(0.78, 0.85)], strict=True))
    # AUC 0.70 at 0 pairs, 0.72 at 100 (2e-4 per pair), 0.74 at 200 (2e-4), 0.745 at 400 (2.5e-5: halved)
    sweep = (budget("1x", 100, 0.4, 0.72, 0.25), budget("2x", 200, 0.5, 0.74, 0.5), budget("4x", 400, 0.6, 0.745, 0.56))
    run = RunReport(
        "2026-11-20T10:00:00+00:00", variants, sweep,
        (StaleWindow(0, 0.0, "2026-11-20T10:00:00+00:00", 50, 5, 0.6, Metrics(0.7, 0.95), Metrics(0.74, 0.9),
                     Metrics(0.78, 0.85)),),
        Cost("cpu", 1000.0, 40, 400, 300, 1.0, 2.0, 1.1, 0.5, 2.2),
        SplitSummary("2026-11-20T08:00:00+00:00", "v1", ("2026-11-20T08:00:00+00:00", "2026-11-20T10:00:00+00:00"),
                     ("2026-11-20T10:00:00+00:00", "2026-11-20T11:00:00+00:00"), 300, 30, 50, 5, 0.1,
                     "2026-11-20T09:59:00+00:00", "2026-11-20T10:00:01+00:00"),
        (ServedWindow("2026-11-20T10:00:00+00:00", "s1", 400, "heuristic-v2", {"1x": 100, "2x": 200}, 3.0),),
        "heuristic", 10.0)
    best = BestSolaris("vm_solaris_distilled", 0.75, 0.625,
                       {"vm": (0.01, 0.05), "vm_distilled": (-0.01, 0.03), "vm_fm_all": (-0.06, -0.02)})
    return Report(("2026-11-20T10:00:00+00:00",), "1h", "2x", variants, Metrics(0.8, 0.8), best, sweep, (run,),
                  RunOptions.of(EvalOptions(train_windows=2), "heuristic"), 12.5)


def test_report_json_keys_and_headline_come_from_the_headline_budget():
    j = _report().to_json()
    assert list(j) == TOP_KEYS
    assert j["at"] == ["2026-11-20T10:00:00+00:00"]
    assert j["vm_solaris"] == {"auc": 0.74, "ne": 0.9} and j["vm_solaris_distilled"] == {"auc": 0.75, "ne": 0.89}
    assert (j["hit_rate"], j["recovered_gain"], j["fm_pairs_per_hit"]) == (0.5, 0.5, 2.0)  # the 2x entry
    assert j["best_solaris"] == {"variant": "vm_solaris_distilled", "auc": 0.75, "recovered_gain": 0.625,
                                 "auc_diff_vs_vm_ci95": [0.01, 0.05], "auc_diff_vs_vm_distilled_ci95": [-0.01, 0.03],
                                 "auc_diff_vs_vm_fm_all_ci95": [-0.06, -0.02]}
    assert list(j["budgets"][0]) == ["budget", "budget_pairs", "hit_rate", "impression_hit_rate", "vm_solaris",
                                     "recovered_gain", "fm_pairs_per_hit", "wasted_pairs", "wasted_share",
                                     "batch_device_s_per_1k_requests", "auc_gain_per_million_fm_pairs"]
    # (0.72 - 0.70) / (100 / 1e6) = 200 AUC per million pairs; 2x: 0.04 / 2e-4 = 200
    assert [b["auc_gain_per_million_fm_pairs"] for b in j["budgets"]] == [200.0, 200.0, 112.5]
    # FM everywhere: 400 rows, (0.78 - 0.70) / 4e-4 = 200; the marginal gain halves at 4x
    assert j["cost_per_gain"] == {"fm_everywhere_pairs": 400, "fm_everywhere_auc_gain_per_million_fm_pairs": 200.0,
                                  "marginal_gain_halves_at": "4x"}
    (run,) = j["runs"]
    assert list(run) == ["at", *VARIANTS, "budgets", "staleness", "cost", "split", "windows", "speculator", "seconds"]
    assert list(run["staleness"][0]) == ["window", "hours_after", "start", "impressions", "clicks", "hit_rate", "vm",
                                         "vm_solaris", "vm_fm_all"]
    assert list(run["cost"]) == ["device", "batch_pairs_per_s", "horizon_requests", "horizon_rows", "horizon_pairs",
                                 "online_fm_ms_per_request_p50", "online_fm_ms_per_request_p99",
                                 "online_device_s_per_1k_requests", "batch_device_s_per_1k_requests",
                                 "online_over_batch"]
    assert run["split"]["vm_train"] == ["2026-11-20T08:00:00+00:00", "2026-11-20T10:00:00+00:00"]
    assert run["windows"][0] == {"at": "2026-11-20T10:00:00+00:00", "snapshot_id": "s1", "plan_pairs": 400,
                                 "speculator": "heuristic-v2", "budget_pairs": {"1x": 100, "2x": 200}, "seconds": 3.0}
    assert j["options"] == {"train_windows": 2, "staleness_windows": 4, "lookback": "24h", "fm_window": "24h",
                            "speculator": "heuristic", "distill_label_weight": 0.5, "vm_epochs": 2, "seed": 0}
    assert json.loads(json.dumps(j)) == j  # plain JSON values only


def test_markdown_shows_the_variants_verdicts_sweep_staleness_and_cost():
    md = markdown(_report())
    assert "| VM + SOLARIS | 0.7400 | 0.9000 |" in md
    assert "| VM + SOLARIS, distilled (hybrid) | 0.7500 | 0.8900 |" in md
    assert "| FM alone, online (reference) | 0.8000 | 0.8000 |" in md
    assert ("it beats VM alone (AUC difference [+0.0100, +0.0500]); it is not separable from VM distilled from the FM"
            " (AUC difference [-0.0100, +0.0300]); it loses to VM + FM on every pair (ceiling)") in md
    assert "recovering **62.5%** of the ceiling's AUC gain" in md
    assert "| 1x | 100 | 0.400 | 0.500 | 0.7200 | 0.9000 | 25.0% | 2.00 | 10.0% | 200.0000 |" in md
    assert "halves at budget **4x**" in md
    assert "| 0 | 50 | 0.600 | 0.7000 | 0.7400 | 0.7800 | 0.0400 |" in md
    assert "**2.2x** the precompute cost" in md


def test_write_report_writes_json_markdown_and_plots(tmp_path):
    r = _report()
    write_report(r, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text()) == r.to_json()
    assert (tmp_path / "report.md").read_text() == markdown(r)
    for f in ("auc_by_variant.png", "recovered_gain.png", "staleness.png", "cost.png"):
        assert (tmp_path / f).stat().st_size > 0
