"""
### solaris_monitor

Triggered by each update of the `solaris_snapshots` asset (a publish by `solaris_precompute`).
Once the logs of the snapshot's horizon have landed, replay them against the snapshot and record
realized **hit rate, pair recall, precision and staleness** to the metrics table
`<metrics>/monitor/snapshot_id=<id>.parquet` (plus `hit_rate.png`). The `check` task **fails at
once**, visibly in the UI and without its retries, when the realized hit rate is below
`min_hit_rate` (a `QualityAlert`: the metrics are recorded first); other errors retry as usual.

Run it by hand for a given snapshot with `-c '{"snapshot_id": "<id>"}'` (default: CURRENT).
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, get_current_context, task

from solaris_batch import dag_defaults as d

SNAPSHOTS = Asset(d.SNAPSHOTS_ASSET)


def _settings(model_name: str | None = None):
    return d.settings(model_name=model_name)


@dag(
    dag_id="solaris_monitor",
    schedule=[SNAPSHOTS],
    start_date=d.start_date(),
    catchup=False,
    max_active_runs=4,
    default_args=d.default_args(),
    tags=["solaris", "monitoring"],
    doc_md=__doc__,
    params={
        "snapshot_id": Param("", type="string", description="snapshot to check (default: the triggering one, else CURRENT)"),
        "model_name": Param("fm", type="string"),
        "min_hit_rate": Param(0.2, type="number", minimum=0, maximum=1, description="alert below this hit rate"),
    },
)
def solaris_monitor():
    @task
    def which_snapshot() -> dict:
        """The snapshot to monitor: from the triggering asset event, the params, or CURRENT."""
        from solaris_batch.monitor import served_window
        from solaris_batch.snapshots.publish import read_current, read_manifest

        ctx = get_current_context()
        p = ctx["params"]
        extra = {}
        for events in (ctx.get("triggering_asset_events") or {}).values():
            if events:
                extra = dict(events[-1].extra or {})
        model = extra.get("model_name") or p["model_name"]
        st = _settings(model)
        sid = p["snapshot_id"] or extra.get("snapshot_id") or read_current(st.snapshots_root, model)
        m = read_manifest(st.snapshots_root, model, sid)
        at, horizon = served_window(m)
        return {"snapshot_id": sid, "model_name": model, "at": at, "horizon": horizon}

    @task.sensor(poke_interval=d.sensor_poke_s(), timeout=d.sensor_timeout_s(), mode="reschedule")
    def wait_for_horizon(snap: dict) -> bool:
        """Wait until every log partition of the snapshot's horizon holds `_SUCCESS`."""
        from solaris_batch.tasks import horizon_ready

        return horizon_ready(_settings(snap["model_name"]), snap["at"], snap["horizon"])

    @task
    def check(snap: dict) -> dict:
        """Replay the horizon, write the metrics row and plot; fail below `min_hit_rate`, without retry."""
        from solaris_batch.tasks import monitor_interval

        p = get_current_context()["params"]
        rec = monitor_interval(_settings(snap["model_name"]), snap["snapshot_id"], float(p["min_hit_rate"]))
        print(f"snapshot {rec['snapshot_id']}: hit rate {rec['request_hit_rate']:.3f}, precision {rec['precision']:.3f}")
        return rec

    snap = which_snapshot()
    wait_for_horizon(snap) >> check(snap)


monitor_dag = solaris_monitor()
