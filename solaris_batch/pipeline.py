"""Every stage as a plain function: what the CLI and the DAG tasks call.

Paths are keyed by the horizon start T: ``<work>/plans/<T>`` and ``<work>/embeddings/<T>``, so a
rerun for the same interval overwrites its own outputs and nothing else.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from solaris_batch.config import Settings
from solaris_batch.errors import SolarisError
from solaris_batch.speculate.plan import PlanInfo, read_plan_info
from solaris_batch.timeutil import Window, parse_duration, parse_time, stamp


@dataclass(frozen=True)
class IntervalPaths:
    plan: Path
    embeddings: Path


def interval_paths(settings: Settings, at: str | datetime) -> IntervalPaths:
    s = stamp(parse_time(at))
    return IntervalPaths(settings.work_root / "plans" / s, settings.work_root / "embeddings" / s)


def spark_job(settings: Settings, job: str, args: list[str], submit: bool = False):
    """Run ``spark_jobs/<job>.py`` with ``args``: in this process (returns its ``main`` result), or
    through ``spark-submit`` in a child process with ``submit`` (returns None; the job's output is
    relayed as it comes, quiet as ``settings.spark_log_level`` says, and a ``solaris: error:``
    line from it is raised as ``SolarisError`` instead of being printed)."""
    import importlib

    if not submit:
        return importlib.import_module(f"spark_jobs.{job}").main(args, settings=settings)
    from collections import deque

    from spark_jobs.session import quiet, relay_output, submit_command, submit_env

    tail: deque[str] = deque(maxlen=15)
    proc = subprocess.Popen(submit_command(settings, job, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=submit_env(settings))
    relays = [relay_output(stream, to, quiet(settings), lambda ln: "solaris: error: " not in ln, tail)
              for stream, to in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    code = proc.wait()
    for r in relays:
        r.join()
    if code != 0:
        msg = next((ln.split("solaris: error: ", 1)[1] for ln in tail if "solaris: error: " in ln), None)
        if msg:
            raise SolarisError(msg)
        raise RuntimeError(f"spark-submit {job} failed (exit code {code}):\n" + "\n".join(tail))
    return None


def speculate(settings: Settings, logs: Path, at: str, out: Path, lookback: str = "24h", horizon: str = "1h",
              budget: str = "2x", shards: int | None = None, seq_len: int = 128, submit: bool = False,
              per_user_cap: int | None = None, model: Path | None = None) -> PlanInfo:
    """Run the Spark speculate job in this process, or as ``spark-submit`` with ``submit``."""
    args = speculate_args(settings, logs, at, out, lookback, horizon, budget, shards, seq_len, per_user_cap, model)
    spark_job(settings, "speculate", args, submit)
    return read_plan_info(out)


def speculate_args(settings: Settings, logs: Path, at: str | datetime, out: Path, lookback: str = "24h",
                   horizon: str = "1h", budget: str = "2x", shards: int | None = None, seq_len: int = 128,
                   per_user_cap: int | None = None, model: Path | None = None) -> list[str]:
    """Command-line arguments of ``spark_jobs/speculate.py`` for one plan."""
    args = ["--logs", str(logs), "--at", parse_time(at).isoformat(), "--lookback", lookback,
            "--horizon", horizon, "--budget", str(budget), "--out", str(out),
            "--shards", str(shards or settings.shards), "--seq-len", str(seq_len),
            "--registry", str(settings.speculator_path)]
    if per_user_cap:
        args += ["--per-user-cap", str(per_user_cap)]
    if model:
        args += ["--model", str(model)]
    return args


def train_speculator(settings: Settings, logs: Path, at: str, lookback: str = "24h", horizon: str = "1h",
                     windows: int = 4, every: str | None = None, submit: bool = False) -> dict:
    """Train and register a speculator version; returns its ``_meta.json`` as a dict."""
    from solaris_batch.speculate import registry

    spark_job(settings, "train_speculator", train_speculator_args(settings, logs, at, lookback, horizon, windows, every),
              submit)
    return asdict(registry.read_meta(registry.latest(settings.speculator_path)))


def train_speculator_args(settings: Settings, logs: Path, at: str | datetime, lookback: str = "24h",
                          horizon: str = "1h", windows: int = 4, every: str | None = None) -> list[str]:
    """Command-line arguments of ``spark_jobs/train_speculator.py``."""
    args = ["--logs", str(logs), "--at", parse_time(at).isoformat(), "--lookback", lookback, "--horizon", horizon,
            "--windows", str(windows), "--registry", str(settings.speculator_path)]
    if every:
        args += ["--every", every]
    return args


def replay(logs: Path, root: str, model_name: str, at: str, horizon: str = "1h") -> dict:
    """Look up every (request, ad) row of ``[at, at + horizon)`` in the live snapshot."""
    import numpy as np

    from solaris_batch.logs.reader import read_window
    from solaris_batch.serving import EmbeddingStore

    store = EmbeddingStore.open(root, model_name)
    t = read_window(logs, Window.after(parse_time(at), parse_duration(horizon)), columns=["user_id", "ad_id"])
    u, a = t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()
    res = store.lookup(u, a)
    first_hit = int(np.argmax(res.hit)) if res.hit.any() else 0
    return {"snapshot_id": store.snapshot_id, "snapshot_pairs": len(store), "horizon_rows": int(len(u)),
            "request_hit_rate": res.hit_rate,
            "sample": {"user_id": int(u[first_hit]), "ad_id": int(a[first_hit]), "hit": bool(res.hit[first_hit]),
                       "embedding_head": [round(float(x), 4) for x in res.embeddings[first_hit][:6]]}}


def run_all(settings: Settings, logs: Path, at: str, model: Path, root: str, lookback: str = "24h",
            horizon: str = "1h", budget: str = "2x", shards: int | None = None, device: str = "auto") -> dict:
    """speculate -> infer -> publish for one horizon, no Airflow."""
    from solaris_batch.inference.runner import infer_plan
    from solaris_batch.model.checkpoint import load_checkpoint
    from solaris_batch.snapshots.publish import publish

    load_checkpoint(model)  # fail before the Spark job if the model is unusable
    paths = interval_paths(settings, at)
    info = speculate(settings, logs, at, paths.plan, lookback, horizon, budget, shards)
    infer_plan(paths.plan, model, paths.embeddings, device=device)
    res = publish(paths.embeddings, root, settings.model_name, extra=plan_extra(info))
    return {"plan": asdict(info), "snapshot": asdict(res)}


def plan_extra(info: PlanInfo) -> dict:
    """Plan provenance recorded in a snapshot's manifest."""
    return {"window": {"at": info.at, "lookback": info.lookback, "horizon": info.horizon,
                       "lookback_start": info.lookback_start},
            "speculator": info.speculator, "budget": info.budget, "plan_pairs": info.pairs}


# Interval-keyed steps used by the Airflow tasks (small JSON-able results for XCom) -------------
def partition_ready(settings: Settings, hour_start: datetime) -> bool:
    """True when the log partition of the hour starting at ``hour_start`` holds ``_SUCCESS``."""
    from solaris_batch.logs.layout import hour_complete

    return hour_complete(settings.logs_root, parse_time(hour_start))


def speculate_interval(settings: Settings, at: datetime, lookback: str, horizon: str, budget: str,
                       shards: int) -> dict:
    paths = interval_paths(settings, at)
    info = speculate(settings, settings.logs_root, parse_time(at).isoformat(), paths.plan, lookback, horizon,
                     budget, shards, submit=True)
    return {"plan": str(paths.plan), "shards": info.shards, "pairs": info.pairs, "users": info.users,
            "lookback_start": info.lookback_start}


def speculate_submit_spec(settings: Settings, at: datetime, lookback: str, horizon: str, budget: str,
                          shards: int, master: str, driver_here: bool = True) -> dict:
    """What ``SparkSubmitOperator`` needs to run the interval's speculate job through an Airflow
    Spark connection, whose ``master`` (and deploy mode, queue, keytab) the operator applies."""
    return submit_spec(settings, "speculate", speculate_args(
        settings, settings.logs_root, at, interval_paths(settings, at).plan, lookback, horizon, budget, shards),
        master, driver_here)


def train_speculator_submit_spec(settings: Settings, until: str | datetime, lookback: str, horizon: str,
                                 windows: int, master: str, driver_here: bool = True) -> dict:
    """``speculate_submit_spec`` for the train-speculator job (learn before ``until``, register)."""
    return submit_spec(settings, "train_speculator", train_speculator_args(
        settings, settings.logs_root, until, lookback, horizon, windows), master, driver_here)


def submit_spec(settings: Settings, job: str, args: list[str], master: str, driver_here: bool = True) -> dict:
    """Script, Spark conf and arguments of ``spark_jobs/<job>.py`` for ``SparkSubmitOperator``;
    ``driver_here`` is False when the connection deploys the driver into the cluster."""
    from spark_jobs.session import job_script, submit_conf

    return {"application": job_script(job), "conf": submit_conf(settings, master, driver_here),
            "application_args": args}


def plan_shards(settings: Settings, at: datetime) -> list[int]:
    """Shard ids of the interval's written plan (what the mapped infer tasks expand over)."""
    info = read_plan_info(interval_paths(settings, at).plan)
    print(f"plan {info.at}: {info.pairs} pairs for {info.users} users in shards {info.shards}, by {info.speculator}")
    return info.shards


def infer_interval(settings: Settings, at: datetime, shard: int) -> dict:
    from solaris_batch.inference.runner import infer_plan

    paths = interval_paths(settings, at)
    (r,) = infer_plan(paths.plan, settings.model_path, paths.embeddings, shard=shard,
                      device=device_for_shard(settings.device, shard))
    return {"shard": r.shard, "pairs": r.pairs, "skipped": r.skipped}


def device_for_shard(device: str, shard: int) -> str:
    """With ``auto`` on a host with several GPUs, spread shard tasks over them (one per GPU)."""
    if device != "auto":
        return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{shard % n}" if n > 1 else "auto"


def validate_interval(settings: Settings, at: datetime) -> dict:
    """Run the publish gates without publishing (fails the task with the reason)."""
    from solaris_batch.snapshots.publish import validate_shards

    _, m = validate_shards(interval_paths(settings, at).embeddings)
    return {"rows": m["rows"], "checkpoint_version": m["checkpoint_version"], "norm_mean": m["stats"]["norm_mean"]}


def publish_interval(settings: Settings, at: datetime) -> dict:
    from solaris_batch.snapshots.publish import publish

    paths = interval_paths(settings, at)
    info = read_plan_info(paths.plan)
    r = publish(paths.embeddings, settings.snapshots_root, settings.model_name, extra=plan_extra(info))
    return {"snapshot_id": r.snapshot_id, "rows": r.rows, "current": r.current, "created": r.created,
            "at": info.at, "horizon": info.horizon, "model_name": settings.model_name, "note": r.note,
            "drift": r.drift}


def gc_snapshots(settings: Settings, keep: int) -> list[str]:
    from solaris_batch.snapshots.publish import gc

    return gc(settings.snapshots_root, settings.model_name, keep)


def horizon_ready(settings: Settings, at: str | datetime, horizon: str) -> bool:
    """True when every log partition of ``[at, at + horizon)`` holds ``_SUCCESS``."""
    return all(partition_ready(settings, h) for h in Window.after(parse_time(at), parse_duration(horizon)).hours())


def monitor_interval(settings: Settings, snapshot_id: str | None, threshold: float) -> dict:
    from dataclasses import asdict

    from solaris_batch.monitor import monitor_snapshot
    from solaris_batch.snapshots.publish import read_current

    sid = snapshot_id or read_current(settings.snapshots_root, settings.model_name)
    if sid is None:
        from solaris_batch.errors import SnapshotNotFound

        raise SnapshotNotFound(f"no snapshot of {settings.model_name!r} to monitor: publish one first")
    from solaris_batch.storage.uri import join

    rec = monitor_snapshot(settings.logs_root, settings.snapshots_root, settings.model_name, sid,
                           join(settings.metrics_root, "monitor"), threshold)
    return asdict(rec)


def train_and_register(settings: Settings, until: datetime, window: str = "24h", epochs: int = 1) -> dict:
    """Train the FM on ``[until - window, until)`` and atomically make it the checkpoint that later
    precompute runs load; every version is also kept under ``<model>.versions/<version>``."""
    import shutil
    import uuid

    from solaris_batch.model.train import train_fm
    from solaris_batch.storage import replace_dir

    target = settings.model_path
    staging = target.with_name(f".{target.name}.staging-{uuid.uuid4().hex[:8]}")
    r = train_fm(settings.logs_root, until, staging, window=window, epochs=epochs, model_class=settings.fm_class)
    versions = target.with_name(f"{target.name}.versions")
    versions.mkdir(parents=True, exist_ok=True)
    if not (versions / r.version).exists():
        shutil.copytree(staging, versions / r.version)
    replace_dir(staging, target)
    return {"version": r.version, "examples": r.examples, "val_auc": r.val_auc, "path": str(target)}
