"""EmbeddingStore: load the CURRENT snapshot and answer (user, ad) lookups.

Index: users and ads are mapped to dense ranks (sorted unique ids), each pair to the int64 key
``user_rank * n_ads + ad_rank``, and keys are sorted. A lookup is three vectorized binary searches,
no Python loop and no per-row object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from solaris_batch.errors import SnapshotNotFound, ValidationFailed
from solaris_batch.snapshots.publish import model_dir, read_current, read_manifest
from solaris_batch.snapshots.shards import decode_embeddings


@dataclass(frozen=True)
class LookupResult:
    """``embeddings`` (n, d) float32 (zeros where missed), ``hit`` (n,) bool, the snapshot id."""

    embeddings: np.ndarray
    hit: np.ndarray
    snapshot_id: str

    @property
    def hit_rate(self) -> float:
        return float(self.hit.mean()) if len(self.hit) else 0.0


class EmbeddingStore:
    def __init__(self, snapshot_id: str, dim: int, users: np.ndarray, ads: np.ndarray, keys: np.ndarray,
                 embeddings: np.ndarray):
        self.snapshot_id, self.dim = snapshot_id, dim
        self._users, self._ads, self._keys, self._emb = users, ads, keys, embeddings

    @classmethod
    def open(cls, root: str | Path, model_name: str = "fm", verify: bool = True) -> EmbeddingStore:
        """Load the snapshot CURRENT names; with ``verify``, file checksums must match the manifest."""
        snap = read_current(root, model_name)
        if snap is None:
            raise SnapshotNotFound(
                f"no CURRENT snapshot for model {model_name!r} under {root}: publish one with 'solaris publish'"
                " or check --model-name / SOLARIS_MODEL_NAME"
            )
        return cls.load(root, model_name, snap, verify)

    @classmethod
    def load(cls, root: str | Path, model_name: str, snapshot_id: str, verify: bool = True) -> EmbeddingStore:
        manifest = read_manifest(root, model_name, snapshot_id)
        d = model_dir(root, model_name) / "snapshots" / snapshot_id
        dim = int(manifest["dim"])
        us, as_, es = [], [], []
        for f in manifest["files"]:
            p = d / f["name"]
            if verify:
                h = hashlib.sha256(p.read_bytes()).hexdigest()
                if h != f["sha256"]:
                    raise ValidationFailed(f"snapshot file {p} fails its checksum: refusing to serve it")
            t = pq.read_table(p, columns=["user_id", "ad_id", "embedding"])
            us.append(t.column("user_id").to_numpy())
            as_.append(t.column("ad_id").to_numpy())
            es.append(decode_embeddings(t.column("embedding"), dim))
        u = np.concatenate(us) if us else np.zeros(0, np.int64)
        a = np.concatenate(as_) if as_ else np.zeros(0, np.int64)
        e = np.concatenate(es) if es else np.zeros((0, dim), "<f2")
        users, ur = np.unique(u, return_inverse=True)
        ads, ar = np.unique(a, return_inverse=True)
        keys = ur.astype(np.int64) * max(len(ads), 1) + ar
        order = np.argsort(keys, kind="stable")
        return cls(snapshot_id, dim, users, ads, keys[order], e[order])

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, user_ids: np.ndarray, ad_ids: np.ndarray) -> LookupResult:
        """Embeddings for equal-length int64 arrays of user and ad ids."""
        u = np.asarray(user_ids, dtype=np.int64)
        a = np.asarray(ad_ids, dtype=np.int64)
        if u.shape != a.shape or u.ndim != 1:
            raise ValueError("user_ids and ad_ids must be 1-d arrays of equal length")
        out = np.zeros((len(u), self.dim), dtype=np.float32)
        if len(self._keys) == 0 or len(u) == 0:
            return LookupResult(out, np.zeros(len(u), bool), self.snapshot_id)
        ur = np.searchsorted(self._users, u).clip(0, len(self._users) - 1)
        ar = np.searchsorted(self._ads, a).clip(0, len(self._ads) - 1)
        ok = (self._users[ur] == u) & (self._ads[ar] == a)
        key = ur * len(self._ads) + ar
        pos = np.searchsorted(self._keys, key).clip(0, len(self._keys) - 1)
        hit = ok & (self._keys[pos] == key)
        out[hit] = self._emb[pos[hit]]
        return LookupResult(out, hit, self.snapshot_id)
