"""Speculate job: from the lookback window of request logs, plan the pairs of the next horizon.

    spark-submit spark_jobs/speculate.py --logs LOGS --at T --lookback 24h --horizon 1h \
        --budget 2x --out PLAN [--shards 4] [--seq-len 128]

Reads only complete hour partitions (a lookback reaching back before the log's first hour is read
from there, and ``_plan.json`` records where in ``lookback_start``), quarantines malformed rows, gathers candidates from the
channels of ``spark_jobs.features`` (repeats, user activity, ad liveness, co-visitation, faiss
neighbours), scores them with the latest trained speculator (``solaris train-speculator``) or the
heuristic fallback, keeps the top ``budget`` pairs (ties broken by ids, so reruns are identical),
shards them by ``pmod(xxhash64(user_id), shards)`` and writes the plan atomically.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

from solaris_batch.config import Settings, load_settings
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.plan import PlanInfo
from solaris_batch.storage import replace_dir
from solaris_batch.timeutil import format_duration, parse_duration, parse_time
from spark_jobs.session import get_spark, job_entry, sql_text


def run(
    spark,
    logs: Path,
    at: str,
    lookback: str,
    horizon: str,
    budget: str,
    out: Path,
    shards: int = 4,
    seq_len: int = 128,
    per_user_cap: int | None = None,
    model: Path | None = None,
    registry_root: Path | None = None,
) -> PlanInfo:
    """Write the plan for ``[at, at + horizon)`` to ``out`` and return its metadata.

    Scores candidates with the model at ``model``, else the latest one in ``registry_root``, else the
    heuristic (with a warning); keeps the top ``budget`` pairs by score (ties by ids, so reruns are
    identical), at most ``per_user_cap`` per user.
    """
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    from spark_jobs import scoring
    from spark_jobs.features import candidates, load_window, recent_distinct_pairs

    at_dt = parse_time(at)
    lb, hz, bud = parse_duration(lookback), parse_duration(horizon), Budget.parse(budget)
    if per_user_cap is not None and per_user_cap < 1:
        from solaris_batch.errors import ConfigError

        raise ConfigError(f"--per-user-cap must be >= 1, got {per_user_cap}")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        rows_read, quarantined, read = load_window(spark, logs, at_dt, lb, tmp / "_quarantine")
        recent = recent_distinct_pairs(spark, at_dt, hz) if bud.needs_recent_pairs else 0
        budget_pairs = bud.resolve(recent)
        scored, speculator = scoring.score(candidates(spark, at_dt, hz, lb), model, registry_root)
        order = [F.desc("score"), F.asc("user_id"), F.asc("ad_id")]
        if per_user_cap:
            scored = scored.withColumn("_r", F.row_number().over(W.partitionBy("user_id").orderBy(*order))) \
                .filter(F.col("_r") <= per_user_cap)
        plan = (
            scored.orderBy(*order).limit(budget_pairs)
            .select("user_id", "ad_id", F.col("score").cast("float").alias("score"))
            .withColumn("shard", F.pmod(F.xxhash64("user_id"), F.lit(shards)).cast("int"))
            .cache()
        )
        stats = plan.agg(
            F.count("*").alias("pairs"), F.countDistinct("user_id").alias("users"),
            F.bit_xor(F.xxhash64("user_id", "ad_id", "score")).alias("fp"),
        ).first()
        if stats.pairs == 0:
            from solaris_batch.errors import EmptyWindow

            raise EmptyWindow(f"no candidate pairs in {read}: every ad seen there has expired")
        (plan.repartition("shard").sortWithinPartitions("shard", "user_id", "ad_id")
             .write.partitionBy("shard").parquet(str(tmp / "pairs")))
        shard_pairs = {str(r.shard): r["count"] for r in plan.groupBy("shard").count().collect()}

        plan.select("user_id").distinct().createOrReplaceTempView("planned_users")
        users = spark.sql(sql_text("user_sequences.sql"), args={"seq_len": seq_len}) \
            .withColumn("shard", F.pmod(F.xxhash64("user_id"), F.lit(shards)).cast("int"))
        (users.repartition("shard").sortWithinPartitions("shard", "user_id")
              .write.partitionBy("shard").parquet(str(tmp / "users")))
        users.createOrReplaceTempView("plan_users")
        plan.createOrReplaceTempView("plan_pairs_v")
        ads = spark.sql(
            "SELECT u.ad_id, CAST(a.category_id AS INT) AS category_id FROM ("
            " SELECT ad_id FROM plan_pairs_v UNION SELECT explode(seq_ad_id) AS ad_id FROM plan_users) u"
            " LEFT JOIN ads a ON a.ad_id = u.ad_id"
        )
        ads.coalesce(1).write.parquet(str(tmp / "ads"))
        info = PlanInfo(
            at=at_dt.isoformat(), lookback=format_duration(lb), horizon=format_duration(hz), budget=str(bud),
            budget_pairs=budget_pairs, recent_pairs=recent, pairs=stats.pairs, users=stats.users,
            shards=sorted(int(s) for s in shard_pairs), num_shards=shards, seq_len=seq_len,
            rows_read=rows_read, quarantined=quarantined, speculator=speculator,
            fingerprint=f"{stats.fp & 0xFFFFFFFFFFFFFFFF:016x}", shard_pairs=shard_pairs,
            lookback_start=read.start.isoformat(),
        )
        info.write(tmp)
        spark.catalog.clearCache()
        replace_dir(tmp, out)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speculate", description=__doc__.split("\n")[0])
    p.add_argument("--logs", type=Path, required=True)
    p.add_argument("--at", required=True, help="ISO time T (UTC); the horizon starts here")
    p.add_argument("--lookback", default="24h")
    p.add_argument("--horizon", default="1h")
    p.add_argument("--budget", default="2x", help="pair count, or Nx of the last horizon's distinct pairs")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--shards", type=int, default=None)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--per-user-cap", type=int, help="at most this many pairs per user")
    p.add_argument("--model", type=Path, help="speculator version folder, or 'heuristic' (default: LATEST in the registry)")
    p.add_argument("--registry", type=Path, help="speculator registry (default SOLARIS_SPECULATOR)")
    return p


def main(argv: list[str] | None = None, settings: Settings | None = None) -> PlanInfo:
    a = build_parser().parse_args(argv)
    settings = settings or load_settings()
    spark = get_spark(settings, "solaris-speculate")
    return run(spark, a.logs, a.at, a.lookback, a.horizon, a.budget, a.out,
               shards=a.shards or settings.shards, seq_len=a.seq_len, per_user_cap=a.per_user_cap,
               model=a.model, registry_root=a.registry or settings.speculator_path)


if __name__ == "__main__":
    job_entry(main, lambda i: f"speculate: planned {i.pairs} pairs for {i.users} users in {len(i.shards)} shards"
                              f" from the log since {i.lookback_start}")
