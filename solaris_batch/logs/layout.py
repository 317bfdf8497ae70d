"""Paths of the canonical request log: ``<logs>/requests/dt=YYYY-MM-DD/hour=HH/*.parquet``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from solaris_batch.storage import Root, write_atomic, write_table_atomic

SUCCESS = "_SUCCESS"


def partition_rel(hour: datetime) -> str:
    """The hour partition that starts at ``hour`` (UTC), relative to the log root."""
    return f"requests/dt={hour:%Y-%m-%d}/hour={hour:%H}"


def partition_dir(logs: Path, hour: datetime) -> Path:
    """Folder of the hour partition that starts at ``hour`` (UTC) under a local log root."""
    return Path(logs) / partition_rel(hour)


def first_hour(logs: str | Path | Root) -> datetime | None:
    """Start (UTC) of the earliest hour partition folder under ``<logs>/requests``, complete or
    not; None when there is none. Where the log begins. ``logs`` is any root URI."""
    root = Root.open(logs)
    for day in sorted(d for d in root.listdir("requests") if d.startswith("dt=")):
        hours = sorted(h for h in root.listdir(f"requests/{day}") if h.startswith("hour=")
                       and root.is_dir(f"requests/{day}/{h}"))
        if hours:
            return datetime.strptime(f"{day[3:]} {hours[0][5:]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return None


def hour_complete(logs: str | Path | Root, hour: datetime) -> bool:
    """True when the hour partition starting at ``hour`` holds ``_SUCCESS`` (any root URI)."""
    return Root.open(logs).exists(f"{partition_rel(hour)}/{SUCCESS}")


def write_partition(logs: Path, hour: datetime, table: pa.Table) -> Path:
    """Write one hour partition (``part-00000.parquet``) and then its ``_SUCCESS`` marker."""
    d = partition_dir(logs, hour)
    write_table_atomic(table, d / "part-00000.parquet", row_group_size=1 << 20)
    write_atomic(d / SUCCESS, b"")  # the marker commits the partition: after its data, durably
    return d
