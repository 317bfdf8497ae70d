"""
### solaris_precompute

One run per hourly **data interval** `[start, end)`: once the hour's request-log partition is
complete (`_SUCCESS`), plan the pairs the next `horizon` will score (Spark), run the foundation
model on them (one mapped task per plan shard) and publish the embeddings as a new snapshot.

* `wait_for_logs` - sensor (reschedule mode) on `<logs>/requests/dt=../hour=../_SUCCESS`.
* `speculate` - Spark job via `spark-submit`; writes `<work>/plans/<end>`.
* `infer` - dynamically mapped over plan shards; writes `<work>/embeddings/<end>/part-*.parquet`.
* `publish` - validates the shards, writes `<snapshots>/<model>/snapshots/<id>/` and flips `CURRENT`.

Every path is keyed by the interval end, so clearing and re-running any task is idempotent.
Locations come from `SOLARIS_*` environment variables (see README).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "solaris",
    "retries": int(os.environ.get("SOLARIS_DAG_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=1),
}


def _settings():
    from solaris_batch.config import load_settings

    return load_settings()


@dag(
    dag_id="solaris_precompute",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["solaris", "precompute"],
    doc_md=__doc__,
    params={
        "budget": Param("2x", type="string", description="pair count, or Nx of the last horizon's distinct pairs"),
        "lookback": Param("24h", type="string", description="log window mined before the horizon"),
        "horizon": Param("1h", type="string", description="how far ahead the plan serves"),
        "shards": Param(4, type="integer", minimum=1, description="plan shards = parallel infer tasks"),
    },
)
def solaris_precompute():
    @task.sensor(poke_interval=60, timeout=3 * 3600, mode="reschedule")
    def wait_for_logs() -> bool:
        """Wait for the interval's hour partition to hold `_SUCCESS`."""
        from solaris_batch.pipeline import partition_ready

        return partition_ready(_settings(), get_current_context()["data_interval_start"])

    @task
    def speculate() -> list[int]:
        """Spark: plan the pairs of `[end, end + horizon)` under the budget; returns the shard ids."""
        from solaris_batch.pipeline import speculate_interval

        ctx = get_current_context()
        p = ctx["params"]
        plan = speculate_interval(_settings(), ctx["data_interval_end"], p["lookback"], p["horizon"],
                                  p["budget"], int(p["shards"]))
        print(f"planned {plan['pairs']} pairs for {plan['users']} users -> {plan['plan']}")
        return plan["shards"]

    @task(doc_md="Run the FM over one plan shard (skipped if its output is already complete).")
    def infer(shard: int) -> dict:
        from solaris_batch.pipeline import infer_interval

        return infer_interval(_settings(), get_current_context()["data_interval_end"], shard)

    @task
    def publish(results: list[dict]) -> dict:
        """Validate all shards, write the snapshot, flip CURRENT (never back to an older window)."""
        from solaris_batch.pipeline import publish_interval

        return publish_interval(_settings(), get_current_context()["data_interval_end"])

    shards = speculate()
    wait_for_logs() >> shards
    publish(infer.expand(shard=shards))


precompute_dag = solaris_precompute()
