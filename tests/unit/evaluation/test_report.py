"""The typed report renders report.json in the documented shape, report.md and the plots."""

import json

from solaris_batch.evaluation.cost import BudgetCost, Cost
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.report import BudgetResult, Report, RunOptions, markdown, write_report
from solaris_batch.evaluation.serve import ServedWindow
from solaris_batch.evaluation.split import SplitSummary
from solaris_batch.evaluation.variants import BudgetQuality, Metrics, StaleWindow

TOP_KEYS = ["at", "horizon", "budget", "vm", "vm_fm_all", "vm_distilled", "vm_solaris", "hit_rate", "recovered_gain",
            "fm_pairs_per_hit", "fm_fresh", "auc_diff_ci95", "budgets", "staleness", "cost", "split", "windows",
            "options", "seconds"]


def _report() -> Report:
    def budget(b, pairs, hit, auc, gain):
        return BudgetResult(BudgetCost(b, pairs, hit, 2.0, 10, 0.1, 0.5),
                            BudgetQuality(hit + 0.1, Metrics(auc, 0.9), gain))

    return Report(
        at="2026-11-20T10:00:00+00:00", horizon="1h", budget="2x",
        vm=Metrics(0.70, 0.95), vm_fm_all=Metrics(0.78, 0.85), vm_distilled=Metrics(0.71, 0.96),
        fm_fresh=Metrics(0.8, 0.8),
        auc_diff_ci95={"vm_solaris-vm": (0.01, 0.05), "vm_solaris-vm_distilled": None,
                       "vm_solaris-vm_fm_all": (-0.06, -0.02)},
        budgets=(budget("1x", 100, 0.4, 0.72, 0.25), budget("2x", 200, 0.5, 0.74, 0.5)),
        staleness=(StaleWindow(0, 0.0, "2026-11-20T10:00:00+00:00", 50, 5, 0.6, Metrics(0.7, 0.95),
                               Metrics(0.74, 0.9), Metrics(0.78, 0.85)),),
        cost=Cost("cpu", 1000.0, 40, 400, 300, 1.0, 2.0, 1.1, 0.5, 2.2),
        split=SplitSummary("2026-11-20T08:00:00+00:00", "v1", ("2026-11-20T08:00:00+00:00", "2026-11-20T10:00:00+00:00"),
                           ("2026-11-20T10:00:00+00:00", "2026-11-20T11:00:00+00:00"), 300, 30, 50, 5, 0.1,
                           "2026-11-20T09:59:00+00:00", "2026-11-20T10:00:01+00:00"),
        windows=(ServedWindow("2026-11-20T10:00:00+00:00", "s1", 400, "heuristic-v2", {"1x": 100, "2x": 200}, 3.0),),
        options=RunOptions.of(EvalOptions(train_windows=2), "heuristic"),
        seconds=12.5,
    )


def test_report_json_keys_and_headline_come_from_the_headline_budget():
    j = _report().to_json()
    assert list(j) == TOP_KEYS
    assert j["vm_solaris"] == {"auc": 0.74, "ne": 0.9}  # the 2x entry, not the 1x one
    assert (j["hit_rate"], j["recovered_gain"], j["fm_pairs_per_hit"]) == (0.5, 0.5, 2.0)
    assert j["auc_diff_ci95"]["vm_solaris-vm"] == [0.01, 0.05] and j["auc_diff_ci95"]["vm_solaris-vm_distilled"] is None
    assert list(j["budgets"][0]) == ["budget", "budget_pairs", "hit_rate", "impression_hit_rate", "vm_solaris",
                                     "recovered_gain", "fm_pairs_per_hit", "wasted_pairs", "wasted_share",
                                     "batch_device_s_per_1k_requests"]
    assert list(j["staleness"][0]) == ["window", "hours_after", "start", "impressions", "clicks", "hit_rate", "vm",
                                       "vm_solaris", "vm_fm_all"]
    assert list(j["cost"]) == ["device", "batch_pairs_per_s", "horizon_requests", "horizon_rows", "horizon_pairs",
                               "online_fm_ms_per_request_p50", "online_fm_ms_per_request_p99",
                               "online_device_s_per_1k_requests", "batch_device_s_per_1k_requests",
                               "online_over_batch"]
    assert j["split"]["vm_train"] == ["2026-11-20T08:00:00+00:00", "2026-11-20T10:00:00+00:00"]
    assert j["windows"][0] == {"at": "2026-11-20T10:00:00+00:00", "snapshot_id": "s1", "plan_pairs": 400,
                               "speculator": "heuristic-v2", "budget_pairs": {"1x": 100, "2x": 200}, "seconds": 3.0}
    assert j["options"] == {"train_windows": 2, "staleness_windows": 4, "lookback": "24h", "fm_window": "24h",
                            "speculator": "heuristic", "distill_label_weight": 0.5, "vm_epochs": 2, "seed": 0}
    assert json.loads(json.dumps(j)) == j  # plain JSON values only


def test_markdown_shows_the_variants_sweep_staleness_and_cost():
    md = markdown(_report())
    assert "| VM + SOLARIS | 0.7400 | 0.9000 |" in md
    assert "| FM alone, online (reference) | 0.8000 | 0.8000 |" in md
    assert "vm_solaris - vm [+0.0100, +0.0500]; vm_solaris - vm_fm_all [-0.0600, -0.0200]." in md
    assert "served **50.0%** of the horizon's scored rows and VM + SOLARIS recovers **50.0%**" in md
    assert "| 1x | 100 | 0.400 | 0.500 | 0.7200 | 0.9000 | 25.0% | 2.00 | 10.0% | 0.5000 |" in md
    assert "| 0 | 50 | 0.600 | 0.7000 | 0.7400 | 0.7800 | 0.0400 |" in md
    assert "**2.2x** the precompute cost" in md


def test_write_report_writes_json_markdown_and_plots(tmp_path):
    r = _report()
    write_report(r, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text()) == r.to_json()
    assert (tmp_path / "report.md").read_text() == markdown(r)
    for f in ("auc_by_variant.png", "recovered_gain.png", "staleness.png", "cost.png"):
        assert (tmp_path / f).stat().st_size > 0
