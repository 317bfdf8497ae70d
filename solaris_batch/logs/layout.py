"""Paths of the canonical request log: ``<logs>/requests/dt=YYYY-MM-DD/hour=HH/*.parquet``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from solaris_batch.storage import write_atomic, write_table_atomic

SUCCESS = "_SUCCESS"


def partition_dir(logs: Path, hour: datetime) -> Path:
    """Folder of the hour partition that starts at ``hour`` (UTC)."""
    return Path(logs) / "requests" / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def first_hour(logs: Path) -> datetime | None:
    """Start (UTC) of the earliest hour partition folder under ``<logs>/requests``, complete or
    not; None when there is none. Where the log begins."""
    for day in sorted(d for d in (Path(logs) / "requests").glob("dt=*") if d.is_dir()):
        hours = sorted(h.name for h in day.glob("hour=*") if h.is_dir())
        if hours:
            return datetime.strptime(f"{day.name[3:]} {hours[0][5:]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return None


def hour_complete(logs: Path, hour: datetime) -> bool:
    """True when the hour partition starting at ``hour`` holds ``_SUCCESS``."""
    return (partition_dir(logs, hour) / SUCCESS).exists()


def write_partition(logs: Path, hour: datetime, table: pa.Table) -> Path:
    """Write one hour partition (``part-00000.parquet``) and then its ``_SUCCESS`` marker."""
    d = partition_dir(logs, hour)
    write_table_atomic(table, d / "part-00000.parquet", row_group_size=1 << 20)
    write_atomic(d / SUCCESS, b"")  # the marker commits the partition: after its data, durably
    return d
