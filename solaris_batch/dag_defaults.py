"""Defaults and small Airflow glue shared by the DAG files (importing this module is cheap: the
standard library only; Airflow and the package are imported inside the functions that need them).

Environment knobs, read when Airflow parses the DAGs:
``SOLARIS_DAG_RETRIES`` (2), ``SOLARIS_DAG_RETRY_DELAY`` (60 s, doubling up to 15 min),
``SOLARIS_START_DATE`` (2026-11-20T00:00Z, the first interval), ``SOLARIS_CATCHUP`` (false, Airflow
3's default: unpausing schedules the latest interval only; ``airflow backfill create`` runs older
ones), ``SOLARIS_SENSOR_TIMEOUT`` (3h in seconds), ``SOLARIS_SENSOR_POKE`` (60 s),
``SOLARIS_FM_POOL`` (``solaris_fm``: the pool inference runs in, sized to the GPUs),
``SOLARIS_SPARK_CONN_ID`` (unset: Spark jobs run ``spark-submit`` on ``SOLARIS_SPARK_MASTER``; set:
``SparkSubmitOperator`` on that Airflow Spark connection, e.g. ``spark://host:7077``, ``yarn`` or
``k8s://...``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

SNAPSHOTS_ASSET = "solaris_snapshots"
"""Updated by each publish of ``solaris_precompute`` (extra: snapshot_id, at, horizon, model_name)."""
FM_ASSET = "solaris_fm_checkpoint"
"""Updated by each FM checkpoint ``solaris_train`` registers (extra: version, val_auc, path)."""
SPECULATOR_ASSET = "solaris_speculator"
"""Updated by each speculator version ``solaris_train`` registers (extra: version, when known)."""


def default_args() -> dict:
    """Owner, retries with exponential back-off, a timeout, and the retry policy below."""
    return {
        "owner": "solaris",
        "retries": int(os.environ.get("SOLARIS_DAG_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("SOLARIS_DAG_RETRY_DELAY", "60"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=1),
        "retry_policy": retry_policy(),
    }


def retry_policy():
    """Fail at once, without the remaining retries, on a data-quality alert: a retry would read the
    same data and alert again. Anything else (a lost worker, a store that did not answer) retries
    as usual. (Airflow 3.3's declarative form of raising ``AirflowFailException``.)"""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(rules=[RetryRule(
        exception="solaris_batch.errors.QualityAlert", action=RetryAction.FAIL,
        reason="data-quality alert: a retry would read the same data; fix the cause, then clear the task")])


def start_date() -> datetime:
    return datetime.fromisoformat(os.environ.get("SOLARIS_START_DATE", "2026-11-20T00:00:00+00:00")).astimezone(UTC)


def catchup() -> bool:
    return os.environ.get("SOLARIS_CATCHUP", "false").lower() in ("1", "true", "yes")


def sensor_timeout_s() -> int:
    return int(os.environ.get("SOLARIS_SENSOR_TIMEOUT", str(3 * 3600)))


def sensor_poke_s() -> int:
    return int(os.environ.get("SOLARIS_SENSOR_POKE", "60"))


def shards() -> int:
    """Default of the ``shards`` param: ``SOLARIS_SHARDS`` like the CLI (4)."""
    return int(os.environ.get("SOLARIS_SHARDS", "4"))


def spark_conn_id() -> str | None:
    return os.environ.get("SOLARIS_SPARK_CONN_ID") or None


def fm_pool() -> str:
    return os.environ.get("SOLARIS_FM_POOL", "solaris_fm")


# At task run time ---------------------------------------------------------------------------
def settings(**overrides):
    """The settings a task runs with: environment, then ``overrides``; Spark's console level
    follows the task log level (``spark_log_level``)."""
    from solaris_batch.config import load_settings

    return load_settings(spark_log_level=spark_log_level(), **overrides)


def spark_log_level() -> str | None:
    """``WARN`` when Airflow logs tasks at ``DEBUG`` (``[logging] logging_level``) and
    ``SOLARIS_SPARK_LOG_LEVEL`` is unset, so Spark's warnings come back with the rest of the detail;
    else None (the setting, default ``ERROR``)."""
    if "SOLARIS_SPARK_LOG_LEVEL" in os.environ:
        return None
    from airflow.sdk.configuration import conf

    return "WARN" if conf.get("logging", "logging_level", fallback="INFO").upper() == "DEBUG" else None


def spark_connection() -> tuple[str, bool]:
    """Master URL of the ``SOLARIS_SPARK_CONN_ID`` connection, and whether its driver runs on this
    worker (every deploy mode but ``cluster``)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(spark_conn_id())
    return conn.host or "", conn.extra_dejson.get("deploy-mode", "client") != "cluster"


def spark_submit_task(task_id: str, doc_md: str, **kwargs):
    """``SparkSubmitOperator`` on the ``SOLARIS_SPARK_CONN_ID`` connection whose script, conf and
    arguments are rendered at run time by the DAG's ``solaris_spark_submit(data_interval_end,
    params)`` macro (a dict as ``jobs.submit_spec`` returns; the DAG renders native objects)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    spec = "{{ solaris_spark_submit(data_interval_end, params)[%r] }}"
    return SparkSubmitOperator(task_id=task_id, conn_id=spark_conn_id(), name=f"solaris-{task_id}",
                               application=spec % "application", conf=spec % "conf",
                               application_args=spec % "application_args", doc_md=doc_md, **kwargs)


def _db_connect_args() -> dict:
    """SQLite only: wait up to 60 s for a lock instead of sqlite3's 5 s default, since the scheduler,
    API server, DAG processor and CLI all write to one file. Other databases get no extra args
    (``timeout`` means something else to psycopg2/asyncpg)."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url:
        try:
            from airflow.configuration import conf

            url = conf.get("database", "sql_alchemy_conn", fallback="sqlite")
        except Exception:  # Airflow absent or not configured yet: its default is SQLite
            url = "sqlite"
    return {"timeout": 60} if url.startswith("sqlite") else {}


def __getattr__(name: str):
    """``DB_CONNECT_ARGS``: connect args for the Airflow metadata DB (``[database]
    sql_alchemy_connect_args`` takes an import path; the Makefile sets it), computed when Airflow
    asks for them, so importing this module stays cheap. See ``_db_connect_args``."""
    if name == "DB_CONNECT_ARGS":
        return _db_connect_args()
    raise AttributeError(name)
