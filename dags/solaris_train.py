"""
### solaris_train

Daily: retrain the reference FM on the `window` of impressions before the interval end and
register it — versions are kept under `<model>.versions/<version>` and the checkpoint that later
`solaris_precompute` runs load (`SOLARIS_MODEL`) is swapped in atomically. Snapshot manifests
record which checkpoint version produced them.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from solaris_batch import dag_defaults as d


@dag(
    dag_id="solaris_train",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=d.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=d.default_args(),
    tags=["solaris", "training"],
    doc_md=__doc__,
    params={
        "window": Param("24h", type="string", description="training window before the interval end"),
        "epochs": Param(1, type="integer", minimum=1),
    },
)
def solaris_train():
    @task
    def train_fm() -> dict:
        """Train on `[end - window, end)` and register the new checkpoint version."""
        from solaris_batch.config import load_settings
        from solaris_batch.pipeline import train_and_register

        ctx = get_current_context()
        p = ctx["params"]
        out = train_and_register(load_settings(), ctx["data_interval_end"], p["window"], int(p["epochs"]))
        print(f"registered FM version {out['version']} (held-out AUC {out['val_auc']})")
        return out

    train_fm()


train_dag = solaris_train()
