"""Speculate job: from the lookback window of request logs, plan the pairs of the next horizon.

    spark-submit spark_jobs/speculate.py --logs LOGS --at T --lookback 24h --horizon 1h \
        --budget 2x --out PLAN [--shards 4] [--seq-len 128]

Reads only complete hour partitions, quarantines malformed rows, scores candidates with
``sql/speculate_repeats.sql``, keeps the top ``budget`` pairs (ties broken by ids, so reruns are
identical), shards them by ``pmod(xxhash64(user_id), shards)`` and writes the plan atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from pathlib import Path

from solaris_batch import schemas
from solaris_batch.config import Settings, load_settings
from solaris_batch.logs.reader import log_files, partition_paths, require_logs_root
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.plan import PlanInfo
from solaris_batch.timeutil import Window, format_duration, parse_duration, parse_time, to_us
from spark_jobs.session import get_spark, sql_text

SPECULATOR = "repeats-v1"
HALF_LIFE = "6h"


def _replace_dir(tmp: Path, out: Path) -> None:
    """Swap a fully written folder into place; a rerun replaces the old output whole."""
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


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
) -> PlanInfo:
    """Write the plan for ``[at, at + horizon)`` to ``out`` and return its metadata."""
    from pyspark.sql import functions as F

    at_dt = parse_time(at)
    lb, hz, bud = parse_duration(lookback), parse_duration(horizon), Budget.parse(budget)
    window = Window.before(at_dt, lb)
    logs = require_logs_root(logs)
    files = log_files(partition_paths(logs, window), window)
    at_us = to_us(at_dt)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        raw = (
            spark.read.option("basePath", str(logs / "requests")).parquet(*files)
            .select(*schemas.REQUEST_LOG.names, "dt", "hour")
        )
        bad = (
            F.col("request_id").isNull() | F.col("ts").isNull() | F.col("user_id").isNull()
            | F.col("ad_id").isNull() | F.col("impressed").isNull() | F.col("clicked").isNull()
            | (F.date_format("ts", "yyyy-MM-dd") != F.col("dt"))
            | (F.hour("ts") != F.col("hour").cast("int"))
        )
        raw = raw.withColumn("_bad", F.coalesce(bad, F.lit(True))).cache()
        quarantined = raw.filter("_bad").count()
        if quarantined:
            raw.filter("_bad").drop("_bad").write.parquet(str(tmp / "_quarantine"))
            print(f"speculate: quarantined {quarantined} malformed log rows -> {out}/_quarantine", file=sys.stderr)
        rows = raw.filter(~F.col("_bad") & (F.unix_micros("ts") >= to_us(window.start))
                          & (F.unix_micros("ts") < at_us)).drop("_bad", "dt", "hour")
        rows.createOrReplaceTempView("requests")
        rows_read = rows.count()

        ads_dir = logs / "ads"
        if ads_dir.is_dir():
            spark.read.parquet(str(ads_dir)).createOrReplaceTempView("ads")
        else:
            spark.createDataFrame([], "ad_id BIGINT, category_id INT, end_ts TIMESTAMP").createOrReplaceTempView("ads")

        recent = 0
        if bud.needs_recent_pairs:
            recent = rows.filter(F.unix_micros("ts") >= at_us - int(hz.total_seconds() * 1e6)) \
                .select("user_id", "ad_id").distinct().count()
        budget_pairs = bud.resolve(recent)

        args = {"at_us": at_us, "half_life_us": int(parse_duration(HALF_LIFE).total_seconds() * 1e6)}
        scored = spark.sql(sql_text("speculate_repeats.sql"), args=args)
        plan = (
            scored.orderBy(F.desc("score"), "user_id", "ad_id").limit(budget_pairs)
            .withColumn("shard", F.pmod(F.xxhash64("user_id"), F.lit(shards)).cast("int"))
            .cache()
        )
        stats = plan.agg(
            F.count("*").alias("pairs"), F.countDistinct("user_id").alias("users"),
            F.bit_xor(F.xxhash64("user_id", "ad_id", "score")).alias("fp"),
        ).first()
        if stats.pairs == 0:
            from solaris_batch.errors import EmptyWindow

            raise EmptyWindow(f"no candidate pairs in {window}: every ad seen there has expired")
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
            budget_pairs=budget_pairs, pairs=stats.pairs, users=stats.users,
            shards=sorted(int(s) for s in shard_pairs), num_shards=shards, seq_len=seq_len,
            rows_read=rows_read, quarantined=quarantined, speculator=SPECULATOR,
            fingerprint=f"{stats.fp & 0xFFFFFFFFFFFFFFFF:016x}", shard_pairs=shard_pairs,
        )
        info.write(tmp)
        plan.unpersist()
        raw.unpersist()
        _replace_dir(tmp, out)
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
    return p


def main(argv: list[str] | None = None, settings: Settings | None = None) -> PlanInfo:
    a = build_parser().parse_args(argv)
    settings = settings or load_settings()
    spark = get_spark(settings, "solaris-speculate")
    return run(spark, a.logs, a.at, a.lookback, a.horizon, a.budget, a.out,
               shards=a.shards or settings.shards, seq_len=a.seq_len)


if __name__ == "__main__":
    from solaris_batch.errors import SolarisError

    try:
        info = main()
        print(f"speculate: planned {info.pairs} pairs for {info.users} users in {len(info.shards)} shards")
    except SolarisError as e:
        print(f"solaris: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
