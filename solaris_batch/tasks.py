"""The interval-keyed steps the Airflow DAGs call, one per task: small JSON-able results for XCom.

Every path is keyed by the interval's horizon start T (``Settings.interval_paths``), so a rerun for
the same interval overwrites its own outputs and nothing else. Each step is also a plain function
(tests and the CLI call them without Airflow).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from solaris_batch.config import Settings
from solaris_batch.jobs import SpeculateJob, launch
from solaris_batch.speculate.plan import read_plan_info
from solaris_batch.timeutil import Window, parse_duration, parse_time


def partition_ready(settings: Settings, hour_start: datetime) -> bool:
    """True when the log partition of the hour starting at ``hour_start`` holds ``_SUCCESS``."""
    from solaris_batch.logs.layout import hour_complete

    return hour_complete(settings.logs_root, parse_time(hour_start))


def interval_speculate_job(settings: Settings, at: str | datetime, lookback: str, horizon: str, budget: str,
                           shards: int) -> SpeculateJob:
    """The speculate job of the interval whose horizon starts at ``at``: its plan goes to
    ``<work>/plans/<T>`` (what ``speculate_interval`` launches and the DAGs' Spark connection submits)."""
    return SpeculateJob(logs=settings.logs_root, at=at, out=settings.interval_paths(at).plan, lookback=lookback,
                        horizon=horizon, budget=budget, shards=shards)


def speculate_interval(settings: Settings, at: datetime, lookback: str, horizon: str, budget: str,
                       shards: int) -> dict:
    info = launch(settings, interval_speculate_job(settings, at, lookback, horizon, budget, shards), submit=True)
    return {"plan": str(settings.interval_paths(at).plan), "shards": info.shards, "pairs": info.pairs,
            "users": info.users, "lookback_start": info.lookback_start}


def plan_shards(settings: Settings, at: datetime) -> list[int]:
    """Shard ids of the interval's written plan (what the mapped infer tasks expand over)."""
    info = read_plan_info(settings.interval_paths(at).plan)
    print(f"plan {info.at}: {info.pairs} pairs for {info.users} users in shards {info.shards}, by {info.speculator}")
    return info.shards


def infer_interval(settings: Settings, at: datetime, shard: int) -> dict:
    from solaris_batch.inference.runner import infer_plan

    paths = settings.interval_paths(at)
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

    _, m = validate_shards(settings.interval_paths(at).embeddings)
    return {"rows": m["rows"], "checkpoint_version": m["checkpoint_version"], "norm_mean": m["stats"]["norm_mean"]}


def publish_interval(settings: Settings, at: datetime) -> dict:
    from solaris_batch.snapshots.publish import publish

    paths = settings.interval_paths(at)
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
