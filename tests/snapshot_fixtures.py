"""Hand-built embedding shards and a manifest 'forger' shared by the snapshot, serving and fuzz tests.

``resign`` rewrites a published manifest *with a valid digest* and points CURRENT at it: it plays
an operator who edited the manifest with our own tools, so tests can reach the checks that stand
behind the digest (defence in depth) instead of stopping at the digest itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from solaris_batch.snapshots.manifest import Manifest, Pointer
from solaris_batch.snapshots.shards import write_embedding_shard

DIM = 4


def make_emb(path: Path, version: int, hour: int = 5, users=(11, 12, 13), ads_per_user=3, files=1,
             dim: int = DIM) -> Path:
    """Embeddings whose every value equals ``version`` (so a result shows which snapshot it came
    from); pairs (u, 100 + k); plan time 2026-11-20T<hour>:00Z."""
    u = np.repeat(np.array(users, dtype=np.int64), ads_per_user)
    a = np.tile(100 + np.arange(ads_per_user, dtype=np.int64), len(users))
    meta = {"checkpoint_version": f"ck{version}", "plan_fingerprint": f"fp{version}",
            "plan_at": f"2026-11-20T{hour:02d}:00:00+00:00", "plan_pairs": str(len(u)),
            "plan_shards": ",".join(map(str, range(files)))}
    for f, idx in enumerate(np.array_split(np.arange(len(u)), files)):
        emb = np.full((len(idx), dim), float(version))
        write_embedding_shard(Path(path) / f"part-{f:05d}.parquet", u[idx], a[idx], emb, **meta, shard=str(f))
    return Path(path)


def resign(root: Path, model: str, sid: str, mutate: Callable[[dict], None], point: bool = True) -> dict:
    """Apply ``mutate`` to the manifest of ``sid``, rewrite it with a valid digest and, with
    ``point``, make CURRENT name it with the new manifest's sha256."""
    mpath = Path(root) / model / "snapshots" / sid / "_manifest.json"
    body = json.loads(mpath.read_text())
    mutate(body)
    text = Manifest.encode(body)
    mpath.write_text(text)
    if point:
        import hashlib

        cur = Path(root) / model / "CURRENT"
        try:
            gen = json.loads(cur.read_text())["generation"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            gen = 0
        cur.write_text(Pointer(sid, hashlib.sha256(text.encode()).hexdigest(), gen + 1).encode())
    return body
