"""Vectorized indexes from (user_id, ad_id) to a row number, built for serving lookups.

``PairIndex`` is a linear-probing hash table over the pairs (see its docstring); results are exact. ``UserSegments`` serves request-shaped lookups (one user, many ads) from the user's
contiguous, ad-sorted rows with two binary searches.
"""

from __future__ import annotations

import numpy as np

try:  # compiled probe loop (built by pip install); the numpy path below is the fallback
    from solaris_batch.snapshots import _probe
except ImportError:  # pragma: no cover - exercised when the extension was not built
    _probe = None

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x94D049BB133111EB)
W = 4
_NOTHING = np.zeros(0, dtype=np.uint8)  # an output or input the compiled call should skip
_NOTHING64 = np.zeros(0, dtype=np.int64)


def pair_hash(users: np.ndarray, ads: np.ndarray) -> np.ndarray:
    u = np.asarray(users, dtype=np.int64).view(np.uint64)
    a = np.asarray(ads, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = (u * _M1) ^ (a * _M2)
        h ^= h >> np.uint64(31)
        h *= _M3
        h ^= h >> np.uint64(29)
    return h


class PairIndex:
    """Linear-probing hash table built without a probing loop; immutable, thread-safe.

    Slot = low bits of the pair hash; entries are ``fingerprint << 32 | row`` (-1 = empty), where
    the fingerprint is the hash's top 31 bits. Build: sort packed ``slot << 32 | row`` keys (one
    radix-speed ``np.sort``), place the i-th key at ``p_i = i + max_{j<=i}(slot_j - j)`` (exactly
    where sequential linear probing would put it; the table is over-allocated instead of wrapping),
    scatter. Lookup: gather a ``W``-slot window per key, compare fingerprints, verify the ids of the
    one candidate with a single gather of packed ``(user, ad)`` keys.
    """

    FORMAT = "lp1"  # table layout + pair_hash version; bump when either changes

    @staticmethod
    def layout(n: int) -> tuple[int, int, int]:
        """``(mask, min_slots, max_slots)`` of the table built for ``n`` keys: what a table read
        from storage must match before it is used."""
        bits = max(4, int(3 * max(n, 1) - 1).bit_length())  # load factor <= 1/3: short runs
        return (1 << bits) - 1, (1 << bits) + W, (1 << bits) + n + W

    @classmethod
    def from_table(cls, keys: np.ndarray, table: np.ndarray, mask: int) -> PairIndex:
        """Wrap a table built earlier (e.g. at publish time) for the same ``keys`` order; refuses a
        mask or table size that does not fit ``len(keys)`` (the compiled probe bounds-checks too)."""
        want, lo, hi = cls.layout(len(keys))
        if int(mask) != want or not lo <= len(table) <= hi or table.dtype != np.int64:
            from solaris_batch.errors import ValidationFailed

            raise ValidationFailed(f"pair index (mask {int(mask)}, {len(table)} slots) does not fit {len(keys)} rows")
        self = cls.__new__(cls)
        self.keys, self.table, self.mask = keys, table, np.uint64(mask)
        self.nbytes = table.nbytes
        self._win = np.arange(W, dtype=np.int64)
        return self

    def __init__(self, keys: np.ndarray):
        """``keys``: (n, 2) int64 array of (user_id, ad_id) rows; kept by reference, not copied."""
        n = len(keys)
        if n >= 2**31:
            raise ValueError("PairIndex holds at most 2^31 - 1 rows per snapshot: shard the store")
        self.keys = keys
        users, ads = keys[:, 0], keys[:, 1]
        mask = self.layout(n)[0]
        self.mask = np.uint64(mask)
        h = pair_hash(users, ads)
        packed = np.sort(((h & self.mask) << np.uint64(32)) | np.arange(n, dtype=np.uint64))
        slots = (packed >> np.uint64(32)).astype(np.int64)
        rows = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
        del packed
        i = np.arange(n, dtype=np.int64)
        pos = i + np.maximum.accumulate(slots - i) if n else i
        del slots, i
        table = np.full(max(mask + 1, int(pos[-1]) + 1 if n else 0) + W, -1, dtype=np.int64)
        table[pos] = ((h[rows] >> np.uint64(33)).astype(np.int64) << 32) | rows
        self.table = table
        self.nbytes = table.nbytes
        self._win = np.arange(W, dtype=np.int64)

    def find(self, users: np.ndarray, ads: np.ndarray, compiled: bool = True) -> np.ndarray:
        """Row of each (user, ad), or -1 where absent."""
        if compiled and _probe is not None and len(self.keys):
            u = np.ascontiguousarray(users, dtype=np.int64)
            a = np.ascontiguousarray(ads, dtype=np.int64)
            rows = np.empty(len(u), dtype=np.int64)
            _probe.lookup(self.table, self.keys, int(self.mask), u, a, rows, _NOTHING, _NOTHING, 0, _NOTHING)
            return rows
        return self._find_numpy(np.asarray(users, dtype=np.int64), np.asarray(ads, dtype=np.int64))

    def lookup(self, emb: np.ndarray, users: np.ndarray, ads: np.ndarray,
               compiled: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
        """``(hit, out, hits)``: whether each (user, ad) is present, its row of ``emb`` (zeros for
        misses) and the number of hits, for int64 ``users``/``ads``.

        ``emb`` is the (n, d) array aligned with ``keys``. The compiled path probes and gathers in
        one pass with the memory misses of consecutive keys overlapped."""
        u = np.ascontiguousarray(users, dtype=np.int64)
        a = np.ascontiguousarray(ads, dtype=np.int64)
        if compiled:
            return self.bind(emb)(u, a)
        return gather_rows(emb, self.find(u, a, compiled=False))

    def bind(self, emb: np.ndarray):
        """``lookup`` for this ``emb`` as a function of contiguous int64 ``(users, ads)``, with
        everything per-snapshot resolved once: the serving hot path."""
        if _probe is None or not len(self.keys) or not emb.flags.c_contiguous:
            return lambda u, a: self.lookup(emb, u, a, compiled=False)
        table, keys, mask, d, dtype = self.table, self.keys, int(self.mask), emb.shape[1], emb.dtype
        row_bytes = d * emb.itemsize

        def lookup(u: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
            hit = np.empty(len(u), dtype=bool)
            out = np.empty((len(u), d), dtype=dtype)
            return hit, out, _probe.lookup(table, keys, mask, u, a, _NOTHING64, hit, emb, row_bytes, out)

        return lookup

    def repeated(self) -> np.ndarray:
        """Positions in ``keys`` whose pair already appeared earlier (a repeat finds its first row)."""
        return np.flatnonzero(self.find(self.keys[:, 0], self.keys[:, 1]) != np.arange(len(self.keys)))

    def _find_numpy(self, users: np.ndarray, ads: np.ndarray) -> np.ndarray:
        n = len(users)
        rows = np.full(n, -1, dtype=np.int64)
        if n == 0 or len(self.keys) == 0:
            return rows
        h = pair_hash(users, ads)
        fp = (h >> np.uint64(33)).astype(np.int64)
        pos = (h & self.mask).astype(np.int64)
        idx, u, a = np.arange(n), users, ads
        table, n_keys = self.table, len(self.keys)
        while True:  # every slot and row is bounds-checked, like the compiled probe (a table may be garbage)
            at = pos[:, None] + self._win
            inside = (at >= 0) & (at < len(table))
            win = np.where(inside, table[np.where(inside, at, 0)], -1) if len(table) else np.full(at.shape, -1)
            eq = (win >> 32) == fp[:, None]  # empty slots (-1) have fingerprint -1: never equal
            j = eq.argmax(1)
            ar = np.arange(len(idx))
            has = eq[ar, j]
            r = win[ar, j] & 0xFFFFFFFF
            has &= r < n_keys
            ok = has.copy()
            hi = np.flatnonzero(has)
            if len(hi):
                k = self.keys[r[hi]]
                ok[hi] = (k[:, 0] == u[hi]) & (k[:, 1] == a[hi])
            rows[idx[ok]] = r[ok]
            # go on where the window is full without a verified match (or a fingerprint collision
            # hid a later slot): the chain continues past the window
            fp_clash = has & ~ok
            more = np.flatnonzero(fp_clash | (~ok & (win.min(axis=1) >= 0)))
            if not len(more):
                return rows
            step = np.where(fp_clash, j + 1, W)[more]
            idx, u, a, fp, pos = idx[more], u[more], a[more], fp[more], pos[more] + step


def gather_rows(emb: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(hit, out, hits)`` for row numbers ``rows`` (-1 = absent): ``out`` is ``emb[rows]`` with
    zero rows for misses (the numpy counterpart of the compiled lookups)."""
    out = np.take(emb, rows, axis=0) if len(emb) else np.zeros((len(rows), emb.shape[1]), emb.dtype)
    hit = rows >= 0
    out[~hit] = 0
    return hit, out, int(hit.sum())


class UserSegments:
    """Rows grouped by user with ads sorted inside each group (the order plans and shards have).

    Built only when the data has that layout (``ok``). A one-user request then costs one probe of
    a small user table and, per ad, one look into a per-request hash of that user's few,
    cache-resident ads (a binary search for users with over 1,024 rows), instead of one random
    memory access per ad."""

    def __init__(self, keys: np.ndarray):
        users, ads = keys[:, 0], keys[:, 1]
        n = len(users)
        self.keys = keys
        brk = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts = np.r_[0, brk].astype(np.int64) if n else np.zeros(0, np.int64)
        # one 32-byte record per group, (user, 0, start, end): the probe's verification read brings
        # the bounds in the same cache line
        self.segments = np.zeros((len(starts), 4), np.int64)
        self.segments[:, 0], self.segments[:, 2], self.segments[:, 3] = users[starts], starts, np.r_[brk, n]
        self.ok = bool(n) and bool(((ads[1:] > ads[:-1]) | (users[1:] != users[:-1])).all())
        self.users = PairIndex(np.ascontiguousarray(self.segments[:, :2]))
        self.ok = self.ok and not len(self.users.repeated())  # each user in one group only
        self.nbytes = self.segments.nbytes + self.users.keys.nbytes + self.users.nbytes

    def lookup(self, emb: np.ndarray, users: np.ndarray, ads: np.ndarray,
               compiled: bool = True) -> tuple[np.ndarray, np.ndarray, int] | None:
        """Like ``PairIndex.lookup`` when every pair has the same user; None otherwise."""
        u = np.ascontiguousarray(users, dtype=np.int64)
        a = np.ascontiguousarray(ads, dtype=np.int64)
        if compiled:
            return self.bind(emb)(u, a)
        if not len(u) or (u != u[0]).any():
            return None
        rows = np.full(len(a), -1, dtype=np.int64)
        g = int(self.users.find(u[:1], np.zeros(1, np.int64), compiled=False)[0])
        if g >= 0:
            s, e = (min(max(int(x), 0), len(self.keys)) for x in self.segments[g, 2:])  # bounds may be garbage
            seg = self.keys[s:e, 1]
            p = np.searchsorted(seg, a).clip(0, max(e - s - 1, 0))
            hit = (seg[p] == a) & (self.keys[s + p, 0] == u[0]) if e > s else np.zeros(len(a), bool)
            rows[hit] = s + p[hit]
        return gather_rows(emb, rows)

    def bind(self, emb: np.ndarray):
        """``lookup`` for this ``emb`` as a function of contiguous int64 ``(users, ads)`` (see
        ``PairIndex.bind``)."""
        if _probe is None or not len(emb) or not emb.flags.c_contiguous:
            return lambda u, a: self.lookup(emb, u, a, compiled=False)
        table, mask, segments, keys = self.users.table, int(self.users.mask), self.segments, self.keys
        d, dtype, row_bytes = emb.shape[1], emb.dtype, emb.shape[1] * emb.itemsize

        def lookup(u: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
            hit = np.empty(len(u), dtype=bool)
            out = np.empty((len(u), d), dtype=dtype)
            hits = _probe.lookup_user(table, mask, segments, keys, emb, row_bytes, u, a, _NOTHING64, hit, out)
            return None if hits is None else (hit, out, hits)

        return lookup
