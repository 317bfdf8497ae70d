"""Build a small plan by hand (the layout the Spark job writes), for tests without Spark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch import schemas
from solaris_batch.hashing import shard_of
from solaris_batch.speculate.plan import PlanInfo


def make_plan(path: Path, n_users=12, max_ads=9, shards=2, seed=0, at="2026-11-20T05:00:00+00:00") -> PlanInfo:
    rng = np.random.default_rng(seed)
    users = np.arange(1, n_users + 1, dtype=np.int64) * 1009
    pu, pa_ = [], []
    for u in users:
        k = int(rng.integers(1, max_ads + 1))
        pu += [u] * k
        pa_ += sorted(rng.choice(np.arange(500, 540), size=k, replace=False).tolist())
    pu, pa_ = np.array(pu), np.array(pa_, dtype=np.int64)
    sh = shard_of(pu, shards)
    counts = {}
    for s in range(shards):
        sel = sh == s
        if not sel.any():
            continue
        d = path / "pairs" / f"shard={s}"
        d.mkdir(parents=True)
        o = np.lexsort((pa_[sel], pu[sel]))
        pq.write_table(pa.table({"user_id": pu[sel][o], "ad_id": pa_[sel][o],
                                 "score": np.ones(sel.sum(), np.float32)}), d / "part-0.parquet")
        counts[str(s)] = int(sel.sum())
    seqs = [rng.integers(500, 540, int(rng.integers(0, 10))).tolist() for _ in users]
    ush = shard_of(users, shards)
    for s in np.unique(ush):
        d = path / "users" / f"shard={s}"
        d.mkdir(parents=True)
        sel = np.flatnonzero(ush == s)
        pq.write_table(pa.table({"user_id": users[sel], "seq_ad_id": [seqs[i] for i in sel],
                                 "seq_clicked": [[bool(x % 3 == 0) for x in seqs[i]] for i in sel]},
                                schema=schemas.PLAN_USERS), d / "part-0.parquet")
    (path / "ads").mkdir()
    pq.write_table(pa.table({"ad_id": np.arange(500, 540, dtype=np.int64),
                             "category_id": pa.array(np.arange(40) % 7, pa.int32())}), path / "ads" / "part-0.parquet")
    info = PlanInfo(at=at, lookback="1d", horizon="1h", budget="x", budget_pairs=len(pu), pairs=len(pu),
                    users=len(users), shards=sorted(int(s) for s in counts), num_shards=shards, seq_len=16,
                    rows_read=0, quarantined=0, speculator="fixture", fingerprint=f"fp{seed}", shard_pairs=counts)
    info.write(path)
    return info
