"""The SparkSession of the speculator, built from ``Settings`` (local[*] by default), with Spark's
console output kept to what a person needs to read.

Quiet by default (``SOLARIS_SPARK_LOG_LEVEL=ERROR``): the driver logs through ``log4j2.properties``
(beside this module) at that level, local drivers bind to the loopback address without asking the
hostname, and the two lines the JVM prints past any log level (``JVM_NOISE``) are left out of the
relayed output. ``WARN`` (``--verbose``) shows all of it again. pyspark is imported inside the
functions that start Spark, never at import time.

Executors outside the driver (any master but ``local``/``local[N]``, see ``embedded``) get this
package the way a cluster's nodes would: as a zip shipped with the job (``package_zip``, given to
``--py-files``/``SparkContext(pyFiles=...)``), never from the driver machine's ``sys.path``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from solaris_batch.config import Settings

LOG4J2 = Path(__file__).resolve().parent / "log4j2.properties"
PACKAGE = Path(__file__).resolve().parents[1]
"""The ``solaris_batch`` folder this process imports (inside a zip when it was shipped as one)."""

JVM_NOISE = ("WARNING: Using incubator modules:", "netlib-blas: JNI_OnLoad:")
"""Starts of the driver's stderr lines that no log level reaches: the JVM's own note on the
incubator module Spark's launcher always adds (``--add-modules=jdk.incubator.vector``), and
netlib's native loader, which prints from C when no system BLAS is installed (Spark ML then uses
its Java BLAS). Left out of the console at the quiet levels; shown from ``WARN`` up."""


def quiet(settings: Settings) -> bool:
    """True when Spark's warnings are to be kept off the console (levels ERROR, FATAL, OFF)."""
    return settings.spark_log_level in ("ERROR", "FATAL", "OFF")


def driver_java_options(settings: Settings) -> str:
    """JVM options of a driver started on this machine: our log4j2 file at the set level."""
    return f"-Dlog4j2.configurationFile={LOG4J2.as_uri()} -Dsolaris.spark.logLevel={settings.spark_log_level}"


def spark_conf(settings: Settings, master: str | None = None, driver_here: bool = True) -> dict[str, str]:
    """Spark settings shared by in-process sessions and ``spark-submit`` command lines; ``master``
    (default ``settings.spark_master``) decides whether the local-only ones apply, and
    ``driver_here`` (False for cluster deploy mode) whether the driver can read our log4j2 file."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": settings.spark_driver_memory,
    }
    if driver_here:
        conf["spark.driver.extraJavaOptions"] = driver_java_options(settings)
    if (master or settings.spark_master).startswith("local"):
        conf.update({"spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
                     "spark.driver.bindAddress": "127.0.0.1"})
    return conf


def embedded(master: str) -> bool:
    """True for ``local``/``local[N]``: executors are threads of the driver JVM and Python workers
    see this machine's packages. Every other master (``local-cluster[...]``, ``spark://``,
    ``yarn``, ``k8s://``) has separate executors, which get the package from ``package_zip``."""
    return master == "local" or master.startswith("local[")


def package_zip() -> Path:
    """A zip of the imported ``solaris_batch`` (modules, ``log4j2.properties``, the SQL as the package
    ``solaris_batch.sql``): what ``--py-files`` ships to executors and cluster-mode drivers.

    Content-addressed in the temp folder (built once per source version, written atomically);
    when this process imports the package from such a zip already, that zip. Compiled modules
    (the snapshot probe) stay out: nothing executors run needs them.
    """
    if PACKAGE.parent.is_file():
        return PACKAGE.parent
    from solaris_batch import __version__
    from solaris_batch.speculate.channels import sql_root
    from solaris_batch.storage.atomic import atomic_path

    files = {f"solaris_batch/{p.relative_to(PACKAGE).as_posix()}": p.read_bytes() for p in sorted(PACKAGE.rglob("*"))
             if p.suffix in (".py", ".properties", ".sql") and "__pycache__" not in p.parts and p.is_file()}
    if not any(n.startswith("solaris_batch/sql/") for n in files):  # a source checkout: sql/ beside the package
        files.update({f"solaris_batch/sql/{t.name}": t.read_bytes() for t in sql_root().iterdir()
                      if t.name.endswith(".sql")})
    files.setdefault("solaris_batch/sql/__init__.py", b"")  # a regular package: zipimport has no namespaces
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    out = Path(tempfile.gettempdir()) / f"solaris_batch-{__version__}-{digest.hexdigest()[:16]}.zip"
    if not out.exists():
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as z:
            for name in sorted(files):
                z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), files[name], zipfile.ZIP_DEFLATED)
    return out


def get_spark(settings: Settings, app_name: str = "solaris"):
    """Get or create the SparkSession; workers use this interpreter.

    When this process starts the driver JVM (not under ``spark-submit``, which started it already),
    the JVM's stderr is relayed through ``relay_output``, so the quiet levels hold for it too. Under
    ``spark-submit`` the master and conf are the ones it was given (the launcher's or the Airflow
    connection's), not this process's settings.

    Args:
        settings: master, driver memory, shuffle partitions and console log level.
        app_name: Spark application name (shown in the Spark UI and cluster managers).

    Returns:
        The active ``pyspark.sql.SparkSession`` (session time zone UTC).
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # under spark-submit, its --master and --conf rule
        conf = spark_conf(settings)
        if SparkContext._gateway is None:
            _start_driver(settings, app_name, conf)
        builder = builder.master(settings.spark_master)
        for k, v in conf.items():
            builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark_log_level)
    return spark


def _start_driver(settings: Settings, app_name: str, conf: dict[str, str]) -> None:
    """Launch the driver JVM with its stderr piped to a relay thread, and its SparkContext (shipping
    the package zip to separate executors)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if settings.spark_master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # else: a warning on loopback hostnames
    sconf = SparkConf().setAppName(app_name).setMaster(settings.spark_master).setAll(list(conf.items()))
    gateway = launch_gateway(sconf, popen_kwargs={"stderr": subprocess.PIPE})
    relay_output(gateway.proc.stderr, "stderr", quiet(settings))
    py_files = None if embedded(settings.spark_master) else [str(package_zip())]
    SparkContext(conf=sconf, gateway=gateway, pyFiles=py_files)


def relay_output(stream: IO[bytes], to: str, quiet: bool, keep: Callable[[str], bool] | None = None,
                 tail: deque[str] | None = None) -> threading.Thread:
    """Copy the lines of a child's ``stream`` to ``sys.<to>`` as they come, in a daemon thread.

    Args:
        stream: the child's stdout or stderr pipe (bytes, decoded as UTF-8).
        to: ``"stdout"`` or ``"stderr"``, looked up on ``sys`` per line.
        quiet: leave out lines starting with ``JVM_NOISE``.
        keep: if given, leave out the lines it refuses too.
        tail: if given, every non-blank line is appended to it (for error reports).

    Returns:
        The started daemon thread; join it after the child exits to drain the stream.
    """

    def run() -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                if tail is not None and line.strip():
                    tail.append(line.rstrip("\n"))
                if (quiet and line.startswith(JVM_NOISE)) or (keep is not None and not keep(line)):
                    continue
                out = getattr(sys, to)  # looked up per line: Airflow and pytest swap sys.stdout/err
                out.write(line)
                out.flush()

    t = threading.Thread(target=run, name=f"spark-{to}-relay", daemon=True)
    t.start()
    return t
