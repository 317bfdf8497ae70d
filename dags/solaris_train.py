"""
### solaris_train

Daily, two independent tasks:

| task | does | registers | asset |
| --- | --- | --- | --- |
| `train_speculator` | Spark job (`spark-submit`, or `SparkSubmitOperator` on the Airflow Spark connection `SOLARIS_SPARK_CONN_ID` names, when set): learn the speculator's scoring on the `speculator_windows` horizons before the interval end | new version under `SOLARIS_SPECULATOR`, `LATEST` flipped atomically | `solaris_speculator` |
| `train_fm` | retrain the reference FM on the `window` of impressions before the interval end (skipped when `train_fm` is off) | `<model>.versions/<version>`; the checkpoint `SOLARIS_MODEL` is swapped in atomically | `solaris_fm_checkpoint` (extra: `version`, `val_auc`, `path`) |

Later `solaris_precompute` runs load the latest speculator and checkpoint; plan and snapshot
manifests record which versions produced them. DAGs scheduled on the assets run after each new
version. Rerunning a day retrains on the same windows and re-registers the same version names.
"""

from __future__ import annotations

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from solaris_batch import dag_defaults as d
from solaris_batch.config import (
    DEFAULT_FM_WINDOW,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_SPECULATOR_WINDOWS,
)

FM_CHECKPOINT = Asset(d.FM_ASSET)
SPECULATOR = Asset(d.SPECULATOR_ASSET)


def _train_speculator_job(end, params):
    """The train-speculator job of a run: learn before ``until`` (default the interval end), register."""
    from solaris_batch.jobs import TrainSpeculatorJob

    return TrainSpeculatorJob(at=params["until"] or end, lookback=params["lookback"], horizon=params["horizon"],
                              windows=int(params["speculator_windows"]))


def _spark_submit(end, params) -> dict:
    """Template macro: application, conf and args of the train-speculator job for ``SparkSubmitOperator``."""
    from solaris_batch.jobs import submit_spec

    return submit_spec(d.settings(), _train_speculator_job(end, params), *d.spark_connection())


@dag(
    dag_id="solaris_train",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=d.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=d.default_args(),
    tags=["solaris", "training"],
    doc_md=__doc__,
    user_defined_macros={"solaris_spark_submit": _spark_submit},
    render_template_as_native_obj=True,
    params={
        "window": Param(DEFAULT_FM_WINDOW, type="string", description="training window before the interval end"),
        "epochs": Param(1, type="integer", minimum=1),
        "until": Param("", type="string", description="train on data before this ISO time (default: the interval end)"),
        "train_fm": Param(True, type="boolean", description="also retrain the FM (off: speculator only)"),
        "speculator_windows": Param(DEFAULT_SPECULATOR_WINDOWS, type="integer", minimum=1, description="past horizons to learn from"),
        "lookback": Param(DEFAULT_LOOKBACK, type="string", description="speculator feature lookback"),
        "horizon": Param(DEFAULT_HORIZON, type="string", description="speculator horizon"),
    },
)
def solaris_train():
    @task(task_id="train_speculator", outlets=[SPECULATOR])
    def train_speculator_local() -> dict:
        """Learn the speculator on past horizons before the interval end; register it as LATEST."""
        from solaris_batch.jobs import launch

        ctx = get_current_context()
        meta = launch(d.settings(), _train_speculator_job(ctx["data_interval_end"], ctx["params"]), submit=True)
        print(f"registered speculator {meta.version} (train AUC {meta.train_auc:.4f})")
        ctx["outlet_events"][SPECULATOR].extra = {"version": meta.version}
        return {"version": meta.version, "examples": meta.examples, "train_auc": meta.train_auc}

    def train_speculator_on_connection():
        return d.spark_submit_task(
            "train_speculator", f"Spark via `SparkSubmitOperator` on connection `{d.spark_conn_id()}`: learn the"
                                " speculator on past horizons before the interval end; register it as LATEST.",
            outlets=[SPECULATOR])

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def fm_enabled() -> bool:
        """Skip `train_fm` when the `train_fm` param is off."""
        return bool(get_current_context()["params"]["train_fm"])

    @task(outlets=[FM_CHECKPOINT])
    def train_fm() -> dict:
        """Train on `[end - window, end)`, register the new checkpoint version, update the asset."""
        from solaris_batch.model.registry import train_and_register

        ctx = get_current_context()
        p = ctx["params"]
        out = train_and_register(d.settings(), p["until"] or ctx["data_interval_end"], p["window"], int(p["epochs"]))
        print(f"registered FM version {out['version']} (held-out AUC {out['val_auc']})")
        ctx["outlet_events"][FM_CHECKPOINT].extra = {k: out[k] for k in ("version", "val_auc", "path")}
        return out

    train_speculator_on_connection() if d.spark_conn_id() else train_speculator_local()
    fm_enabled() >> train_fm()


train_dag = solaris_train()
