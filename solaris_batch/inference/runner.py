"""Run the FM over plan shards and write embedding shards.

Per shard: pairs and user sequences stream from Parquet in bounded memory (``batching``), batches
of whole users are cut by a token budget, a background thread prepares the next batches (pinned
host memory on CUDA) while the model runs, copies go over a side CUDA stream, compute runs under
``torch.inference_mode()`` with bf16 autocast on CUDA (fp32 on CPU). Each user's sequence is
encoded once and all of that user's candidates are scored against it in one step.

The shard is streamed to a temporary file and renamed into place; a shard whose output already
records the same plan, shard and checkpoint is skipped, so a retried task resumes rather than
redoes. Output is deterministic: the same plan and checkpoint give identical bytes.
"""

from __future__ import annotations

import queue
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from solaris_batch.inference.batching import HostBatch, iter_user_chunks, make_batch, user_batches
from solaris_batch.model.checkpoint import LoadedModel, load_checkpoint, require_checkpoint
from solaris_batch.model.features import AdFeatures
from solaris_batch.progress import bar as progress_bar
from solaris_batch.snapshots.shards import read_shard_meta, shard_path, write_embedding_shard_stream
from solaris_batch.speculate.plan import read_ads, read_plan_info, shard_files
from solaris_batch.storage.staging import fetch_file, fetched, is_local, staged_output
from solaris_batch.storage.uri import join

DEFAULT_TOKEN_BUDGET = 1 << 16
_USER_KEYS = ("ad", "cat", "event")
_PAIR_KEYS = ("user_index", "cand_ad", "cand_cat")


@dataclass(frozen=True)
class ShardResult:
    shard: int
    path: str
    pairs: int
    users: int
    batches: int
    seconds: float
    skipped: bool
    peak_memory_mb: float = 0.0

    def summary(self) -> str:
        if self.skipped:
            return f"infer shard {self.shard}: skipped, {self.path} already holds this plan and checkpoint"
        rate = self.pairs / max(self.seconds, 1e-9)
        return (f"infer shard {self.shard}: {self.pairs} pairs, {self.users} users, {rate:,.0f} pairs/s,"
                f" {self.batches} batches, peak memory {self.peak_memory_mb:,.0f} MB -> {self.path}")


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from solaris_batch.errors import ConfigError

        raise ConfigError(f"device {device} requested but CUDA is not available: use --device cpu or auto")
    return dev


def to_device(batch: HostBatch, device: torch.device, pin: bool) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in batch.arrays.items():
        t = torch.from_numpy(np.ascontiguousarray(v))
        out[k] = t.pin_memory().to(device, non_blocking=True) if pin else t.to(device)
    return out


def run_model(model, t: dict[str, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The user-batched step: encode each user once, score all its candidates (tensors in/out)."""
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        memory, pad = model.encode_users(*(t[k] for k in _USER_KEYS))
        return model.score(memory, pad, *(t[k] for k in _PAIR_KEYS))


def run_model_naive(model, t: dict[str, torch.Tensor], device: torch.device, chunk: int = 1024):
    """Reference path: re-encode the user's sequence for every pair (what batching avoids)."""
    ui = t["user_index"]
    embs, logits = [], []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for i in range(0, len(ui), chunk):
            sl = ui[i : i + chunk]
            e, lg = model(*(t[k][sl] for k in _USER_KEYS), t["cand_ad"][i : i + chunk], t["cand_cat"][i : i + chunk])
            embs.append(e)
            logits.append(lg)
    return torch.cat(embs), torch.cat(logits)


def _prefetch(gen: Iterator, depth: int = 2) -> Iterator:
    """Run ``gen`` in a background thread, ``depth`` items ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in gen:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # handed to the consumer, which re-raises it
            q.put(e)
        q.put(done)

    th = threading.Thread(target=work, daemon=True, name="solaris-prefetch")
    th.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(0.05)


def infer_shard(plan: Path, lm: LoadedModel, out: Path, shard: int, device: torch.device,
                token_budget: int = DEFAULT_TOKEN_BUDGET, progress: bool = True, model=None) -> ShardResult:
    t0 = time.perf_counter()
    info = read_plan_info(plan)
    path = shard_path(out, shard)
    expect = {"plan_fingerprint": info.fingerprint, "plan_at": info.at, "shard": str(shard),
              "checkpoint_version": lm.version}
    done = read_shard_meta(path)
    if done is not None and all(done.get(k) == v for k, v in expect.items()):
        return ShardResult(shard, str(path), int(done["rows"]), int(done.get("users", 0)), 0,
                           time.perf_counter() - t0, True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed attempt
        stale.unlink(missing_ok=True)

    cfg, model = lm.config, model or lm.model
    ads = AdFeatures.from_table(read_ads(plan))
    total = int(info.shard_pairs.get(str(shard), 0))
    pin = device.type == "cuda"
    copy_stream = torch.cuda.Stream(device) if pin else None
    stats = {"users": 0, "batches": 0}

    def host_batches() -> Iterator[tuple[HostBatch, dict]]:
        for pu, pa_, users in iter_user_chunks(shard_files(plan, "pairs", shard), shard_files(plan, "users", shard)):
            for p0, p1, _, _ in user_batches(pu, token_budget, user_cost=cfg.seq_len):
                b = make_batch(pu[p0:p1], pa_[p0:p1], users, ads, cfg.seq_len, cfg.ad_buckets, cfg.cat_buckets)
                if pin:
                    with torch.cuda.stream(copy_stream):
                        t = to_device(b, device, pin=True)
                        event = torch.cuda.Event()
                        event.record(copy_stream)
                    yield b, t, event
                else:
                    yield b, to_device(b, device, pin=False), None

    def results():
        bar = progress_bar(total or None, f"infer shard {shard}", "pair", progress)
        for b, t, event in _prefetch(host_batches()):
            if event is not None:
                torch.cuda.current_stream(device).wait_event(event)
            emb, logit = run_model(model, t, device)
            stats["users"] += len(t["ad"])
            stats["batches"] += 1
            bar.update(len(b.pair_users))
            yield b.pair_users, b.pair_ads, emb.float().cpu().numpy(), logit.float().cpu().numpy()
        bar.close()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    meta = {**expect, "plan_pairs": str(info.pairs), "plan_shards": ",".join(map(str, info.shards))}
    rows = write_embedding_shard_stream(path, results(), cfg.emb_dim, meta, users=lambda: stats["users"])
    return ShardResult(shard, str(path), rows, stats["users"], stats["batches"], time.perf_counter() - t0, False,
                       peak_memory_mb(device))


def infer_plan(plan: Path | str, model: Path | str, out: Path | str, shard: int | None = None, device: str = "auto",
               token_budget: int = DEFAULT_TOKEN_BUDGET, compile: bool = False,
               progress: bool = True) -> list[ShardResult]:
    """Infer one shard (``shard=i``) or every shard of the plan, in order.

    ``plan``, ``model`` and ``out`` are local folders or URIs; remote ones are read from a local
    copy, and each shard written is uploaded as one object (a rerun skips shards already there).
    """
    info = read_plan_info(plan)
    require_checkpoint(model)
    dev = resolve_device(device)
    shards = [shard] if shard is not None else info.shards
    results = []
    with fetched(plan) as plan_dir, fetched(model) as model_dir, staged_output(out) as (out_dir, upload):
        lm = load_checkpoint(model_dir, dev)
        fn = torch.compile(lm.model, dynamic=True) if compile else None
        remote = not is_local(out)
        for s in shards:
            name = shard_path(Path(), s).name
            if remote:
                fetch_file(out, name, out_dir)  # a shard already there is checked and skipped
            r = infer_shard(plan_dir, lm, out_dir, s, dev, token_budget, progress, model=fn)
            if remote:
                r = replace(r, path=str(join(out, name)))
                if not r.skipped:
                    upload.append(name)
            print(r.summary(), flush=True)
            results.append(r)
    return results
