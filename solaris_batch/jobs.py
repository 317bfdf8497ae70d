"""Typed arguments of the Spark jobs, and the one launcher that runs them.

One frozen dataclass per ``spark_jobs/<script>.py`` entry point: ``SpeculateJob``,
``TrainSpeculatorJob`` and ``BacktestJob``. The CLI, the pipeline steps and the DAGs build one; its
command line (``to_argv``) and the entry point's parser (``from_argv``) are both derived from its
fields, so the two cannot drift. Every field value goes through its ``Codec``, which takes the
command-line text or an already typed value (None means the field's default):
``SpeculateJob(at="2026-11-21T23:00", out=plan, budget="2x")`` holds a ``datetime``, a ``Path``
and a ``Budget``. Fields marked with a ``setting`` default to that ``Settings`` property when the
job is launched (``resolve``), so a child process gets them explicitly.

``launch`` runs a job in this process or through ``spark-submit`` in a child process and returns
its result either way; ``submit_spec`` is the same job for Airflow's ``SparkSubmitOperator``;
``entry_point`` is the ``__main__`` of every script.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

from solaris_batch.config import (
    DEFAULT_BUDGET,
    DEFAULT_BUDGETS,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_SEQ_LEN,
    DEFAULT_SPECULATOR_WINDOWS,
    Settings,
    load_settings,
)
from solaris_batch.errors import ConfigError, SolarisError
from solaris_batch.speculate.backtest import STRATEGIES
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.plan import PlanInfo, read_plan_info
from solaris_batch.speculate.registry import (
    LATEST_SPECULATOR,
    TRAIN_SPECULATOR,
    SpeculatorChoice,
    SpeculatorKind,
    SpeculatorMeta,
)
from solaris_batch.timeutil import format_duration, parse_duration, parse_time

SPARK_JOBS_DIR = Path(__file__).resolve().parents[1] / "spark_jobs"
"""The entry-point scripts ``spark-submit`` runs by path: ``spark_jobs/`` of the source checkout
(scripts, not a package: the wheel does not install them)."""

ERROR_PREFIX = "solaris: error: "
"""How an entry point reports an expected failure on stderr; ``launch`` raises it again."""


# Job arguments ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Codec:
    """How one job argument is read (from its command-line text, or an already typed value) and
    written back to the command line; ``parse(format(v)) == v``."""

    parse: Callable[[Any], Any]
    format: Callable[[Any], str] = str


def _split(v: Any) -> list:
    return [s.strip() for s in v.split(",")] if isinstance(v, str) else list(v)


def _times(v: Any) -> tuple[datetime, ...]:
    return tuple(parse_time(t) for t in ([v] if isinstance(v, datetime) else _split(v)))


def _local(v: Any) -> Path:
    """A folder the Spark jobs write: a local or shared path (``Path('s3://b')`` would be a local
    folder named ``s3:``, so a URI is refused until a Hadoop object-store connector is shipped)."""
    from solaris_batch.storage.uri import local_path

    local = local_path(v)
    if local is None:
        raise ConfigError(f"{v} is an object-store URI, but the Spark jobs write plans, reports and the speculator"
                          " registry to local or shared paths only: set SOLARIS_WORK / SOLARIS_SPECULATOR (or --out)"
                          " to a shared filesystem path")
    return local


PATH = Codec(_local)


def _uri(v: Any) -> Path | str:
    """A root: a ``Path`` when local, else the URI text (``Path('s3://b')`` would drop a slash)."""
    from solaris_batch.storage.uri import local_path

    local = local_path(v)
    return local if local is not None else str(v)


URI = Codec(_uri)
INT = Codec(int)
TIME = Codec(parse_time, datetime.isoformat)
TIMES = Codec(_times, lambda ts: ",".join(t.isoformat() for t in ts))
DURATION = Codec(parse_duration, format_duration)
BUDGET = Codec(Budget.parse)
BUDGETS = Codec(Budget.parse_list, lambda bs: ",".join(map(str, bs)))
NAMES = Codec(lambda v: tuple(_split(v)), ",".join)
SPECULATOR = Codec(SpeculatorChoice.parse)


def arg(codec: Codec, default: Any = MISSING, *, help: str, flag: str | None = None,
        setting: str | None = None) -> Any:
    """A job-argument field.

    Args:
        codec: reads and writes the value.
        default: the default (command-line text or typed); none makes the argument required.
        help: the entry point's ``--help`` line.
        flag: the command-line flag (default ``--<field-name>`` with ``-`` for ``_``).
        setting: the ``Settings`` property the value defaults to at launch when it is None.
    """
    return field(default=default, metadata={"codec": codec, "help": help, "flag": flag, "setting": setting})


def _flag(f: Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


class SparkJob:
    """Base of the typed job arguments: keyword-only frozen dataclasses of ``arg`` fields.

    A subclass names its script (``spark_jobs/<script>.py``) and says how to run itself in a
    SparkSession (``run``), how to read its result back from its outputs after ``spark-submit``
    (``read_result``) and how the entry point summarizes that result (``summary``).
    """

    script: ClassVar[str]

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.default is not MISSING:
                v = f.default
            if v is not None:
                object.__setattr__(self, f.name, f.metadata["codec"].parse(v))

    @property
    def app_name(self) -> str:
        """Spark application name: ``solaris-<script>``."""
        return "solaris-" + self.script.replace("_", "-")

    @classmethod
    def parser(cls) -> argparse.ArgumentParser:
        """The entry point's argument parser, one flag per field."""
        p = argparse.ArgumentParser(prog=cls.script, description=(cls.__doc__ or "").strip().splitlines()[0])
        for f in fields(cls):
            p.add_argument(_flag(f), dest=f.name, metavar=_flag(f)[2:].upper().replace("-", "_"),
                           required=f.default is MISSING, default=argparse.SUPPRESS, help=f.metadata["help"])
        return p

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> Self:
        """Parse the entry point's command line (default ``sys.argv[1:]``)."""
        return cls(**vars(cls.parser().parse_args(argv)))

    def to_argv(self) -> list[str]:
        """The entry point's command line for these arguments (None values left out)."""
        argv: list[str] = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                argv += [_flag(f), f.metadata["codec"].format(v)]
        return argv

    def resolve(self, settings: Settings) -> Self:
        """A copy with every None field that has a ``setting`` taken from ``settings``, and every local
        path absolute: a driver started elsewhere (another working folder, or a cluster node in
        cluster deploy mode) reads and writes the same paths, on the filesystem they share."""
        job = replace(self, **{f.name: getattr(settings, f.metadata["setting"]) for f in fields(self)
                               if f.metadata["setting"] and getattr(self, f.name) is None})
        return replace(job, **{f.name: getattr(job, f.name).absolute() for f in fields(job)
                               if isinstance(getattr(job, f.name), Path)})

    def run(self, spark) -> Any:
        """Run the job in ``spark`` (arguments resolved); returns its result."""
        raise NotImplementedError

    def read_result(self) -> Any:
        """The result ``run`` returned, read back from the job's outputs."""
        raise NotImplementedError

    def summary(self, result: Any) -> str:
        """The entry point's last line of output."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SpeculateJob(SparkJob):
    """Speculate job: from the lookback window of request logs, plan the pairs of the next horizon.

    Runs ``speculate.planner.write_plan``; the result is the plan's ``PlanInfo``.
    """

    script: ClassVar[str] = "speculate"
    logs: Path | str | None = arg(URI, None, help="request-log root, a path or URI (default SOLARIS_LOGS)",
                                  setting="logs_root")
    at: datetime = arg(TIME, help="ISO time T (UTC); the horizon starts here")
    lookback: timedelta = arg(DURATION, DEFAULT_LOOKBACK, help="log window mined before T")
    horizon: timedelta = arg(DURATION, DEFAULT_HORIZON, help="window the plan serves")
    budget: Budget = arg(BUDGET, DEFAULT_BUDGET, help="pair count, or Nx of the last horizon's distinct pairs")
    out: Path = arg(PATH, help="plan folder (replaced whole)")
    shards: int | None = arg(INT, None, help="plan shards (default SOLARIS_SHARDS)", setting="shards")
    seq_len: int = arg(INT, DEFAULT_SEQ_LEN, help="events kept per user sequence")
    per_user_cap: int | None = arg(INT, None, help="at most this many pairs per user")
    speculator: SpeculatorChoice = arg(SPECULATOR, LATEST_SPECULATOR, flag="--model",
                                       help="speculator version folder, heuristic, or latest (default)")
    registry: Path | None = arg(PATH, None, help="speculator registry (default SOLARIS_SPECULATOR)",
                                setting="speculator_path")

    def run(self, spark) -> PlanInfo:
        from solaris_batch.speculate.planner import write_plan

        return write_plan(spark, self.logs, self.at, self.lookback, self.horizon, self.budget, self.out,
                          shards=self.shards, seq_len=self.seq_len, per_user_cap=self.per_user_cap,
                          speculator=self.speculator, registry_root=self.registry)

    def read_result(self) -> PlanInfo:
        return read_plan_info(self.out)

    def summary(self, result: PlanInfo) -> str:
        return (f"speculate: planned {result.pairs} pairs for {result.users} users in {len(result.shards)} shards"
                f" from the log since {result.lookback_start}")


@dataclass(frozen=True, kw_only=True)
class TrainSpeculatorJob(SparkJob):
    """Train the speculator on past windows and register it as the version speculate loads.

    Window i has horizon start ``at - horizon - i * every``; every label lies before ``at``. Runs
    ``speculate.scoring.train``; the result is the new version's ``SpeculatorMeta``.
    """

    script: ClassVar[str] = "train_speculator"
    logs: Path | str | None = arg(URI, None, help="request-log root, a path or URI (default SOLARIS_LOGS)",
                                  setting="logs_root")
    at: datetime = arg(TIME, help="train on data before this time (UTC)")
    windows: int = arg(INT, DEFAULT_SPECULATOR_WINDOWS, help="past windows to learn from")
    every: timedelta | None = arg(DURATION, None, help="spacing of the windows (default: the horizon)")
    lookback: timedelta = arg(DURATION, DEFAULT_LOOKBACK, help="feature window before each window start")
    horizon: timedelta = arg(DURATION, DEFAULT_HORIZON, help="label window after each window start")
    registry: Path | None = arg(PATH, None, help="registry folder (default SOLARIS_SPECULATOR)",
                                setting="speculator_path")
    seed: int = arg(INT, 0, help="seed of the gradient-boosted trees")

    def run(self, spark) -> SpeculatorMeta:
        from solaris_batch.speculate import scoring

        return scoring.train(spark, self.logs, self.at, self.registry, self.lookback, self.horizon,
                             windows=self.windows, every=self.every, seed=self.seed)

    def read_result(self) -> SpeculatorMeta:
        from solaris_batch.speculate import registry

        return registry.read_meta(registry.latest(self.registry))

    def summary(self, result: SpeculatorMeta) -> str:
        return (f"train-speculator: registered {result.version} ({result.examples} examples,"
                f" train AUC {result.train_auc:.4f})")


@dataclass(frozen=True, kw_only=True)
class BacktestJob(SparkJob):
    """Backtest: replay real horizons against the plans each strategy would have produced.

    Runs ``speculate.backtest.run``; the result is the report also written to
    ``out/backtest.json`` (with ``out/coverage.png``).
    """

    script: ClassVar[str] = "backtest"
    logs: Path | str | None = arg(URI, None, help="request-log root, a path or URI (default SOLARIS_LOGS)",
                                  setting="logs_root")
    at: tuple[datetime, ...] = arg(TIMES, help="comma-separated horizon starts (UTC)")
    lookback: timedelta = arg(DURATION, DEFAULT_LOOKBACK, help="log window mined before each start")
    horizon: timedelta = arg(DURATION, DEFAULT_HORIZON, help="window each plan serves")
    budgets: tuple[Budget, ...] = arg(BUDGETS, DEFAULT_BUDGETS, help="comma-separated budgets (counts or Nx)")
    strategies: tuple[str, ...] = arg(NAMES, STRATEGIES, help="comma-separated strategies")
    speculator: SpeculatorChoice = arg(SPECULATOR, TRAIN_SPECULATOR, flag="--model",
                                       help="train (default), latest, heuristic, or a version folder")
    registry: Path | None = arg(PATH, None, help="speculator registry (default DIR/speculator when training,"
                                " else SOLARIS_SPECULATOR)")
    train_windows: int = arg(INT, DEFAULT_SPECULATOR_WINDOWS, help="windows each trained model learns from")
    out: Path = arg(PATH, help="report folder (backtest.json, coverage.png)")

    def resolve(self, settings: Settings) -> Self:
        job = super().resolve(settings)
        if job.registry is None and job.speculator.kind is not SpeculatorKind.TRAIN:
            job = replace(job, registry=settings.speculator_path)
        return job

    def run(self, spark) -> dict:
        from solaris_batch.speculate import backtest

        return backtest.run(spark, self.logs, list(self.at), self.lookback, self.horizon, list(self.budgets),
                            self.out, strategies=list(self.strategies), speculator=self.speculator,
                            registry_root=self.registry, train_windows=self.train_windows)

    def read_result(self) -> dict:
        return json.loads((self.out / "backtest.json").read_text())

    def summary(self, result: dict) -> str:
        return f"backtest: {len(result['at'])} horizon(s), {result['horizon_rows']} rows"


# The launcher ----------------------------------------------------------------------------------
def launch(settings: Settings, job: SparkJob, submit: bool = False) -> Any:
    """Run a Spark job with ``settings`` and return its result.

    Args:
        settings: Spark master, memory, log level, and the defaults of the job's unset arguments.
        job: the job's arguments.
        submit: run it through ``spark-submit`` in a child process (as Airflow tasks do) instead of
            in this process; the child's output is relayed as it comes, quiet as
            ``settings.spark_log_level`` says, and the result is read back from the job's outputs.

    Returns:
        What the job's ``run`` returns (``PlanInfo``, ``SpeculatorMeta`` or the backtest report).

    Raises:
        SolarisError: the job failed with an expected error (its one-line message).
        RuntimeError: ``spark-submit`` failed otherwise (the last lines of its output attached).
    """
    job = job.resolve(settings)
    if not submit:
        from solaris_batch.speculate.spark import get_spark

        return job.run(get_spark(settings, job.app_name))
    from solaris_batch.speculate.spark import quiet, relay_output

    tail: deque[str] = deque(maxlen=15)
    proc = subprocess.Popen(submit_command(settings, job), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=submit_env(settings))
    relays = [relay_output(stream, to, quiet(settings), lambda ln: ERROR_PREFIX not in ln, tail)
              for stream, to in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    code = proc.wait()
    for r in relays:
        r.join()
    if code != 0:
        msg = next((ln.split(ERROR_PREFIX, 1)[1] for ln in tail if ERROR_PREFIX in ln), None)
        if msg:
            raise SolarisError(msg)
        raise RuntimeError(f"spark-submit {job.script} failed (exit code {code}):\n" + "\n".join(tail))
    return job.read_result()


def entry_point(job_class: type[SparkJob], argv: list[str] | None = None) -> None:
    """The ``__main__`` of ``spark_jobs/<script>.py``: parse the arguments, run the job in the
    ``spark-submit`` session, print its summary; an expected failure prints one ``solaris: error:``
    line (which ``launch`` raises again) and exits with its code."""
    try:
        settings = load_settings()
        job = job_class.from_argv(argv).resolve(settings)
        from solaris_batch.speculate.spark import get_spark

        print(job.summary(job.run(get_spark(settings, job.app_name))))
    except SolarisError as e:
        print(f"{ERROR_PREFIX}{e}", file=sys.stderr)
        sys.exit(e.exit_code)


def script_path(job: SparkJob) -> str:
    """Path of the job's entry point, ``spark_jobs/<script>.py`` (what ``spark-submit`` ships)."""
    path = SPARK_JOBS_DIR / f"{job.script}.py"
    if not path.is_file():
        raise ConfigError(f"Spark entry point {path} not found: spark-submit runs spark_jobs/ of a source checkout;"
                          " run from one (pip install -e .)")
    return str(path)


def submit_command(settings: Settings, job: SparkJob) -> list[str]:
    """The ``spark-submit`` command line of ``job`` under ``settings`` (arguments resolved).

    On a cluster master the same line ships the job to the cluster.
    """
    submit = Path(sys.executable).parent / "spark-submit"
    cmd = [str(submit) if submit.exists() else "spark-submit", "--master", settings.spark_master]
    for k, v in submit_conf(settings).items():
        cmd += ["--conf", f"{k}={v}"]
    return cmd + [script_path(job), *job.resolve(settings).to_argv()]


def submit_conf(settings: Settings, master: str | None = None, driver_here: bool = True) -> dict[str, str]:
    """``spark_conf`` for ``spark-submit``.

    On a ``local*`` master, also the interpreter of the driver (this one) and of the workers
    (``PYSPARK_PYTHON`` when set, else this one). Where executors are separate processes
    (``local-cluster``, ``spark://``, ``yarn``, ...: ``speculate.spark.embedded``), the package zip
    as ``spark.submit.pyFiles`` (what ``--py-files`` sets): a cluster's nodes bring their own Python
    with the dependencies (numpy, pyarrow, faiss-cpu, pandas) and get this package with each job.
    """
    from solaris_batch.speculate.spark import embedded, package_zip, spark_conf

    master = master or settings.spark_master
    conf = spark_conf(settings, master, driver_here)
    if master.startswith("local"):
        conf.update({"spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
                     "spark.pyspark.driver.python": sys.executable})
    if not embedded(master):
        conf["spark.submit.pyFiles"] = str(package_zip())
    return conf


def submit_env(settings: Settings) -> dict[str, str]:
    """Environment for ``spark-submit``: SPARK_HOME of the installed pyspark (``spark_home``), this
    interpreter, and the log level (the job reads its settings from the environment)."""
    env = dict(os.environ)
    env.setdefault("SPARK_HOME", spark_home(settings.spark_master))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env["SOLARIS_SPARK_LOG_LEVEL"] = settings.spark_log_level
    if settings.spark_master.startswith("local"):
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def spark_home(master: str) -> str:
    """SPARK_HOME for ``spark-submit``: the installed pyspark package, which holds Spark's ``bin/`` and
    ``jars/`` (all that ``local-cluster`` and standalone daemons need; no separate Spark download).

    A ``local-cluster[n,cores,mb]`` master runs its workers inside the driver, and they put every
    executor's folder (logs, fetched files) under ``SPARK_HOME/work``: for it, a folder of links
    to the package in the temp folder, so those stay out of site-packages.
    """
    import pyspark

    home = Path(pyspark.__file__).parent
    if not master.startswith("local-cluster"):
        return str(home)
    links = Path(tempfile.gettempdir()) / f"solaris-spark-home-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    links.mkdir(exist_ok=True)
    for p in home.iterdir():
        if p.name != "work" and not (links / p.name).is_symlink():
            with contextlib.suppress(FileExistsError):  # another launch linked it first
                (links / p.name).symlink_to(p)
    return str(links)


def submit_spec(settings: Settings, job: SparkJob, master: str, driver_here: bool = True) -> dict:
    """What Airflow's ``SparkSubmitOperator`` needs to run ``job`` through a Spark connection, whose
    ``master`` (and deploy mode, queue, keytab) the operator applies.

    Args:
        settings: Spark conf and the defaults of the job's unset arguments.
        job: the job's arguments.
        master: the connection's master URL (decides the local-only conf).
        driver_here: False when the connection deploys the driver into the cluster.

    Returns:
        ``{"application": script path, "conf": {...}, "application_args": [...]}``.
    """
    return {"application": script_path(job), "conf": submit_conf(settings, master, driver_here),
            "application_args": job.resolve(settings).to_argv()}
