"""``solaris evaluate`` end to end on a tiny simulated marketplace: real Spark, torch, snapshots."""

import json
from datetime import timedelta

import numpy as np
import pytest

from solaris_batch.config import Settings
from solaris_batch.errors import ConfigError
from solaris_batch.evaluation.options import EvalOptions
from solaris_batch.evaluation.run import evaluate
from solaris_batch.logs.reader import read_window
from solaris_batch.logs.simulator import SimConfig, simulate
from solaris_batch.monitor import snapshot_pairs
from solaris_batch.speculate.metrics import coverage
from solaris_batch.timeutil import Window, parse_time

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AT = "2026-11-20T10:00"
OPTS = EvalOptions(budgets=("1x", "4x"), budget="2x", train_windows=2, staleness_windows=2, lookback="6h",
                   fm_window="6h", speculator="heuristic", online_requests=20)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("evlogs") / "logs"
    simulate(SimConfig(start="2026-11-20T00:00", hours=12, users=700, ads=250, seed=5), out, progress=False)
    return out


@pytest.fixture(scope="module")
def report(spark, logs, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    evaluate(Settings(data=out / "data", shards=2), logs, AT, out / "report", opts=OPTS)
    return out / "report"


def test_report_has_the_documented_keys_and_files(report):
    r = json.loads((report / "report.json").read_text())
    assert r["at"] == [parse_time(AT).isoformat()] and len(r["runs"]) == 1
    for v in ("vm", "vm_distilled", "vm_solaris", "vm_solaris_user_mean", "vm_solaris_distilled", "vm_fm_all"):
        assert set(r[v]) == {"auc", "ne"} and 0.0 < r[v]["auc"] < 1.0 and r[v]["ne"] > 0
        assert r["runs"][0][v] == r[v]  # one horizon: pooling is the identity
    best = r["best_solaris"]
    assert best["variant"] in ("vm_solaris", "vm_solaris_user_mean", "vm_solaris_distilled")
    assert best["auc"] == max(r[v]["auc"] for v in ("vm_solaris", "vm_solaris_user_mean", "vm_solaris_distilled"))
    assert best["auc_diff_vs_vm_ci95"][0] <= best["auc_diff_vs_vm_ci95"][1]
    assert r["cost_per_gain"]["fm_everywhere_pairs"] == r["runs"][0]["cost"]["horizon_rows"]
    assert 0.0 < r["hit_rate"] < 1.0 and r["fm_pairs_per_hit"] >= 1.0
    assert r["recovered_gain"] is None or isinstance(r["recovered_gain"], float)
    assert [b["budget"] for b in r["budgets"]] == ["1x", "2x", "4x"]
    for f in ("report.md", "auc_by_variant.png", "recovered_gain.png", "staleness.png", "cost.png"):
        assert (report / f).stat().st_size > 0
    assert "VM + SOLARIS" in (report / "report.md").read_text()


def test_split_is_strictly_by_time(report):
    r = json.loads((report / "report.json").read_text())
    s, at = r["runs"][0]["split"], parse_time(AT)
    assert parse_time(s["fm_trained_until"]) <= parse_time(s["vm_train"][0]) == at - timedelta(hours=2)
    assert parse_time(s["latest_train_ts"]) < at <= parse_time(s["earliest_test_ts"]) < at + timedelta(hours=1)
    assert s["train_impressions"] > 0 and s["test_clicks"] > 0


def test_budget_sweep_is_a_prefix_and_matches_an_independent_coverage(report, logs):
    r = json.loads((report / "report.json").read_text())
    sweep, run = r["budgets"], r["runs"][0]
    assert [b["hit_rate"] for b in sweep] == [b["hit_rate"] for b in run["budgets"]]
    assert [b["budget_pairs"] for b in sweep] == sorted(b["budget_pairs"] for b in sweep)
    assert [b["hit_rate"] for b in sweep] == sorted(b["hit_rate"] for b in sweep)
    # The largest budget is the whole T snapshot: its hit rate is the monitor's coverage of it.
    sid = run["windows"][-1]["snapshot_id"]
    pu, pa_ = snapshot_pairs(str(report / "snapshots"), "fm", sid)
    t = read_window(logs, Window.after(parse_time(AT), timedelta(hours=1)), columns=["user_id", "ad_id"])
    cov = coverage(pu, pa_, t.column("user_id").to_numpy(), t.column("ad_id").to_numpy())
    assert sweep[-1]["budget_pairs"] == cov["planned_pairs"]
    assert sweep[-1]["hit_rate"] == pytest.approx(cov["request_hit_rate"], abs=1e-6)
    assert 1 - sweep[-1]["wasted_share"] == pytest.approx(cov["precision"], abs=1e-6)
    for b in sweep:
        hits = b["hit_rate"] * run["cost"]["horizon_rows"]
        assert b["fm_pairs_per_hit"] == pytest.approx(b["budget_pairs"] / hits, rel=1e-4)
    assert run["cost"]["horizon_rows"] == t.num_rows


def test_staleness_windows_follow_the_test_snapshot(report):
    run = json.loads((report / "report.json").read_text())["runs"][0]
    st = run["staleness"]
    assert [w["window"] for w in st] == [0, 1]
    assert st[0]["impressions"] == run["split"]["test_impressions"]
    assert st[0]["vm_solaris"] == run["vm_solaris"] and st[0]["vm_fm_all"] == run["vm_fm_all"]
    assert np.isfinite(run["cost"]["online_fm_ms_per_request_p50"]) and run["cost"]["batch_pairs_per_s"] > 0


def test_an_fm_trained_on_the_test_horizon_is_refused(logs, tmp_path):
    from solaris_batch.model.train import train_fm

    train_fm(logs, "2026-11-20T11:00", tmp_path / "fm", window="2h", max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="seen the test horizon"):
        evaluate(Settings(data=tmp_path / "data"), logs, AT, tmp_path / "r", model=tmp_path / "fm", opts=OPTS)
