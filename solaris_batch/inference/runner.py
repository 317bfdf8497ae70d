"""Run the FM over plan shards and write embedding shards.

A plan shard is sorted by user, so pairs are grouped: each user's sequence is encoded once and all
of that user's candidates are scored against it. Batches are cut by a pair budget (users differ a
lot in candidate counts), the output is streamed to a temporary file and renamed into place, and a
shard whose output already records the same plan, shard and checkpoint is skipped (a retried task
resumes instead of redoing work).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from solaris_batch.model.checkpoint import LoadedModel, load_checkpoint
from solaris_batch.model.features import AdFeatures, encode_candidates, encode_tokens, pack_lists
from solaris_batch.progress import bar as progress_bar
from solaris_batch.snapshots.shards import read_shard_meta, shard_path, write_embedding_shard_stream
from solaris_batch.speculate.plan import read_pairs, read_plan_info, read_table


@dataclass(frozen=True)
class ShardResult:
    shard: int
    path: str
    pairs: int
    users: int
    batches: int
    seconds: float
    skipped: bool

    def summary(self) -> str:
        rate = self.pairs / max(self.seconds, 1e-9)
        peak = _peak_memory_mb()
        state = "skipped (already done)" if self.skipped else f"{rate:,.0f} pairs/s"
        return (f"infer shard {self.shard}: {self.pairs} pairs, {self.users} users, {self.batches} batches,"
                f" {state}, peak memory {peak:,.0f} MB -> {self.path}")


def _peak_memory_mb() -> float:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def user_batches(pair_users: np.ndarray, batch_pairs: int) -> list[tuple[int, int, int, int]]:
    """Cut user-sorted pairs into batches of whole users holding at most ``batch_pairs`` pairs
    (a user with more pairs gets a batch alone). Returns ``(pair_lo, pair_hi, user_lo, user_hi)``."""
    if len(pair_users) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, pair_users[1:] != pair_users[:-1]])
    ends = np.r_[starts[1:], len(pair_users)]
    out, u0 = [], 0
    while u0 < len(starts):
        limit = starts[u0] + batch_pairs
        u1 = max(u0 + 1, int(np.searchsorted(ends, limit, side="right")))
        out.append((int(starts[u0]), int(ends[u1 - 1]), u0, u1))
        u0 = u1
    return out


def infer_shard(plan: Path, lm: LoadedModel, out: Path, shard: int, device: torch.device,
                batch_pairs: int = 8192, progress: bool = True) -> ShardResult:
    t0 = time.perf_counter()
    info = read_plan_info(plan)
    path = shard_path(out, shard)
    expect = {"plan_fingerprint": info.fingerprint, "plan_at": info.at, "shard": str(shard),
              "checkpoint_version": lm.version}
    done = read_shard_meta(path)
    if done is not None and all(done.get(k) == v for k, v in expect.items()):
        return ShardResult(shard, str(path), int(done["rows"]), int(done.get("users", 0)), 0,
                           time.perf_counter() - t0, True)

    pairs = read_pairs(plan, shard)
    pu, pa_ = pairs.column("user_id").to_numpy(), pairs.column("ad_id").to_numpy()
    cfg = lm.config
    users = read_table(plan, "users")
    users = users.filter(pc.is_in(users.column("user_id"), pa.array(np.unique(pu))))
    users = users.take(pc.sort_indices(users, [("user_id", "ascending")]))
    user_ids = users.column("user_id").to_numpy()
    ads = AdFeatures.from_table(read_table(plan, "ads"))
    batches = user_batches(pu, batch_pairs)
    n_users = len(batches) and batches[-1][3]

    def emb_batches():
        bar = progress_bar(len(pu), f"infer shard {shard}", "pair", progress)
        with torch.inference_mode():
            for p0, p1, _, _ in batches:
                bu, inv = np.unique(pu[p0:p1], return_inverse=True)
                rows = np.searchsorted(user_ids, bu)
                found = (rows < len(user_ids)) & (user_ids[rows.clip(0, max(len(user_ids) - 1, 0))] == bu)
                sub = users.take(pa.array(rows[found]))
                sa = np.zeros((len(bu), cfg.seq_len), np.int64)
                sc = np.zeros_like(sa, dtype=bool)
                sv = np.zeros_like(sa, dtype=bool)
                if found.any():
                    a, c, v = pack_lists(sub.column("seq_ad_id"), sub.column("seq_clicked"), cfg.seq_len)
                    sa[found], sc[found], sv[found] = a, c, v
                tok = encode_tokens(sa, sc, sv, ads, cfg.ad_buckets, cfg.cat_buckets)
                cand = encode_candidates(pa_[p0:p1], ads, cfg.ad_buckets, cfg.cat_buckets)
                t = {k: torch.as_tensor(v, device=device) for k, v in tok.items()}
                memory, pad = lm.model.encode_users(t["ad"], t["cat"], t["event"])
                emb, logit = lm.model.score(
                    memory, pad, torch.as_tensor(inv, device=device),
                    torch.as_tensor(cand["ad"], device=device), torch.as_tensor(cand["cat"], device=device))
                bar.update(p1 - p0)
                yield pu[p0:p1], pa_[p0:p1], emb.float().cpu().numpy(), logit.float().cpu().numpy()
        bar.close()

    meta = {**expect, "users": str(n_users), "plan_pairs": str(info.pairs),
            "plan_shards": ",".join(map(str, info.shards))}
    rows = write_embedding_shard_stream(path, emb_batches(), cfg.emb_dim, meta)
    return ShardResult(shard, str(path), rows, n_users, len(batches), time.perf_counter() - t0, False)


def infer_plan(plan: Path, model: Path, out: Path, shard: int | None = None, device: str = "auto",
               batch_pairs: int = 8192, progress: bool = True) -> list[ShardResult]:
    """Infer one shard (``shard=i``) or every shard of the plan, in order."""
    dev = resolve_device(device)
    lm = load_checkpoint(model, dev)
    info = read_plan_info(plan)
    shards = [shard] if shard is not None else info.shards
    Path(out).mkdir(parents=True, exist_ok=True)
    results = []
    for s in shards:
        r = infer_shard(plan, lm, out, s, dev, batch_pairs, progress)
        print(r.summary(), flush=True)
        results.append(r)
    return results
