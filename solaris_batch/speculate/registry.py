"""Versioned speculator models: ``<root>/<version>/`` plus a ``LATEST`` pointer, flipped atomically.

    <root>/<version>/model/        Spark ML PipelineModel (assembler + classifier)
    <root>/<version>/_meta.json    SpeculatorMeta: features, training windows, metrics
    <root>/LATEST                  name of the version speculate loads

A version is written under a temporary name and renamed into place, then ``LATEST`` is replaced by
rename, so a reader sees either the old or the new model, never a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from solaris_batch.errors import InputNotFound
from solaris_batch.storage import fsync_dir, write_atomic
from solaris_batch.storage.atomic import fsync_tree

LATEST = "LATEST"


@dataclass(frozen=True)
class SpeculatorMeta:
    version: str
    features: list[str]
    train_at: list[str]
    lookback: str
    horizon: str
    examples: int
    positives: int
    train_auc: float | None = None
    options: dict = field(default_factory=dict)


def new_version(root: Path) -> Path:
    """A fresh, empty staging folder for a new version under ``root``; commit with ``commit``."""
    staging = Path(root) / f".staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    return staging


def commit(staging: Path, meta: SpeculatorMeta) -> Path:
    """Write ``_meta.json``, move the staged version into place and point ``LATEST`` at it."""
    (staging / "_meta.json").write_text(json.dumps(asdict(meta), indent=2) + "\n")
    root = staging.parent
    final = root / meta.version
    if final.exists():  # same training windows and data: an identical rerun, keep the first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        fsync_tree(staging)
        os.replace(staging, final)
        fsync_dir(root)
    write_atomic(root / LATEST, meta.version + "\n")
    return final


def latest(root: Path) -> Path | None:
    """Folder of the latest version, or None when nothing was ever registered."""
    p = Path(root) / LATEST
    if not p.exists():
        return None
    d = Path(root) / p.read_text().strip()
    if not (d / "_meta.json").exists():
        raise InputNotFound(f"speculator registry {root} points at missing version {d.name}:"
                            " rerun 'solaris train-speculator'")
    return d


def read_meta(version_dir: Path) -> SpeculatorMeta:
    return SpeculatorMeta(**json.loads((Path(version_dir) / "_meta.json").read_text()))


def list_versions(root: Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if (p / "_meta.json").exists()) if root.is_dir() else []
