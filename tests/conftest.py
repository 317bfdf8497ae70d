"""Shared fixtures: tiny hand-built logs, and one session-scoped SparkSession for integration."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from solaris_batch import schemas
from solaris_batch.logs.layout import write_partition

T0 = datetime(2026, 11, 20, 0, tzinfo=UTC)


def tiny_fm_config(**overrides):
    """The one tiny reference-FM config the unit tests share (fast on CPU); ``overrides`` for the
    few tests that need another size."""
    from dataclasses import replace

    from solaris_batch.model.fm import FMConfig

    sizes = {"ad_buckets": 256, "cat_buckets": 16, "d_model": 16, "n_heads": 2, "seq_len": 8, "emb_dim": 8}
    return replace(FMConfig(), **{**sizes, **overrides})


def log_table(rows: list[tuple]) -> pa.Table:
    """rows: (request_id, ts, user_id, ad_id, position, impressed, clicked)."""
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return pa.table(
        {
            "request_id": pa.array(cols[0], pa.int64()),
            "ts": pa.array(cols[1], schemas.TS),
            "user_id": pa.array(cols[2], pa.int64()),
            "ad_id": pa.array(cols[3], pa.int64()),
            "position": pa.array(cols[4], pa.int32()),
            "impressed": pa.array(cols[5], pa.bool_()),
            "clicked": pa.array(cols[6], pa.bool_()),
            "surface": pa.array(["feed"] * len(rows), pa.string()),
        },
        schema=schemas.REQUEST_LOG,
    )


def write_hours(logs: Path, by_hour: dict[int, list[tuple]]) -> None:
    for h, rows in by_hour.items():
        write_partition(logs, T0 + timedelta(hours=h), log_table(rows))


@pytest.fixture(scope="session")
def spark():
    from solaris_batch.config import Settings
    from solaris_batch.speculate.spark import get_spark

    s = get_spark(Settings(shards=2, spark_shuffle_partitions=2), "solaris-tests")
    yield s
    s.stop()


def python_without_solaris(tmp: Path) -> Path:
    """An interpreter standing for a cluster node's Python without our package: this venv's, with
    the editable install's finders removed and no ``sys.path`` entry holding a ``solaris_batch``
    folder, so only a shipped zip can provide ``solaris_batch``. Each start appends its arguments
    to ``<tmp>/python-without-solaris.log`` (proof the executors ran it)."""
    site = tmp / "site-without-solaris"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'solaris' not in repr(f)]\n"
        "sys.path_hooks[:] = [h for h in sys.path_hooks if 'solaris' not in repr(h)]\n"
        "sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or '.', 'solaris_batch'))]\n"
        "sys.path_importer_cache.clear()\n")
    exe = tmp / "python-without-solaris"
    exe.write_text(f'#!/bin/sh\necho "$@" >> "{tmp}/python-without-solaris.log"\n'
                   f'PYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n')
    exe.chmod(0o755)
    return exe
