"""FM inputs: engagement sequences and ad features as dense arrays.

``sequences_at`` is the numpy twin of ``sql/user_sequences.sql`` (the Spark side used at planning
time); training uses it so that the model sees at train time exactly what it sees at serve time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from solaris_batch.hashing import bucket_of

PAD, IMPRESSION, CLICK = 0, 1, 2
AD_SEED, CAT_SEED = 7, 11


@dataclass
class Events:
    """Impressions sorted by (user_id, ts_us, ad_id), the order both implementations use."""

    user_id: np.ndarray
    ts_us: np.ndarray
    ad_id: np.ndarray
    clicked: np.ndarray

    @classmethod
    def from_table(cls, t: pa.Table) -> Events:
        u = t.column("user_id").to_numpy()
        ts = t.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
        a = t.column("ad_id").to_numpy()
        c = t.column("clicked").to_numpy(zero_copy_only=False).astype(bool)
        o = np.lexsort((c, a, ts, u))
        return cls(u[o], ts[o], a[o], c[o])


def sequences_at(
    ev: Events, query_user: np.ndarray, query_ts_us: np.ndarray, seq_len: int, lookback_us: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last ``seq_len`` events of each query user with ``t - lookback <= ts < t``, oldest first.

    Returns ``(ad_id (Q, L) int64, clicked (Q, L) bool, valid (Q, L) bool)``, right-aligned: the
    most recent event sits in the last column, padding on the left.
    """
    uniq, inv = np.unique(np.concatenate([ev.user_id, query_user]), return_inverse=True)
    eu, qu = inv[: len(ev.user_id)], inv[len(ev.user_id) :]
    lows = [a.min() for a in (ev.ts_us, query_ts_us - lookback_us) if len(a)]
    highs = [a.max() for a in (ev.ts_us, query_ts_us) if len(a)]
    base = int(min(lows)) if lows else 0
    span = (int(max(highs)) if highs else 0) - base + 1
    if len(uniq) * span >= 2**62:
        raise OverflowError("time span x users too large for the combined sort key")
    key = eu.astype(np.int64) * span + (ev.ts_us - base)
    end = np.searchsorted(key, qu * span + (query_ts_us - base), side="left")
    start = np.searchsorted(key, qu * span + (query_ts_us - lookback_us - base), side="left")
    idx = end[:, None] - seq_len + np.arange(seq_len)[None, :]
    valid = idx >= start[:, None]
    idx = np.where(valid, idx, 0)
    if len(ev.ad_id) == 0:
        z = np.zeros(idx.shape, dtype=np.int64)
        return z, z.astype(bool), np.zeros(idx.shape, dtype=bool)
    return np.where(valid, ev.ad_id[idx], 0), valid & ev.clicked[idx], valid


def pack_lists(ad_lists: pa.ChunkedArray | pa.Array, clicked_lists, seq_len: int):
    """Right-align list columns (``seq_ad_id``, ``seq_clicked``) into ``(n, seq_len)`` arrays."""
    ad_lists = ad_lists.combine_chunks() if isinstance(ad_lists, pa.ChunkedArray) else ad_lists
    clicked_lists = clicked_lists.combine_chunks() if isinstance(clicked_lists, pa.ChunkedArray) else clicked_lists
    ad_lists = ad_lists.cast(pa.list_(pa.int64()))
    clicked_lists = clicked_lists.cast(pa.list_(pa.bool_()))
    n = len(ad_lists)
    lens = np.asarray(ad_lists.value_lengths().fill_null(0), dtype=np.int64)
    offsets = np.asarray(ad_lists.offsets, dtype=np.int64)[:-1] if n else np.zeros(0, np.int64)
    flat_ad = np.asarray(ad_lists.flatten(), dtype=np.int64)
    flat_c = np.asarray(clicked_lists.flatten().fill_null(False), dtype=bool)
    take = np.minimum(lens, seq_len)
    col = np.arange(seq_len)[None, :]
    valid = col >= (seq_len - take)[:, None]
    src = offsets[:, None] + (lens - take)[:, None] + (col - (seq_len - take)[:, None])
    src = np.where(valid, src, 0)
    ad = np.where(valid, flat_ad[src] if len(flat_ad) else 0, 0)
    clicked = valid & (flat_c[src] if len(flat_c) else False)
    return ad, clicked, valid


class AdFeatures:
    """ad_id -> category_id lookup (0 = unknown), vectorized over numpy arrays."""

    def __init__(self, ad_id: np.ndarray, category_id: np.ndarray):
        o = np.argsort(ad_id)
        self.ad_id = np.asarray(ad_id, dtype=np.int64)[o]
        self.cat = np.nan_to_num(np.asarray(category_id, dtype=np.float64)[o], nan=-1).astype(np.int64) + 1

    @classmethod
    def from_table(cls, t: pa.Table | None) -> AdFeatures:
        if t is None or t.num_rows == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        cat = t.column("category_id").to_numpy(zero_copy_only=False)
        return cls(t.column("ad_id").to_numpy(), cat)

    def category(self, ad_id: np.ndarray) -> np.ndarray:
        if len(self.ad_id) == 0:
            return np.zeros(np.shape(ad_id), dtype=np.int64)
        pos = np.searchsorted(self.ad_id, ad_id).clip(0, len(self.ad_id) - 1)
        return np.where(self.ad_id[pos] == ad_id, self.cat[pos], 0)


def encode_tokens(ad_id: np.ndarray, clicked: np.ndarray, valid: np.ndarray, ads: AdFeatures,
                  ad_buckets: int, cat_buckets: int) -> dict[str, np.ndarray]:
    """Model-ready integer tokens for sequences (any shape)."""
    return {
        "ad": np.where(valid, bucket_of(ad_id, ad_buckets - 1, AD_SEED) + 1, 0),
        "cat": np.where(valid, ads.category(ad_id) % cat_buckets, 0),
        "event": np.where(valid, np.where(clicked, CLICK, IMPRESSION), PAD),
    }


def encode_candidates(ad_id: np.ndarray, ads: AdFeatures, ad_buckets: int, cat_buckets: int) -> dict[str, np.ndarray]:
    return {"ad": bucket_of(ad_id, ad_buckets - 1, AD_SEED) + 1, "cat": ads.category(ad_id) % cat_buckets}
