"""The CLI's multi-stage commands (``solaris speculate``, ``train-speculator``, ``run``, ``replay``)
as plain functions; the DAGs' interval steps are in ``tasks``, FM registration in ``model.registry``.
"""

from __future__ import annotations

from dataclasses import asdict
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
from solaris_batch.speculate.plan import PlanInfo
from solaris_batch.speculate.registry import SpeculatorChoice
from solaris_batch.timeutil import Window, parse_duration, parse_time


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
    paths = settings.interval_paths(at)
    info = speculate(settings, logs, at, paths.plan, lookback, horizon, budget, shards)
    infer_plan(paths.plan, model, paths.embeddings, device=device)
    res = publish(paths.embeddings, root, settings.model_name, extra=info.provenance())
    return {"plan": asdict(info), "snapshot": asdict(res)}
