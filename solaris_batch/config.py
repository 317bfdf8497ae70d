"""One typed settings object shared by the CLI, the Spark jobs and the DAGs.

Precedence: command-line flag > ``SOLARIS_*`` environment variable > embedded default. Every path
defaults to a folder under ``SOLARIS_DATA`` (``./data`` of the working directory), so a fresh
checkout runs with no configuration at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SPARK_LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
"""log4j levels, as ``SparkContext.setLogLevel`` takes them."""

# Defaults of the speculator's windows and budgets, written once: the CLI flags, the DAG params,
# the Spark job arguments (``solaris_batch.jobs``) and the library functions all refer to these.
DEFAULT_LOOKBACK = "24h"
"""Log window mined before the horizon start T."""
DEFAULT_FM_WINDOW = "24h"
"""Log window the FM trains on, before the training end."""
DEFAULT_HORIZON = "1h"
"""Window a plan serves, from T."""
DEFAULT_BUDGET = "2x"
"""Pairs planned: twice the distinct pairs of the last horizon-length window before T."""
DEFAULT_BUDGETS = "0.5x,1x,2x,4x"
"""The budgets a backtest sweeps."""
DEFAULT_SPECULATOR_WINDOWS = 4
"""Past horizons the speculator learns from."""
DEFAULT_SEQ_LEN = 128
"""Events kept per user sequence in a plan (the FM's input)."""


@dataclass(frozen=True)
class IntervalPaths:
    plan: Path | str
    embeddings: Path | str


class Settings(BaseSettings):
    """Locations and engine settings. Field ``x`` is read from env ``SOLARIS_X``."""

    model_config = SettingsConfigDict(env_prefix="SOLARIS_", extra="forbid", frozen=True)

    data: Path = Field(default_factory=lambda: Path.cwd() / "data")
    """Project-local data directory; the default parent of every location below."""

    logs: str | None = None
    """Request-log root (``<logs>/requests/dt=.../hour=.../``): a path or a URI (``s3://``,
    ``gs://``, ``hdfs://``, ...; credentials from pyarrow's usual environment). Default ``<data>/logs``."""

    work: str | None = None
    """Plans and embedding shards, keyed by interval: a path or a URI (the Spark jobs write plans
    through Hadoop's scheme for it, see ``storage.uri.to_hadoop``). Default ``<data>/work``."""

    snapshots: str | None = None
    """Snapshot root: a local path or a pyarrow filesystem URI. Default ``<data>/snapshots``."""

    model: str | None = None
    """FM checkpoint folder: a path or a URI. Default ``<data>/models/fm``."""

    speculator: Path | None = None
    """Speculator model registry (versions + ``LATEST``). Default ``<data>/models/speculator``."""

    metrics: str | None = None
    """Metrics tables written by the monitor DAG: a path or a URI. Default ``<data>/metrics``."""

    model_name: str = "fm"
    """Name under which snapshots are published (``<snapshots>/<model_name>/``)."""

    spark_master: str = "local[*]"
    """Spark master URL; ``local[*]`` embeds Spark, ``spark://host:7077`` or ``yarn`` scale out."""

    spark_driver_memory: str = "2g"
    """``spark.driver.memory`` for the speculate job."""

    spark_shuffle_partitions: int = 8
    """``spark.sql.shuffle.partitions``; small by default for one machine, raise on a cluster."""

    spark_log_level: str = "ERROR"
    """Level of Spark's own (log4j) console output in the driver. ``ERROR`` keeps the JVM's
    warnings out of our progress lines and summaries; ``WARN`` (the CLI's ``--verbose``, or an
    Airflow task log level of ``DEBUG``) brings them back; ``INFO``/``DEBUG`` for more."""

    shards: int = 4
    """Number of plan/embedding shards (parallel inference tasks)."""

    fm_class: str = "solaris_batch.model.fm:SolarisFM"
    """FM implementation as ``module:Class``; built from an ``FMConfig`` and following
    ``solaris_batch.model.fm.FMProtocol`` (encode_users, score, forward). Recorded in checkpoints."""

    device: str = "auto"
    """Torch device for inference: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:i]``."""

    @field_validator("model_name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v) or v.startswith("."):
            raise ValueError(f"model name {v!r} must be letters, digits, '-', '_' or '.'")
        return v

    @field_validator("logs", "work", "snapshots", "model", "metrics", mode="before")
    @classmethod
    def _uri_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, Path) else v  # a root may be passed as a Path

    @field_validator("spark_log_level")
    @classmethod
    def _log4j_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in SPARK_LOG_LEVELS:
            raise ValueError(f"Spark log level {v!r} must be one of {', '.join(SPARK_LOG_LEVELS)}")
        return level

    @field_validator("shards")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("shards must be >= 1")
        return v

    # Resolved locations -------------------------------------------------------------------
    @property
    def logs_root(self) -> Path | str:
        """A ``Path`` for local roots (plain paths, ``file://``), else the URI as given."""
        return _root(self.logs, self.data / "logs")

    @property
    def work_root(self) -> Path | str:
        return _root(self.work, self.data / "work")

    @property
    def snapshots_root(self) -> str:
        return self.snapshots or str(self.data / "snapshots")

    @property
    def metrics_root(self) -> Path | str:
        return _root(self.metrics, self.data / "metrics")

    @property
    def model_path(self) -> Path | str:
        return _root(self.model, self.data / "models" / "fm")

    @property
    def speculator_path(self) -> Path:
        return self.speculator or self.data / "models" / "speculator"

    def interval_paths(self, at: str | datetime) -> IntervalPaths:
        """Where the work of the interval whose horizon starts at ``at`` lives:
        ``<work>/plans/<T>`` and ``<work>/embeddings/<T>``."""
        from solaris_batch.storage.uri import join
        from solaris_batch.timeutil import parse_time, stamp

        s = stamp(parse_time(at))
        return IntervalPaths(join(self.work_root, "plans", s), join(self.work_root, "embeddings", s))

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the non-None overrides applied (CLI flags)."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)


def _root(value: str | None, default: Path) -> Path | str:
    from solaris_batch.storage.uri import local_path

    if value is None:
        return default
    local = local_path(value)
    return local if local is not None else value


def load_settings(**overrides: Any) -> Settings:
    """Read the environment, then apply CLI overrides; raise ``ConfigError`` on bad values."""
    from pydantic import ValidationError

    from solaris_batch.errors import ConfigError

    try:
        return Settings().with_overrides(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"invalid setting {where}: {first['msg']} (check SOLARIS_{where.upper()} or the flag)"
        ) from None
