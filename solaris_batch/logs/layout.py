"""Paths of the canonical request log: ``<logs>/requests/dt=YYYY-MM-DD/hour=HH/*.parquet``."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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


def write_json_atomic(obj, path: Path) -> None:
    """Write ``obj`` as indented JSON under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def write_table_atomic(table: pa.Table, path: Path, **kwargs) -> None:
    """Write a Parquet file under a temporary name, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, **kwargs)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def replace_dir(tmp: Path, out: Path) -> None:
    """Swap a fully written folder ``tmp`` into place at ``out``; the old ``out`` goes whole."""
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def write_partition(logs: Path, hour: datetime, table: pa.Table) -> Path:
    """Write one hour partition (``part-00000.parquet``) and then its ``_SUCCESS`` marker."""
    d = partition_dir(logs, hour)
    write_table_atomic(table, d / "part-00000.parquet", row_group_size=1 << 20)
    (d / SUCCESS).touch()
    return d
