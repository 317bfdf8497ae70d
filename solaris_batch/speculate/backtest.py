"""Backtest: replay real horizons against the plans each strategy would have produced.

Strategies: ``learned`` (the speculator: a model trained at each T on windows before T, or the one
the ``SpeculatorChoice`` names; ``heuristic`` forces the fallback score), ``repeat`` (most recent
distinct pairs) and ``popular`` (top ads x active users), the last two from ``baselines``. Every
strategy keeps its top pairs in ``PLAN_ORDER`` and sees the same live-ad filter. Results over
several T are pooled (sums of rows and pairs, then ratios). Writes ``DIR/backtest.json`` and
``DIR/coverage.png``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from solaris_batch.config import DEFAULT_SPECULATOR_WINDOWS
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.channels import (
    ChannelOptions,
    horizon_pairs,
    load_window,
    recent_distinct_pairs,
)
from solaris_batch.speculate.features import candidates
from solaris_batch.speculate.plan import PLAN_ORDER
from solaris_batch.speculate.registry import TRAIN_SPECULATOR, SpeculatorChoice, SpeculatorKind
from solaris_batch.speculate.report import plot_coverage, pool_results
from solaris_batch.storage import write_json_atomic
from solaris_batch.timeutil import format_duration, parse_time, stamp

STRATEGIES = ("learned", "repeat", "popular")


def evaluate(scored, truth, budgets: list[int]) -> list[dict]:
    """Coverage of the top-``b`` pairs of ``scored`` in ``PLAN_ORDER`` for each ``b``.

    Args:
        scored: DataFrame with ``user_id, ad_id, score``.
        truth: DataFrame ``(user_id, ad_id, rows)`` of the horizon (``channels.horizon_pairs``).
        budgets: pair counts.

    Returns:
        One dict per budget: ``budget_pairs``, ``hit_rows``, ``matched_pairs``, ``planned_pairs``
        (sums, not ratios).
    """
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    order = PLAN_ORDER.columns()
    top = scored.select("user_id", "ad_id", "score").orderBy(*order).limit(max(budgets))
    ranked = top.withColumn("rank", F.row_number().over(W.orderBy(*order)))
    j = ranked.join(truth, ["user_id", "ad_id"], "left").fillna({"rows": 0})
    aggs = []
    for i, b in enumerate(budgets):
        inb = F.col("rank") <= b
        aggs += [F.sum(F.when(inb, F.col("rows")).otherwise(0)).alias(f"h{i}"),
                 F.count(F.when(inb & (F.col("rows") > 0), 1)).alias(f"m{i}"),
                 F.count(F.when(inb, 1)).alias(f"p{i}")]
    r = j.agg(*aggs).first()
    return [{"budget_pairs": b, "hit_rows": int(r[f"h{i}"] or 0), "matched_pairs": int(r[f"m{i}"]),
             "planned_pairs": int(r[f"p{i}"])} for i, b in enumerate(budgets)]


def backtest_at(spark, logs: Path, at: datetime, lookback: timedelta, horizon: timedelta, budgets: list[Budget],
                strategies, speculator: SpeculatorChoice, registry_root: Path, opts: ChannelOptions,
                train_windows: int) -> dict:
    """Results of every strategy and budget for one horizon start ``at``."""
    from solaris_batch.speculate import baselines, scoring

    name = None
    if "learned" in strategies and speculator.kind is SpeculatorKind.TRAIN:  # first: training registers its own views
        meta = scoring.train(spark, logs, at, registry_root, lookback, horizon, windows=train_windows, opts=opts)
        speculator = SpeculatorChoice.version(registry_root / meta.version)
    load_window(spark, logs, at, lookback)
    recent = recent_distinct_pairs(spark, at, horizon) if any(b.needs_recent_pairs for b in budgets) else 0
    sizes = [b.resolve(recent) for b in budgets]
    truth = horizon_pairs(spark, logs, at, horizon).cache()
    tot = truth.agg({"rows": "sum", "*": "count"}).first()
    horizon_rows, horizon_pairs_n = int(tot["sum(rows)"] or 0), int(tot["count(1)"])
    out = {"at": at.isoformat(), "horizon_rows": horizon_rows, "horizon_pairs": horizon_pairs_n, "results": []}
    cands = candidates(spark, at, horizon, lookback, opts).cache()
    for strategy in strategies:
        if strategy == "learned":
            scored, name = scoring.score(cands, speculator, registry_root)
        elif strategy == "repeat":
            scored = baselines.repeat_scores(spark)
        elif strategy == "popular":
            scored = baselines.popular_scores(spark, max(sizes))
        else:
            raise ValueError(strategy)
        for b, r in zip(budgets, evaluate(scored, truth, sizes), strict=True):
            out["results"].append({"strategy": strategy, "budget": str(b), **r})
        print(f"backtest: {stamp(at)} {strategy} done", file=sys.stderr)
    out["speculator"] = name
    spark.catalog.clearCache()
    return out


def run(spark, logs: Path, ats: list[datetime], lookback: timedelta, horizon: timedelta, budgets: list[Budget],
        out: Path, strategies=STRATEGIES, speculator: SpeculatorChoice = TRAIN_SPECULATOR,
        registry_root: Path | None = None, train_windows: int = DEFAULT_SPECULATOR_WINDOWS,
        opts: ChannelOptions | None = None) -> dict:
    """Backtest every ``at`` and write ``out/backtest.json`` and ``out/coverage.png``.

    Args:
        spark: the SparkSession.
        logs: request-log root.
        ats: horizon starts (UTC).
        lookback: log window mined before each start.
        horizon: window each plan serves.
        budgets: the budgets swept (counts or multiples).
        out: report folder.
        strategies: a subset of ``STRATEGIES``.
        speculator: the ``learned`` strategy's model: ``TRAIN`` (default) trains one at each start on
            the ``train_windows`` windows before it; else heuristic, latest or a version folder.
        registry_root: registry for ``latest``, or where trained versions go (default
            ``out/speculator``).
        train_windows: windows each trained model learns from.
        opts: channel knobs.

    Returns:
        The report: ``at``, ``horizon``, ``lookback``, ``horizon_rows``, ``horizon_pairs``,
        ``speculator`` (per start), pooled ``results`` (per strategy and budget) and ``per_at``.
    """
    opts = opts or ChannelOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    registry_root = Path(registry_root) if registry_root else out / "speculator"
    per_at = [backtest_at(spark, logs, parse_time(a), lookback, horizon, list(budgets), strategies, speculator,
                          registry_root, opts, train_windows) for a in ats]
    report = {"at": [p["at"] for p in per_at], "horizon": format_duration(horizon),
              "lookback": format_duration(lookback),
              "horizon_rows": sum(p["horizon_rows"] for p in per_at),
              "horizon_pairs": sum(p["horizon_pairs"] for p in per_at),
              "speculator": [p["speculator"] for p in per_at],
              "results": pool_results(per_at), "per_at": per_at}
    write_json_atomic(report, out / "backtest.json")
    plot_coverage(report, out / "coverage.png")
    return report
