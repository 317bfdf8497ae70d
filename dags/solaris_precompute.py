"""
### solaris_precompute

One run per hourly **data interval** `[start, end)`: once the hour's request-log partition is
complete (`_SUCCESS`), plan the pairs the next `horizon` will score (Spark), run the foundation
model on them (one mapped task per plan shard, in the `solaris_fm` pool), validate, publish the
embeddings as a new snapshot (updating the `solaris_snapshots` asset) and garbage-collect old ones.

| task | does | writes |
| --- | --- | --- |
| `wait_for_logs` | reschedule-mode sensor on `<logs>/requests/dt=../hour=../_SUCCESS` | |
| `speculate` | Spark job via `spark-submit` (local by default; `SparkSubmitOperator` on the Airflow Spark connection `SOLARIS_SPARK_CONN_ID` names, when set) | `<work>/plans/<end>` |
| `plan_shards` | read the plan's shard ids (small XCom) | |
| `infer` | FM over one plan shard (mapped) | `<work>/embeddings/<end>/part-*.parquet` |
| `validate` | publish gates (counts, NaN/Inf, one checkpoint) | |
| `publish` | snapshot + `CURRENT` (never back to an older window) | `<snapshots>/<model>/...` |
| `gc` | keep the newest `keep` snapshots, CURRENT and its rollback target | |

Every path is keyed by the interval end: clearing and re-running any task is idempotent, and a
re-run publish does not create a duplicate version. Catch-up is off (Airflow 3's default;
`SOLARIS_CATCHUP=true` turns it on): unpausing runs the latest interval, and older ones run with
`airflow backfill create --dag-id solaris_precompute --from-date ... --to-date ...`. A lookback
that starts before the first log partition is read from the log's start (the task log says so and
the plan's `_plan.json` records `lookback_start`); a missing partition inside the log fails.
"""

from __future__ import annotations

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from solaris_batch import dag_defaults as d
from solaris_batch.config import DEFAULT_BUDGET, DEFAULT_HORIZON, DEFAULT_LOOKBACK

SNAPSHOTS = Asset(d.SNAPSHOTS_ASSET)


def _spark_submit(end, params) -> dict:
    """Template macro: application, conf and args of the speculate job for ``SparkSubmitOperator``."""
    from solaris_batch.jobs import submit_spec
    from solaris_batch.tasks import interval_speculate_job

    st = d.settings(model_name=params["model_name"])
    job = interval_speculate_job(st, end, params["lookback"], params["horizon"], params["budget"], int(params["shards"]))
    return submit_spec(st, job, *d.spark_connection())


def _settings():
    return d.settings(model_name=get_current_context()["params"]["model_name"])


def _end():
    return get_current_context()["data_interval_end"]


@dag(
    dag_id="solaris_precompute",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=d.start_date(),
    catchup=d.catchup(),
    max_active_runs=2,
    default_args=d.default_args(),
    tags=["solaris", "precompute"],
    doc_md=__doc__,
    user_defined_macros={"solaris_spark_submit": _spark_submit},
    render_template_as_native_obj=True,
    params={
        "budget": Param(DEFAULT_BUDGET, type="string", description="pair count, or Nx of the last horizon's distinct pairs"),
        "lookback": Param(DEFAULT_LOOKBACK, type="string", description="log window mined before the horizon (m/h/d)"),
        "horizon": Param(DEFAULT_HORIZON, type="string", description="how far ahead the plan serves"),
        "shards": Param(d.shards(), type="integer", minimum=1, description="plan shards = parallel infer tasks"),
        "model_name": Param("fm", type="string", description="snapshots are published under this name"),
        "keep": Param(48, type="integer", minimum=1, description="snapshots kept by gc"),
    },
)
def solaris_precompute():
    @task.sensor(poke_interval=d.sensor_poke_s(), timeout=d.sensor_timeout_s(), mode="reschedule")
    def wait_for_logs() -> bool:
        """Wait for the interval's hour partition to hold `_SUCCESS` (fails after the timeout)."""
        from solaris_batch.tasks import partition_ready

        return partition_ready(_settings(), get_current_context()["data_interval_start"])

    @task(task_id="speculate")
    def speculate_local() -> dict:
        """Spark (`spark-submit` on `SOLARIS_SPARK_MASTER`): plan the pairs of `[end, end + horizon)`."""
        from solaris_batch.tasks import speculate_interval

        p = get_current_context()["params"]
        plan = speculate_interval(_settings(), _end(), p["lookback"], p["horizon"], p["budget"], int(p["shards"]))
        print(f"planned {plan['pairs']} pairs for {plan['users']} users -> {plan['plan']}")
        return plan

    def speculate_on_connection():
        return d.spark_submit_task("speculate", f"Spark via `SparkSubmitOperator` on connection `{d.spark_conn_id()}`:"
                                                " plan `[end, end + horizon)`.")

    @task
    def plan_shards() -> list[int]:
        """Shard ids of the interval's plan: what `infer` is mapped over."""
        from solaris_batch.tasks import plan_shards

        return plan_shards(_settings(), _end())

    @task(pool=d.fm_pool(), doc_md="Run the FM over one plan shard (skipped if its output is already complete).")
    def infer(shard: int) -> dict:
        from solaris_batch.tasks import infer_interval

        return infer_interval(_settings(), _end(), shard)

    @task
    def validate(results: list[dict]) -> dict:
        """Publish gates over all shards: counts match the plan, finite values, one checkpoint."""
        from solaris_batch.tasks import validate_interval

        return validate_interval(_settings(), _end())

    @task(outlets=[SNAPSHOTS])
    def publish(checked: dict) -> dict:
        """Write the snapshot and flip CURRENT; the asset event carries the snapshot id."""
        from solaris_batch.tasks import publish_interval

        out = publish_interval(_settings(), _end())
        print(f"snapshot {out['snapshot_id']} ({out['rows']} rows); CURRENT={out['current']} {out['note']}")
        get_current_context()["outlet_events"][SNAPSHOTS].extra = {
            k: out[k] for k in ("snapshot_id", "at", "horizon", "model_name")}
        return out

    @task
    def gc(published: dict) -> list[str]:
        """Delete old snapshots beyond `keep` (never CURRENT or its rollback target)."""
        from solaris_batch.tasks import gc_snapshots

        return gc_snapshots(_settings(), int(get_current_context()["params"]["keep"]))

    spec = speculate_on_connection() if d.spark_conn_id() else speculate_local()
    shards = plan_shards()
    wait_for_logs() >> spec >> shards
    gc(publish(validate(infer.expand(shard=shards))))


precompute_dag = solaris_precompute()
