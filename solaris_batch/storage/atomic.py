"""The one way the project replaces a local file or folder: write new, fsync, rename, fsync the dir.

Every writer of a local file that others read (manifests, pointers, plans, checkpoints, reports,
Parquet partitions) goes through here, so a crash at any instant leaves the old or the new
content, never a mix, and a rename that returned survives a power loss.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def fsync_dir(d: Path) -> None:
    """Make the renames inside folder ``d`` durable."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` for any writer (Parquet, torch, ...); when the block ends
    without error it is fsynced and renamed over ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Durably replace ``path`` with ``data``; readers see the old or the new content."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def write_json_atomic(obj, path: Path) -> None:
    """``obj`` as indented JSON, durably replacing ``path``."""
    write_atomic(path, json.dumps(obj, indent=2) + "\n")


def write_table_atomic(table: pa.Table, path: Path, **kwargs) -> None:
    """A Parquet file durably replacing ``path`` (``kwargs`` go to ``pq.write_table``)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **kwargs)


def fsync_tree(d: Path) -> None:
    """fsync every file and folder under ``d`` (before the rename that publishes it)."""
    for dirpath, _, files in os.walk(d):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


def replace_dir(tmp: Path, out: Path) -> None:
    """Swap a fully written folder ``tmp`` into place at ``out`` (fsynced first); the old ``out``
    goes whole."""
    tmp, out = Path(tmp), Path(out)
    fsync_tree(tmp)
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(out: Path) -> Iterator[Path]:
    """A fresh sibling folder to build ``out`` in; on success it replaces ``out`` whole
    (``replace_dir``, which fsyncs the tree first), on failure it is removed and ``out`` is
    untouched. Files written inside need no atomic writes of their own: the folder appears whole."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
