"""Train the reference FM on impressions/clicks strictly before a cut-off time."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import torch

from solaris_batch.config import DEFAULT_FM_WINDOW, DEFAULT_LOOKBACK
from solaris_batch.errors import EmptyWindow
from solaris_batch.logs.reader import read_ads, read_window
from solaris_batch.metrics import auc
from solaris_batch.model.checkpoint import DEFAULT_CLASS, resolve_class, save_checkpoint
from solaris_batch.model.features import (
    AdFeatures,
    Events,
    encode_candidates,
    encode_tokens,
    sequences_at,
)
from solaris_batch.model.fm import FMConfig
from solaris_batch.progress import bar as progress_bar
from solaris_batch.storage.staging import staged_output
from solaris_batch.timeutil import Window, format_duration, parse_time

FORWARD_KEYS = ("seq_ad", "seq_cat", "seq_event", "cand_ad", "cand_cat")


@dataclass(frozen=True)
class TrainResult:
    version: str
    examples: int
    steps: int
    train_loss: float
    val_auc: float | None
    seconds: float


def build_examples(logs: Path, until, window: timedelta, lookback: timedelta, config: FMConfig):
    """Impressions in ``[until - window, until)`` with their sequences as of each request."""
    until = parse_time(until)
    hist = read_window(logs, Window(until - window - lookback, until), where=pc.field("impressed"),
                       columns=["ts", "user_id", "ad_id", "clicked"], allow_missing=True)
    ev = Events.from_table(hist)
    lo = int((until - window).timestamp() * 1e6)
    sel = ev.ts_us >= lo
    if not sel.any():
        raise EmptyWindow(f"no impressions to train on in {Window(until - window, until)}")
    q_user, q_ts, q_ad, y = ev.user_id[sel], ev.ts_us[sel], ev.ad_id[sel], ev.clicked[sel]
    arrays = example_tokens(ev, AdFeatures.from_table(read_ads(logs)), q_user, q_ts, q_ad, config, lookback)
    order = np.argsort(q_ts, kind="stable")  # time order, so the validation tail is the latest
    return {k: torch.as_tensor(v[order]) for k, v in arrays.items()}, torch.as_tensor(y[order], dtype=torch.float32)


def example_tokens(ev: Events, ads: AdFeatures, q_user: np.ndarray, q_ts_us: np.ndarray, q_ad: np.ndarray,
                   config: FMConfig, lookback: timedelta) -> dict[str, np.ndarray]:
    """FM inputs (``FORWARD_KEYS``) for query rows: each user's sequence strictly before its ``ts``."""
    sa, sc, sv = sequences_at(ev, q_user, q_ts_us, config.seq_len, int(lookback.total_seconds() * 1e6))
    seq = encode_tokens(sa, sc, sv, ads, config.ad_buckets, config.cat_buckets)
    cand = encode_candidates(q_ad, ads, config.ad_buckets, config.cat_buckets)
    return {"seq_ad": seq["ad"], "seq_cat": seq["cat"], "seq_event": seq["event"],
            "cand_ad": cand["ad"], "cand_cat": cand["cat"]}


def predict(model, X: dict, rows: slice | None = None, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(embedding (n, emb_dim), logit (n,)) of ``model.forward`` over ``X[rows]`` in eval mode, on the
    model's device; results come back on the CPU."""
    rows = rows or slice(0, len(X["cand_ad"]))
    dev = next(model.parameters()).device
    model.eval()
    embs, logits = [], []
    with torch.inference_mode():
        for i in range(rows.start, rows.stop, batch_size):
            sl = slice(i, min(i + batch_size, rows.stop))
            e, lg = model(*(torch.as_tensor(X[k][sl]).to(dev) for k in FORWARD_KEYS))
            embs.append(e.float().cpu())
            logits.append(lg.float().cpu())
    if not embs:
        return torch.zeros(0, model.config.emb_dim), torch.zeros(0)
    return torch.cat(embs), torch.cat(logits)


def train_fm(
    logs: Path, until, out: Path, window: str | timedelta = DEFAULT_FM_WINDOW, lookback: str | timedelta = DEFAULT_LOOKBACK,
    preset: str = "small", epochs: int = 2, batch_size: int = 512, lr: float = 3e-3, seed: int = 0,
    max_steps: int | None = None, progress: bool = True, model_class: str = DEFAULT_CLASS, **overrides,
) -> TrainResult:
    """Train on ``[until - window, until)`` (last 10% held out for AUC) and save to ``out``."""
    from solaris_batch.timeutil import parse_duration

    t0 = time.perf_counter()
    window, lookback = parse_duration(window), parse_duration(lookback)
    config = replace(FMConfig.preset(preset), **overrides)
    torch.manual_seed(seed)
    X, y = build_examples(logs, until, window, lookback, config)
    n = len(y)
    n_val = max(1, n // 10) if n >= 20 else 0
    n_tr = n - n_val
    model = resolve_class(model_class)(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    steps, losses = 0, []
    total = epochs * ((n_tr + batch_size - 1) // batch_size)
    if max_steps:
        total = min(total, max_steps)
    bar = progress_bar(total, "train-fm", "step", progress)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n_tr, generator=gen)
        for i in range(0, n_tr, batch_size):
            if max_steps and steps >= max_steps:
                break
            b = perm[i : i + batch_size]
            _, logit = model(*(X[k][b] for k in FORWARD_KEYS))
            loss = loss_fn(logit, y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
    bar.close()
    val_auc = auc(y[n_tr:].numpy(), predict(model, X, slice(n_tr, n))[1].numpy()) if n_val else None
    train_loss = float(np.mean(losses[-50:])) if losses else float("nan")
    meta = {"trained_until": parse_time(until).isoformat(), "window": format_duration(window),
            "lookback": format_duration(lookback), "examples": n, "steps": steps,
            "train_loss": train_loss, "val_auc": val_auc, "preset": preset}
    with staged_output(out) as (local, upload):  # a URI gets weights.pt, then config.json (the mark)
        version = save_checkpoint(model, local, meta, model_class=model_class)
        upload += ["weights.pt", "config.json"]
    return TrainResult(version, n, steps, train_loss, val_auc, time.perf_counter() - t0)
