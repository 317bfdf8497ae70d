"""Lookback clipping at the log's start, Spark's console level setting, and the output relay."""

import os
from collections import deque
from datetime import timedelta

import pytest

from solaris_batch.config import Settings, load_settings
from solaris_batch.errors import ConfigError, PartitionMissing
from solaris_batch.logs.layout import first_hour
from solaris_batch.logs.reader import clip_to_log_start, partition_paths
from solaris_batch.timeutil import Window
from tests.conftest import T0, write_hours

H = timedelta(hours=1)


def _hours(logs, hours):
    write_hours(logs, {h: [(h, T0 + h * H, 7, 70, 0, True, False)] for h in hours})


def test_first_hour_is_the_earliest_partition_across_days(tmp_path):
    assert first_hour(tmp_path) is None
    _hours(tmp_path, [30, 5, 6])  # day 2 hour 06, day 1 hours 05 and 06
    assert first_hour(tmp_path) == T0 + 5 * H


def test_lookback_before_the_log_is_clipped_to_its_first_hour(tmp_path):
    _hours(tmp_path, [2, 3, 4])
    w = Window(T0 - 20 * H, T0 + 5 * H)  # 24h before T0+5h: the log begins at T0+2h
    assert clip_to_log_start(tmp_path, w) == Window(T0 + 2 * H, T0 + 5 * H)
    assert [p.rsplit("/", 1)[-1] for p in partition_paths(tmp_path, clip_to_log_start(tmp_path, w))] == ["hour=02", "hour=03",
                                                                                         "hour=04"]
    inside = Window(T0 + 3 * H, T0 + 5 * H)
    assert clip_to_log_start(tmp_path, inside) == inside
    before = Window(T0 - 5 * H, T0 + H)  # ends before the log begins: nothing to clip to, still fails
    assert clip_to_log_start(tmp_path, before) == before
    with pytest.raises(PartitionMissing):
        partition_paths(tmp_path, clip_to_log_start(tmp_path, before))


def test_a_missing_partition_inside_the_log_still_fails(tmp_path):
    _hours(tmp_path, [0, 1, 3, 4])
    w = clip_to_log_start(tmp_path, Window(T0 - 19 * H, T0 + 5 * H))
    assert w.start == T0
    with pytest.raises(PartitionMissing, match=r"hour=02 is missing .*: backfill that hour or shorten --lookback"):
        partition_paths(tmp_path, w)


def test_spark_log_level_setting(monkeypatch):
    assert Settings().spark_log_level == "ERROR"
    monkeypatch.setenv("SOLARIS_SPARK_LOG_LEVEL", "warn")
    assert load_settings().spark_log_level == "WARN"
    assert load_settings(spark_log_level="info").spark_log_level == "INFO"
    with pytest.raises(ConfigError, match="SOLARIS_SPARK_LOG_LEVEL"):
        load_settings(spark_log_level="loud")


def test_spark_conf_points_the_driver_at_our_log4j2_file():
    from solaris_batch.jobs import submit_conf
    from solaris_batch.speculate.spark import LOG4J2, spark_conf

    opts = spark_conf(Settings(spark_log_level="WARN"))["spark.driver.extraJavaOptions"]
    assert f"-Dlog4j2.configurationFile={LOG4J2.as_uri()}" in opts and "-Dsolaris.spark.logLevel=WARN" in opts
    assert LOG4J2.exists()
    # a driver deployed into the cluster cannot read a file of this machine
    assert "spark.driver.extraJavaOptions" not in submit_conf(Settings(), "yarn", driver_here=False)


def _relay(lines: list[bytes], quiet: bool, capsys, keep=None):
    from solaris_batch.speculate.spark import relay_output

    r, w = os.pipe()
    os.write(w, b"".join(lines))
    os.close(w)
    tail: deque[str] = deque(maxlen=3)
    relay_output(os.fdopen(r, "rb"), "stderr", quiet, keep, tail).join(timeout=10)
    return capsys.readouterr().err, list(tail)


JVM_LINES = [b"WARNING: Using incubator modules: jdk.incubator.vector\n", b"planned 10 pairs\n",
             b"netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed: libblas.so.3: cannot open shared object\n",
             b"solaris: error: log partition x is missing: backfill that hour\n"]


def test_relay_leaves_out_the_jvm_lines_no_log_level_reaches_when_quiet(capsys):
    err, tail = _relay(JVM_LINES, True, capsys, keep=lambda ln: "solaris: error: " not in ln)
    assert err == "planned 10 pairs\n"
    assert tail[-1].startswith("solaris: error: ")  # kept for the caller to raise
    err, _ = _relay(JVM_LINES, False, capsys)
    assert err == b"".join(JVM_LINES).decode()
