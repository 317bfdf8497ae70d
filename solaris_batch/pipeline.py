"""Every stage as a plain function: what the CLI and the DAG tasks call.

Paths are keyed by the horizon start T: ``<work>/plans/<T>`` and ``<work>/embeddings/<T>``, so a
rerun for the same interval overwrites its own outputs and nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from solaris_batch.config import (
    DEFAULT_BUDGET,
    DEFAULT_HORIZON,
    DEFAULT_LOOKBACK,
    DEFAULT_SEQ_LEN,
    DEFAULT_SPECULATOR_WINDOWS,
    Settings,
)
from solaris_batch.jobs import SpeculateJob, TrainSpeculatorJob, launch
from solaris_batch.speculate.plan import PlanInfo, read_plan_info
from solaris_batch.speculate.registry import SpeculatorChoice
from solaris_batch.timeutil import Window, parse_duration, parse_time, stamp


@dataclass(frozen=True)
class IntervalPaths:
    plan: Path
    embeddings: Path


def interval_paths(settings: Settings, at: str | datetime) -> IntervalPaths:
    s = stamp(parse_time(at))
    return IntervalPaths(settings.work_root / "plans" / s, settings.work_root / "embeddings" / s)


def speculate(settings: Settings, logs: Path, at: str | datetime, out: Path, lookback: str = DEFAULT_LOOKBACK,
              horizon: str = DEFAULT_HORIZON, budget: str = DEFAULT_BUDGET, shards: int | None = None,
              seq_len: int = DEFAULT_SEQ_LEN, submit: bool = False, per_user_cap: int | None = None,
              model: SpeculatorChoice | str | Path | None = None) -> PlanInfo:
    """Plan the pairs of ``[at, at + horizon)`` into ``out`` with the Spark speculate job, in this
    process or, with ``submit``, through ``spark-submit``. ``model``: the speculator (a choice or
    its text: ``heuristic``, ``latest``, a version folder; default ``latest``)."""
    return launch(settings, SpeculateJob(logs=logs, at=at, out=out, lookback=lookback, horizon=horizon, budget=budget,
                                         shards=shards, seq_len=seq_len, per_user_cap=per_user_cap,
                                         speculator=model), submit)


def train_speculator(settings: Settings, logs: Path, at: str | datetime, lookback: str = DEFAULT_LOOKBACK,
                     horizon: str = DEFAULT_HORIZON, windows: int = DEFAULT_SPECULATOR_WINDOWS,
                     every: str | None = None, submit: bool = False) -> dict:
    """Train and register a speculator version (the Spark train-speculator job, in this process or,
    with ``submit``, through ``spark-submit``); returns its ``_meta.json`` as a dict."""
    job = TrainSpeculatorJob(logs=logs, at=at, lookback=lookback, horizon=horizon, windows=windows, every=every)
    return asdict(launch(settings, job, submit))


def replay(logs: Path, root: str, model_name: str, at: str, horizon: str = DEFAULT_HORIZON) -> dict:
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


def run_all(settings: Settings, logs: Path, at: str, model: Path, root: str, lookback: str = DEFAULT_LOOKBACK,
            horizon: str = DEFAULT_HORIZON, budget: str = DEFAULT_BUDGET, shards: int | None = None,
            device: str = "auto") -> dict:
    """speculate -> infer -> publish for one horizon, no Airflow."""
    from solaris_batch.inference.runner import infer_plan
    from solaris_batch.model.checkpoint import load_checkpoint
    from solaris_batch.snapshots.publish import publish

    load_checkpoint(model)  # fail before the Spark job if the model is unusable
    paths = interval_paths(settings, at)
    info = speculate(settings, logs, at, paths.plan, lookback, horizon, budget, shards)
    infer_plan(paths.plan, model, paths.embeddings, device=device)
    res = publish(paths.embeddings, root, settings.model_name, extra=info.provenance())
    return {"plan": asdict(info), "snapshot": asdict(res)}



# Interval-keyed steps used by the Airflow tasks (small JSON-able results for XCom) -------------
def partition_ready(settings: Settings, hour_start: datetime) -> bool:
    """True when the log partition of the hour starting at ``hour_start`` holds ``_SUCCESS``."""
    from solaris_batch.logs.layout import hour_complete

    return hour_complete(settings.logs_root, parse_time(hour_start))


def interval_speculate_job(settings: Settings, at: str | datetime, lookback: str, horizon: str, budget: str,
                           shards: int) -> SpeculateJob:
    """The speculate job of the interval whose horizon starts at ``at``: its plan goes to
    ``<work>/plans/<T>`` (what ``speculate_interval`` launches and the DAGs' Spark connection submits)."""
    return SpeculateJob(logs=settings.logs_root, at=at, out=interval_paths(settings, at).plan, lookback=lookback,
                        horizon=horizon, budget=budget, shards=shards)


def speculate_interval(settings: Settings, at: datetime, lookback: str, horizon: str, budget: str,
                       shards: int) -> dict:
    info = launch(settings, interval_speculate_job(settings, at, lookback, horizon, budget, shards), submit=True)
    return {"plan": str(interval_paths(settings, at).plan), "shards": info.shards, "pairs": info.pairs,
            "users": info.users, "lookback_start": info.lookback_start}


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
    r = publish(paths.embeddings, settings.snapshots_root, settings.model_name, extra=info.provenance())
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
