"""Backtest: replay real horizons against the plans each strategy would have produced.

    spark-submit spark_jobs/backtest.py --logs LOGS --at T[,T2,...] --horizon 1h \
        --budgets 0.5x,1x,2x,4x --out DIR [--strategies learned,repeat,popular] [--model DIR]

Strategies: ``learned`` (the speculator: a model trained at each T on windows before T, or the one
given by ``--model``; ``heuristic`` forces the fallback score), ``repeat`` (most recent distinct
pairs) and ``popular`` (top ads x active users). Both baselines see the same live-ad filter as the
speculator. Results over several T are pooled (sums of rows and pairs, then ratios).
Writes ``DIR/backtest.json`` and ``DIR/coverage.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.report import plot_coverage, pool_results
from solaris_batch.storage import write_json_atomic
from solaris_batch.timeutil import format_duration, parse_duration, parse_time, stamp
from spark_jobs.features import (
    ChannelOptions,
    candidates,
    horizon_pairs,
    load_window,
    recent_distinct_pairs,
)

STRATEGIES = ("learned", "repeat", "popular")


def repeat_scores(spark):
    """Baseline ``repeat``: every pair of the lookback on a live ad, most recently scored first.
    Needs the views of ``features.candidates``."""
    return spark.sql("SELECT r.user_id, r.ad_id, CAST(max(unix_micros(r.ts)) AS DOUBLE) AS score"
                     " FROM requests r JOIN live_ads l ON l.ad_id = r.ad_id GROUP BY r.user_id, r.ad_id")


def popular_scores(spark, max_pairs: int):
    """Baseline ``popular``: active users (any request in the lookback) x the most scored live ads,
    score = user requests x ad requests. Each user gets at most ``4 * max_pairs / users`` ads, which
    holds the top ``max_pairs`` products unless activity is extremely skewed. Needs the views of
    ``features.candidates``."""
    n_users = spark.sql("SELECT count(DISTINCT user_id) FROM requests").first()[0]
    k = max(1, math.ceil(4 * max_pairs / max(n_users, 1)))
    return spark.sql(
        "WITH u AS (SELECT user_id, count(DISTINCT request_id) AS n FROM requests GROUP BY user_id),"
        " a AS (SELECT r.ad_id, count(DISTINCT r.request_id) AS n FROM requests r"
        "       JOIN live_ads l ON l.ad_id = r.ad_id GROUP BY r.ad_id ORDER BY n DESC, r.ad_id LIMIT :k)"
        " SELECT u.user_id, a.ad_id, CAST(u.n * a.n AS DOUBLE) AS score FROM u CROSS JOIN a",
        args={"k": k})


def evaluate(scored, truth, budgets: list[int]) -> list[dict]:
    """Coverage of the top-``b`` pairs of ``scored`` (order: score desc, user_id, ad_id, the same
    as the speculate job) for each ``b``: hit rows, matched and planned pairs (sums, not ratios)."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    order = [F.desc("score"), F.asc("user_id"), F.asc("ad_id")]
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


def backtest_at(spark, logs: Path, at, lookback, horizon, budgets: list[Budget], strategies, model: str,
                registry_root: Path | None, opts: ChannelOptions, train_windows: int) -> dict:
    """Results of every strategy and budget for one horizon start ``at``."""
    from spark_jobs import scoring

    model_dir, speculator = None, None
    if "learned" in strategies and model == "train":  # first: training registers its own views
        meta = scoring.train(spark, logs, at, registry_root, lookback, horizon, windows=train_windows, opts=opts)
        model_dir = registry_root / meta.version
    elif model not in ("heuristic", "latest"):
        model_dir = Path(model)
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
            scored, speculator = scoring.score(cands, "heuristic" if model == "heuristic" else model_dir,
                                               registry_root)
        elif strategy == "repeat":
            scored = repeat_scores(spark)
        elif strategy == "popular":
            scored = popular_scores(spark, max(sizes))
        else:
            raise ValueError(strategy)
        for b, r in zip(budgets, evaluate(scored, truth, sizes), strict=True):
            out["results"].append({"strategy": strategy, "budget": str(b), **r})
        print(f"backtest: {stamp(at)} {strategy} done", file=sys.stderr)
    out["speculator"] = speculator
    spark.catalog.clearCache()
    return out


def run(spark, logs: Path, ats: list[str], lookback: str, horizon: str, budgets: str, out: Path,
        strategies=STRATEGIES, model: str = "train", registry_root: Path | None = None, train_windows: int = 4,
        opts: ChannelOptions | None = None) -> dict:
    """Backtest every ``at`` and write ``out/backtest.json`` and ``out/coverage.png``; returns the report."""
    opts = opts or ChannelOptions()
    lb, hz = parse_duration(lookback), parse_duration(horizon)
    bs = [Budget.parse(b) for b in budgets.split(",")] if isinstance(budgets, str) else budgets
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    registry_root = Path(registry_root) if registry_root else out / "speculator"
    per_at = [backtest_at(spark, logs, parse_time(a), lb, hz, bs, strategies, model, registry_root, opts,
                          train_windows) for a in ats]
    report = {"at": [p["at"] for p in per_at], "horizon": format_duration(hz), "lookback": format_duration(lb),
              "horizon_rows": sum(p["horizon_rows"] for p in per_at),
              "horizon_pairs": sum(p["horizon_pairs"] for p in per_at),
              "speculator": [p["speculator"] for p in per_at],
              "results": pool_results(per_at), "per_at": per_at}
    write_json_atomic(report, out / "backtest.json")
    plot_coverage(report, out / "coverage.png")
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backtest", description=__doc__.split("\n")[0])
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--at", required=True, help="comma-separated horizon starts (UTC)")
    p.add_argument("--lookback", default="24h")
    p.add_argument("--horizon", default="1h")
    p.add_argument("--budgets", default="0.5x,1x,2x,4x")
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--model", default="train", help="train (default), latest, heuristic, or a version folder")
    p.add_argument("--registry", type=Path, help="speculator registry (default DIR/speculator when training)")
    p.add_argument("--train-windows", type=int, default=4)
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None, settings=None) -> dict:
    from solaris_batch.config import load_settings
    from spark_jobs.session import get_spark

    a = build_parser().parse_args(argv)
    settings = settings or load_settings()
    spark = get_spark(settings, "solaris-backtest")
    registry_root = a.registry or (None if a.model == "train" else settings.speculator_path)
    return run(spark, a.logs, a.at.split(","), a.lookback, a.horizon, a.budgets, a.out,
               strategies=[s.strip() for s in a.strategies.split(",")], model=a.model, registry_root=registry_root,
               train_windows=a.train_windows)


if __name__ == "__main__":
    from spark_jobs.session import job_entry

    job_entry(main, lambda r: f"backtest: {len(r['at'])} horizon(s), {r['horizon_rows']} rows")
