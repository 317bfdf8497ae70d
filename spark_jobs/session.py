"""One place that builds the SparkSession from ``Settings`` (local[*] by default)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from solaris_batch.config import Settings

SQL_DIR = Path(os.environ.get("SOLARIS_SQL_DIR", Path(__file__).resolve().parents[1] / "sql"))


def spark_conf(settings: Settings, master: str | None = None) -> dict[str, str]:
    """Spark settings shared by in-process sessions and ``spark-submit`` command lines; ``master``
    (default ``settings.spark_master``) decides whether the local-only ones apply."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.spark_driver_memory,
    }
    if (master or settings.spark_master).startswith("local"):
        conf.update({"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
                     "spark.driver.bindAddress": "127.0.0.1"})
    return conf


def get_spark(settings: Settings, app_name: str = "solaris"):
    """Get or create the SparkSession; workers use this interpreter."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master(settings.spark_master)
    for k, v in spark_conf(settings).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def job_entry(main, summary) -> None:
    """``__main__`` of a ``spark-submit`` job: run ``main()``, print ``summary(result)``; an expected
    failure prints ``solaris: error: ...`` (which ``pipeline.spark_job`` re-raises) and exits 2."""
    from solaris_batch.errors import SolarisError

    try:
        print(summary(main()))
    except SolarisError as e:
        print(f"solaris: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def sql_text(name: str) -> str:
    return (SQL_DIR / name).read_text()


def submit_command(settings: Settings, job: str, args: list[str]) -> list[str]:
    """``spark-submit`` command line for ``spark_jobs/<job>.py`` under ``settings``.

    Used where the job must run in its own process (Airflow tasks); on a cluster master the same
    line ships the job to the cluster.
    """
    submit = Path(sys.executable).parent / "spark-submit"
    cmd = [str(submit) if submit.exists() else "spark-submit", "--master", settings.spark_master]
    for k, v in submit_conf(settings).items():
        cmd += ["--conf", f"{k}={v}"]
    return cmd + [job_script(job), *args]


def job_script(job: str) -> str:
    """Path of the ``spark_jobs/<job>.py`` entry point (what spark-submit ships)."""
    return str(Path(__file__).resolve().parent / f"{job}.py")


def submit_conf(settings: Settings, master: str | None = None) -> dict[str, str]:
    """``spark_conf`` for ``spark-submit``; on a local master, also this interpreter for the driver
    and workers (a cluster's nodes bring their own Python, with this package installed)."""
    master = master or settings.spark_master
    conf = spark_conf(settings, master)
    if master.startswith("local"):
        conf.update({"spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable})
    return conf


def submit_env() -> dict[str, str]:
    """Environment for ``spark-submit``: SPARK_HOME of the installed pyspark, this interpreter."""
    import pyspark

    env = dict(os.environ)
    env.setdefault("SPARK_HOME", str(Path(pyspark.__file__).parent))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return env
