"""Versioned speculator models: ``<root>/<version>/`` plus a ``LATEST`` pointer, flipped atomically.

    <root>/<version>/model/        Spark ML PipelineModel (assembler + classifier)
    <root>/<version>/_meta.json    SpeculatorMeta: features, training windows, metrics
    <root>/LATEST                  name of the version speculate loads

A version is written under a temporary name and renamed into place, then ``LATEST`` is replaced by
rename, so a reader sees either the old or the new model, never a partial one. Which speculator a
job uses is a ``SpeculatorChoice``, parsed once from its command-line or settings string.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from solaris_batch.errors import ConfigError, InputNotFound
from solaris_batch.storage import fsync_dir, write_atomic
from solaris_batch.storage.atomic import fsync_tree

LATEST = "LATEST"


class SpeculatorKind(StrEnum):
    """How a job picks its speculator (the values are the command-line keywords)."""

    HEURISTIC = "heuristic"
    """The fallback score, no model (``scoring.HEURISTIC``)."""
    LATEST = "latest"
    """The version ``LATEST`` names in the registry; the heuristic, with a warning, if none."""
    VERSION = "version"
    """A given version folder."""
    TRAIN = "train"
    """A fresh model trained on windows before each evaluated time (backtest and evaluate only)."""


@dataclass(frozen=True)
class SpeculatorChoice:
    """Which speculator scores the candidates: the heuristic, or a learned model (a version folder,
    ``LATEST`` of the registry, or one trained on the spot).

    ``str()`` gives back the command-line form, so ``parse(str(c)) == c``.
    """

    kind: SpeculatorKind
    version_dir: Path | None = None
    """The version folder, for ``VERSION`` only."""

    def __post_init__(self) -> None:
        if (self.kind is SpeculatorKind.VERSION) != (self.version_dir is not None):
            raise ValueError(f"a version folder goes with kind VERSION only, got {self.kind} and {self.version_dir}")

    @classmethod
    def parse(cls, text: str | Path | SpeculatorChoice | None) -> SpeculatorChoice:
        """Parse ``heuristic``, ``latest``, ``train`` or a version folder; None is ``latest``.

        Args:
            text: the command-line or settings value (a choice is returned as is).

        Returns:
            The choice; any other text is taken as a version folder (checked when it is loaded).
        """
        if isinstance(text, SpeculatorChoice):
            return text
        if text is None or str(text) == "":
            return cls(SpeculatorKind.LATEST)
        s = str(text)
        if s in (SpeculatorKind.HEURISTIC, SpeculatorKind.LATEST, SpeculatorKind.TRAIN):
            return cls(SpeculatorKind(s))
        return cls(SpeculatorKind.VERSION, Path(s))

    @classmethod
    def version(cls, version_dir: Path) -> SpeculatorChoice:
        """The model in ``version_dir`` (a folder of the registry, ``<root>/<version>``)."""
        return cls(SpeculatorKind.VERSION, Path(version_dir))

    def model_dir(self, registry_root: Path | None) -> Path | None:
        """The version folder to load, or None for the heuristic.

        Args:
            registry_root: the registry ``LATEST`` is read from (None: nothing registered).

        Raises:
            ConfigError: for ``TRAIN``, which needs training first (``scoring.train``).
            InputNotFound: ``LATEST`` names a version that is not there.
        """
        if self.kind is SpeculatorKind.TRAIN:
            raise ConfigError("speculator 'train' is for backtest and evaluate: use latest, heuristic or a"
                              " version folder, or run 'solaris train-speculator' first")
        if self.kind is SpeculatorKind.VERSION:
            return self.version_dir
        if self.kind is SpeculatorKind.LATEST and registry_root is not None:
            return latest(registry_root)
        return None

    def __str__(self) -> str:
        return str(self.version_dir) if self.kind is SpeculatorKind.VERSION else self.kind.value


LATEST_SPECULATOR = SpeculatorChoice(SpeculatorKind.LATEST)
"""The default of the speculate and train jobs: ``LATEST`` of the registry."""
TRAIN_SPECULATOR = SpeculatorChoice(SpeculatorKind.TRAIN)
"""The default of the backtest: a model trained at each evaluated time."""


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
