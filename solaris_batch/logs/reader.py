"""Read windows of the canonical request log, refusing incomplete or malformed input loudly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from solaris_batch import schemas
from solaris_batch.errors import EmptyWindow, InputNotFound, PartitionIncomplete, PartitionMissing
from solaris_batch.logs.layout import SUCCESS, first_hour, partition_rel
from solaris_batch.storage import Root
from solaris_batch.storage.uri import arrow_paths
from solaris_batch.timeutil import Window


def require_logs_root(logs: str | Path | Root) -> Root:
    """The log root at ``logs`` (a path or any root URI), which must hold ``requests/``."""
    root = Root.open(logs)
    if not root.is_dir("requests"):
        raise InputNotFound(
            f"no request log at {root.uri('requests')}: pass --logs (or set SOLARIS_LOGS) to a log root,"
            " or create one with 'solaris simulate --out DIR'"
        )
    return root


def clip_to_log_start(logs: str | Path | Root, window: Window) -> Window:
    """``window``, its start moved up to the log's first hour partition when the log begins inside it.

    For lookbacks that reach back before the logs do (the first runs of a fresh deployment). Only
    the start moves: a partition missing after the log's start still fails in ``partition_paths``,
    and a window that ends before the log begins is returned as it is (and fails there too).
    """
    first = first_hour(require_logs_root(logs))
    if first is None or not window.start < first < window.end:
        return window
    return Window(first, window.end)


def partition_paths(logs: str | Path | Root, window: Window, allow_missing: bool = False) -> list[str]:
    """Hour partitions covering ``window`` as URIs (plain paths for local roots); each must exist
    and hold ``_SUCCESS``.

    With ``allow_missing``, absent hours are skipped (a window that starts before the log does),
    but a partition that exists without ``_SUCCESS`` is always refused: it may still be written.
    """
    root = require_logs_root(logs)
    out = []
    for hour in window.hours():
        rel = partition_rel(hour)
        if not root.is_dir(rel):
            if allow_missing:
                continue
            raise PartitionMissing(
                f"log partition {root.uri(rel)} is missing for window {window}: backfill that hour or"
                " shorten --lookback"
            )
        if not root.exists(f"{rel}/{SUCCESS}"):
            raise PartitionIncomplete(
                f"log partition {root.uri(rel)} has no {SUCCESS} marker (still being written?):"
                " wait for it to complete, then rerun"
            )
        out.append(root.uri(rel))
    if not out:
        raise EmptyWindow(f"no log partitions in window {window} under {root.uri('requests')}:"
                          " check --at and --lookback")
    return out


def log_files(paths: list[str], window: Window) -> list[str]:
    """Parquet files (URIs) of the given partitions, each checked against the log contract."""
    files = []
    for p in paths:
        part = Root.open(p)
        for name in part.listdir(""):
            if name.endswith(".parquet"):
                fs, path = part.arrow(name)
                schemas.check_schema(pq.read_schema(path, filesystem=fs), schemas.REQUEST_LOG,
                                     f"log file {part.uri(name)}")
                files.append(part.uri(name))
    if not files:
        raise EmptyWindow(f"log partitions for {window} hold no Parquet files")
    return sorted(files)


def read_window(
    logs: str | Path | Root,
    window: Window,
    columns: list[str] | None = None,
    where: pc.Expression | None = None,
    allow_missing: bool = False,
) -> pa.Table:
    """Rows with ``window.start <= ts < window.end`` in the canonical schema, ordered by file.

    Raises ``SchemaMismatch`` if any file breaks the contract and ``EmptyWindow`` if no row matches.
    """
    fs, files = arrow_paths(log_files(partition_paths(logs, window, allow_missing=allow_missing), window))
    dataset = ds.dataset(files, format="parquet", schema=schemas.REQUEST_LOG, filesystem=fs)
    cond = (pc.field("ts") >= pa.scalar(window.start, schemas.TS)) & (
        pc.field("ts") < pa.scalar(window.end, schemas.TS)
    )
    if where is not None:
        cond = cond & where
    table = dataset.to_table(columns=columns, filter=cond)
    if table.num_rows == 0:
        raise EmptyWindow(f"no log rows in window {window}{' matching the filter' if where is not None else ''}")
    return table


def read_ads(logs: str | Path | Root) -> pa.Table | None:
    """The optional ads dimension table, or None when ``<logs>/ads`` is absent."""
    root = Root.open(logs)
    if not root.is_dir("ads"):
        return None
    fs, path = root.arrow("ads")
    table = ds.dataset(path, format="parquet", filesystem=fs).to_table()
    schemas.check_schema(table.schema, schemas.ADS, f"ads table {root.uri('ads')}")
    return table
