"""Plan shard -> batches of whole users, read in bounded memory.

Pairs and user sequences of a shard are both sorted by ``user_id``; they are streamed together in
record batches (a merge join), and each chunk of whole users is cut into batches by a *token
budget*: a batch costs ``users * seq_len`` (encoder tokens) ``+ pairs`` (candidate queries), since
users differ a lot in candidate counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.errors import ValidationFailed
from solaris_batch.model.features import AdFeatures, encode_candidates, encode_tokens, pack_lists


def user_batches(pair_users: np.ndarray, budget: int, user_cost: int = 0) -> list[tuple[int, int, int, int]]:
    """Cut user-sorted pairs into batches of whole users costing at most ``budget`` (a user costs
    ``user_cost`` plus its pair count; a user over budget gets a batch alone).
    Returns ``(pair_lo, pair_hi, user_lo, user_hi)`` per batch."""
    if len(pair_users) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, pair_users[1:] != pair_users[:-1]])
    ends = np.r_[starts[1:], len(pair_users)]
    cum = np.cumsum(ends - starts + user_cost)
    out, u0 = [], 0
    while u0 < len(starts):
        base = cum[u0 - 1] if u0 else 0
        u1 = max(u0 + 1, int(np.searchsorted(cum, base + budget, side="right")))
        out.append((int(starts[u0]), int(ends[u1 - 1]), u0, u1))
        u0 = u1
    return out


def _record_batches(files: list[str], columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    for f in files:
        yield from pq.ParquetFile(f).iter_batches(batch_size=rows, columns=columns)


def iter_user_chunks(pair_files: list[str], user_files: list[str], rows: int = 1 << 16
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, pa.Table]]:
    """Yield ``(pair_users, pair_ads, users)`` chunks holding whole users, with the sequence rows
    of exactly those users (missing users get no row). Memory stays O(rows)."""
    pairs = _record_batches(pair_files, ["user_id", "ad_id"], rows)
    users = _record_batches(user_files, ["user_id", "seq_ad_id", "seq_clicked"], rows)
    empty = np.zeros(0, np.int64)
    carry_u, carry_a = empty, empty
    ubuf: pa.Table | None = None
    users_done, last = False, None
    while True:
        rb = next(pairs, None)
        if rb is not None:
            u = np.concatenate([carry_u, rb.column(0).to_numpy()])
            a = np.concatenate([carry_a, rb.column(1).to_numpy()])
            if len(u) and ((np.diff(u) < 0).any() or (last is not None and u[0] <= last)):
                raise ValidationFailed(f"plan shard {pair_files} is not sorted by user_id: rerun speculate")
            cut = int(np.searchsorted(u, u[-1], side="left")) if len(u) else 0
            emit_u, emit_a, carry_u, carry_a = u[:cut], a[:cut], u[cut:], a[cut:]
        else:
            emit_u, emit_a, carry_u, carry_a = carry_u, carry_a, empty, empty
        if len(emit_u):
            last = emit_u[-1]
            while not users_done and (ubuf is None or ubuf.num_rows == 0
                                      or ubuf.column(0)[ubuf.num_rows - 1].as_py() < last):
                ub = next(users, None)
                if ub is None:
                    users_done = True
                else:
                    t = pa.Table.from_batches([ub])
                    ubuf = t if ubuf is None else pa.concat_tables([ubuf, t])
            uniq = np.unique(emit_u)
            if ubuf is not None and ubuf.num_rows:
                ids = ubuf.column(0).to_numpy()
                pos = np.searchsorted(ids, uniq).clip(0, len(ids) - 1)
                found = ids[pos] == uniq
                sub = ubuf.take(pa.array(pos[found]))
                ubuf = ubuf.slice(int(np.searchsorted(ids, last, side="right")))
            else:
                sub = None
            yield emit_u, emit_a, sub
        if rb is None:
            return


@dataclass
class HostBatch:
    """One model call's inputs on the host: users (U,), pairs (N,), and int64 token arrays."""

    pair_users: np.ndarray
    pair_ads: np.ndarray
    arrays: dict[str, np.ndarray]


def make_batch(pu: np.ndarray, pa_: np.ndarray, users: pa.Table | None, ads: AdFeatures,
               seq_len: int, ad_buckets: int, cat_buckets: int) -> HostBatch:
    bu, inv = np.unique(pu, return_inverse=True)
    sa = np.zeros((len(bu), seq_len), np.int64)
    sc = np.zeros_like(sa, dtype=bool)
    sv = np.zeros_like(sa, dtype=bool)
    if users is not None and users.num_rows:
        ids = users.column(0).to_numpy()
        pos = np.searchsorted(ids, bu).clip(0, len(ids) - 1)
        found = ids[pos] == bu
        if found.any():
            sub = users.take(pa.array(pos[found]))
            a, c, v = pack_lists(sub.column("seq_ad_id"), sub.column("seq_clicked"), seq_len)
            sa[found], sc[found], sv[found] = a, c, v
    tok = encode_tokens(sa, sc, sv, ads, ad_buckets, cat_buckets)
    cand = encode_candidates(pa_, ads, ad_buckets, cat_buckets)
    return HostBatch(pu, pa_, {"ad": tok["ad"], "cat": tok["cat"], "event": tok["event"],
                               "user_index": inv.astype(np.int64), "cand_ad": cand["ad"], "cand_cat": cand["cat"]})
