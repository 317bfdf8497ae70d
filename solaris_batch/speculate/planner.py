"""Plan selection: from the lookback window of request logs, the pairs of the next horizon.

Reads only complete hour partitions (a lookback reaching back before the log's first hour is read
from there, and ``_plan.json`` records where in ``lookback_start``), quarantines malformed rows,
gathers candidates from the channels (repeats, user activity, ad liveness, co-visitation, faiss
neighbours, fresh items x active users), scores them with the chosen speculator, keeps the top ``budget`` pairs in
``PLAN_ORDER`` (ties broken by ids, so reruns are identical), shards them by
``pmod(xxhash64(user_id), shards)`` and writes the plan (layout in ``plan.py``) atomically.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from solaris_batch.config import DEFAULT_SEQ_LEN
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.plan import PLAN_ORDER, PlanInfo
from solaris_batch.speculate.registry import LATEST_SPECULATOR, SpeculatorChoice
from solaris_batch.storage import staged_dir
from solaris_batch.storage.uri import to_hadoop
from solaris_batch.timeutil import format_duration, parse_time


def write_plan(
    spark,
    logs: Path,
    at: datetime,
    lookback: timedelta,
    horizon: timedelta,
    budget: Budget,
    out: Path,
    shards: int,
    seq_len: int = DEFAULT_SEQ_LEN,
    per_user_cap: int | None = None,
    speculator: SpeculatorChoice = LATEST_SPECULATOR,
    registry_root: Path | None = None,
) -> PlanInfo:
    """Write the plan for ``[at, at + horizon)`` to ``out`` (replaced whole) and return its metadata.

    Args:
        spark: the SparkSession.
        logs: request-log root.
        at: horizon start T (UTC); only logs before it are read.
        lookback: length of the log window mined before ``at``.
        horizon: length of the window the plan serves.
        budget: pairs kept (a count, or a multiple of the last horizon's distinct pairs).
        out: plan folder.
        shards: number of plan shards (users are sharded with their pairs).
        seq_len: events kept per user sequence (the FM's input).
        per_user_cap: at most this many pairs per user, if given (>= 1).
        speculator: heuristic, latest in ``registry_root`` (the heuristic, with a warning, when
            none is registered), or a version folder.
        registry_root: the speculator registry.

    Returns:
        The plan's ``PlanInfo`` (also written to ``out/_plan.json``).

    Raises:
        ConfigError: a bad budget size or ``per_user_cap``.
        EmptyWindow: no candidate pair is left (every ad seen has expired).
    """
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    from solaris_batch.speculate import scoring
    from solaris_batch.speculate.channels import load_window, recent_distinct_pairs, sql_text
    from solaris_batch.speculate.features import candidates

    at = parse_time(at)
    if per_user_cap is not None and per_user_cap < 1:
        from solaris_batch.errors import ConfigError

        raise ConfigError(f"--per-user-cap must be >= 1, got {per_user_cap}")
    with staged_dir(Path(out)) as tmp:  # the plan appears whole (fsynced) or not at all
        rows_read, quarantined, read = load_window(spark, logs, at, lookback, tmp / "_quarantine")
        recent = recent_distinct_pairs(spark, at, horizon) if budget.needs_recent_pairs else 0
        budget_pairs = budget.resolve(recent)
        scored, scored_by = scoring.score(candidates(spark, at, horizon, lookback), speculator, registry_root)
        order = PLAN_ORDER.columns()
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
             .write.partitionBy("shard").parquet(to_hadoop(tmp / "pairs")))
        shard_pairs = {str(r.shard): r["count"] for r in plan.groupBy("shard").count().collect()}

        plan.select("user_id").distinct().createOrReplaceTempView("planned_users")
        users = spark.sql(sql_text("user_sequences.sql"), args={"seq_len": seq_len}) \
            .withColumn("shard", F.pmod(F.xxhash64("user_id"), F.lit(shards)).cast("int"))
        (users.repartition("shard").sortWithinPartitions("shard", "user_id")
              .write.partitionBy("shard").parquet(to_hadoop(tmp / "users")))
        users.createOrReplaceTempView("plan_users")
        plan.createOrReplaceTempView("plan_pairs_v")
        ads = spark.sql(
            "SELECT u.ad_id, CAST(a.category_id AS INT) AS category_id FROM ("
            " SELECT ad_id FROM plan_pairs_v UNION SELECT explode(seq_ad_id) AS ad_id FROM plan_users) u"
            " LEFT JOIN ads a ON a.ad_id = u.ad_id"
        )
        ads.coalesce(1).write.parquet(to_hadoop(tmp / "ads"))
        info = PlanInfo(
            at=at.isoformat(), lookback=format_duration(lookback), horizon=format_duration(horizon), budget=str(budget),
            budget_pairs=budget_pairs, recent_pairs=recent, pairs=stats.pairs, users=stats.users,
            shards=sorted(int(s) for s in shard_pairs), num_shards=shards, seq_len=seq_len,
            rows_read=rows_read, quarantined=quarantined, speculator=scored_by,
            fingerprint=f"{stats.fp & 0xFFFFFFFFFFFFFFFF:016x}", shard_pairs=shard_pairs,
            lookback_start=read.start.isoformat(),
        )
        info.write(tmp)
        spark.catalog.clearCache()
    return info

