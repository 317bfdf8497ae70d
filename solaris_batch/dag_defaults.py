"""Defaults shared by the DAG files (parse-time cheap: standard library only).

Environment knobs, read when Airflow parses the DAGs:
``SOLARIS_DAG_RETRIES`` (2), ``SOLARIS_START_DATE`` (2026-11-20T00:00Z, first interval for catch-up),
``SOLARIS_CATCHUP`` (true: scheduled runs catch up from the start date once unpaused),
``SOLARIS_SENSOR_TIMEOUT`` (3h in seconds), ``SOLARIS_SENSOR_POKE`` (60 s), ``SOLARIS_FM_POOL``
(``solaris_fm``: the pool inference runs in, sized to the GPUs), ``SOLARIS_SPARK_CONN_ID`` (unset:
speculate runs ``spark-submit`` on ``SOLARIS_SPARK_MASTER``; set: ``SparkSubmitOperator`` on that
Airflow Spark connection, e.g. ``spark://host:7077``, ``yarn`` or ``k8s://...``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta


def default_args() -> dict:
    return {
        "owner": "solaris",
        "retries": int(os.environ.get("SOLARIS_DAG_RETRIES", "2")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=1),
    }


def start_date() -> datetime:
    return datetime.fromisoformat(os.environ.get("SOLARIS_START_DATE", "2026-11-20T00:00:00+00:00")).astimezone(UTC)


def catchup() -> bool:
    return os.environ.get("SOLARIS_CATCHUP", "true").lower() in ("1", "true", "yes")


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


SNAPSHOTS_ASSET = "solaris_snapshots"

#: SQLite connect args for the embedded Airflow metadata DB (``[database] sql_alchemy_connect_args``
#: takes an import path): wait up to 60 s for a lock instead of sqlite3's 5 s default, since the
#: scheduler, API server, DAG processor and CLI all write to the same file.
SQLITE_CONNECT_ARGS = {"timeout": 60}
