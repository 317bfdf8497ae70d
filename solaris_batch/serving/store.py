"""EmbeddingStore: the lookup module serving processes embed.

    store = EmbeddingStore.open(root, model_name="fm", shard=None, max_age=None, fallback="zeros")
    res = store.lookup(user_ids, ad_ids)       # equal-length int64 arrays
    res.embeddings (n, d) float32 | res.hit (n,) bool | res.status (n,) HIT/MISS/STALE
    res.snapshot_id | res.age_s
    store.reload()                             # swap in a newer CURRENT (never blocks readers)
    store.start_watcher(interval_s=30)         # ... automatically

Loading reads each snapshot file once into memory, checks its XXH3-128 against the manifest
(sha256 with ``verify="full"``), decodes it with pyarrow's threaded reader and copies the columns
into preallocated arrays, so peak memory stays near the final resident size. The pair index was
built at publish time (``_index.bin``) and is loaded as is; only serving-shard loads rebuild it. A snapshot is an immutable object; ``lookup`` takes one reference to it,
so every result comes from exactly one snapshot, and an old snapshot is freed once the last
in-flight lookup drops it. A corrupt new snapshot is refused and the old one keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from solaris_batch.errors import ConfigError, SnapshotNotFound, ValidationFailed
from solaris_batch.hashing import shard_of
from solaris_batch.serving.index import PairIndex, UserSegments
from solaris_batch.serving.memory import prefaulted_empty
from solaris_batch.snapshots.publish import read_current, read_manifest
from solaris_batch.snapshots.shards import decode_embeddings
from solaris_batch.snapshots.storage import Root, safe_name
from solaris_batch.timeutil import parse_duration, parse_time

log = logging.getLogger(__name__)
MISS, HIT, STALE = 0, 1, 2
FALLBACKS = ("none", "zeros", "user_mean")


@dataclass(slots=True)
class LookupResult:
    """``embeddings`` (n, d) float16 as stored (float32 with ``dtype="float32"``); ``hit`` (n,) bool (an embedding was found, stale or not);
    ``status`` (n,) int8: 0 miss, 1 hit, 2 stale hit; the snapshot id and its age in seconds.
    Misses hold the fallback: NaN for ``none``, zeros, or the user's mean embedding."""

    embeddings: np.ndarray
    hit: np.ndarray
    status: np.ndarray
    snapshot_id: str
    age_s: float

    @property
    def hit_rate(self) -> float:
        return float(self.hit.mean()) if len(self.hit) else 0.0


@dataclass
class _Snapshot:
    snapshot_id: str
    at: datetime | None
    dim: int
    keys: np.ndarray  # (n, 2) int64: user_id, ad_id
    emb: np.ndarray  # (n, dim) float16
    index: PairIndex
    segments: UserSegments | None  # one-user requests, when rows are grouped by user
    at_ts: float = float("nan")
    user_mean_ids: np.ndarray | None = None
    user_mean: np.ndarray | None = None
    nbytes: int = field(default=0)
    pairs: Callable = field(init=False, repr=False)  # index.bind(emb): (users, ads) -> (hit, out, hits)
    one_user: Callable | None = field(init=False, repr=False)  # segments.bind(emb), if grouped by user

    def __post_init__(self):
        self.pairs = self.index.bind(self.emb)
        self.one_user = self.segments.bind(self.emb) if self.segments is not None else None

    @property
    def users(self) -> np.ndarray:
        return self.keys[:, 0]


def _read_file(root: Root, rel: str, entry: dict, verify: str) -> pa.Buffer:
    data = root.read_buffer(rel)
    _verify_bytes(memoryview(data), entry, verify, rel)
    return data


def _verify_bytes(data, entry: dict, verify: str, rel: str) -> None:
    if len(data) != entry["bytes"]:
        raise ValidationFailed(f"snapshot file {rel} has {len(data)} bytes, manifest says {entry['bytes']}: refused")
    if verify == "full":
        ok = hashlib.sha256(data).hexdigest() == entry["sha256"]
    elif verify == "fast":
        ok = xxhash.xxh3_128_hexdigest(data) == entry["xxh3_128"]
    elif verify == "none":
        ok = True
    else:
        raise ConfigError(f"verify={verify!r}: choose fast (XXH3-128, default), full (sha256) or none")
    if not ok:
        raise ValidationFailed(f"snapshot file {rel} fails its {verify} checksum: refusing to serve it")


def _decode(data: pa.Buffer, columns: list[str]) -> pa.Table:
    try:
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise ValidationFailed(f"snapshot file is not readable Parquet ({e}): refused") from None


def _row_groups(data: pa.Buffer, columns: list[str], rows: int | None, rel: str):
    """Decode one row group at a time (small, reused decode buffers); ``rows`` checks the total."""
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        if rows is not None and pf.metadata.num_rows != rows:
            raise ValidationFailed(f"snapshot file {rel} holds {pf.metadata.num_rows} rows, manifest says {rows}: refused")
        for g in range(pf.num_row_groups):
            yield pf.read_row_group(g, columns=columns, use_threads=False)
    except (pa.ArrowException, OSError) as e:
        raise ValidationFailed(f"snapshot file {rel} is not readable Parquet ({e}): refused") from None


def _read_index(root: Root, base: str, m: dict, n: int, verify: str) -> np.ndarray | None:
    """The pair index built at publish time, or None when the manifest has none for this layout."""
    ix = m.get("index")
    if not ix or ix.get("format") != PairIndex.FORMAT or ix.get("rows") != n:
        return None
    if ix.get("name") != "_index.bin":
        raise ValidationFailed(f"manifest of {base} names unexpected index file {ix.get('name')!r}")
    if ix["bytes"] != 8 * ix["slots"]:
        raise ValidationFailed(f"index of {base}: {ix['bytes']} bytes for {ix['slots']} slots: refused")
    table = prefaulted_empty((ix["slots"],), np.int64)
    root.read_into(f"{base}/_index.bin", table)
    _verify_bytes(memoryview(table).cast("B"), ix, verify, f"{base}/_index.bin")
    return table


def _load_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def load_snapshot(root: Root, model: str, snapshot_id: str, shard: tuple[int, int] | None = None,
                  verify: str = "fast", fallback: str = "zeros", threads: int | None = None) -> _Snapshot:
    """Verify and decode a snapshot's files in parallel (``threads``, default: cores, at most 8)
    straight into prefaulted huge-page arrays, one row group at a time."""
    m = read_manifest(root, model, snapshot_id)
    dim, base, files = int(m["dim"]), f"{model}/snapshots/{snapshot_id}", m["files"]
    cols = ["user_id", "ad_id", "embedding"]

    def shard_rows(f: dict) -> int:  # this serving shard's rows in one file, from its user_id column
        u = _decode(_read_file(root, f"{base}/{f['name']}", f, "none"), ["user_id"]).column(0).to_numpy()
        return int((shard_of(u, shard[1]) == shard[0]).sum())

    def fill(f: dict, off: int, count: int) -> None:
        rel = f"{base}/{f['name']}"
        k, end = off, off + count
        for t in _row_groups(_read_file(root, rel, f, verify), cols, int(f["rows"]), rel):
            for cu, ca, ce in zip(*(t.column(i).chunks for i in range(3)), strict=True):
                u, a, e = cu.to_numpy(), ca.to_numpy(), decode_embeddings(ce, dim)
                if shard is not None:
                    keep = shard_of(u, shard[1]) == shard[0]
                    u, a, e = u[keep], a[keep], e[keep]
                if k + len(u) > end:
                    raise ValidationFailed(f"snapshot file {rel} holds more rows than its manifest says: refused")
                keys[k : k + len(u), 0], keys[k : k + len(u), 1], emb[k : k + len(u)] = u, a, e
                k += len(u)
        if k != end:
            raise ValidationFailed(f"snapshot file {rel} holds {k - off} rows, manifest says {count}: refused")

    with ThreadPoolExecutor(threads or _load_threads(), thread_name_prefix="solaris-load") as pool:
        counts = [int(f["rows"]) for f in files] if shard is None else list(pool.map(shard_rows, files))
        n = sum(counts)
        if shard is None and n != int(m["rows"]):
            raise ValidationFailed(f"snapshot {snapshot_id}: files hold {n} rows, manifest says {m['rows']}: refused")
        keys = prefaulted_empty((n, 2), np.int64)
        emb = prefaulted_empty((n, dim), "<f2")
        index_job = pool.submit(_read_index, root, base, m, n, verify) if shard is None else None
        offsets = np.r_[0, np.cumsum(counts)[:-1]].astype(int).tolist()
        for job in [pool.submit(fill, f, o, c) for f, o, c in zip(files, offsets, counts, strict=True)]:
            job.result()
        table = index_job.result() if index_job else None
    index = PairIndex.from_table(keys, table, m["index"]["mask"]) if table is not None else PairIndex(keys)
    users = keys[:, 0]
    segments = UserSegments(keys)
    segments = segments if segments.ok else None  # data not grouped by user: the pair index only
    snap = _Snapshot(snapshot_id, parse_time(m["plan_at"]) if m.get("plan_at") else None, dim, keys, emb,
                     index, segments)
    if fallback == "user_mean" and n:
        o = np.argsort(users, kind="stable")
        su = users[o]
        starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
        sums = np.add.reduceat(emb[o].astype(np.float32), starts, axis=0)
        snap.user_mean_ids = su[starts]
        snap.user_mean = sums / np.diff(np.r_[starts, n])[:, None]
    if snap.at is not None:
        snap.at_ts = snap.at.timestamp()
    snap.nbytes = keys.nbytes + emb.nbytes + snap.index.nbytes + (segments.nbytes if segments else 0) + (
        snap.user_mean.nbytes + snap.user_mean_ids.nbytes if snap.user_mean is not None else 0)
    return snap


LATENCY_BUCKETS = (25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 1e-3, 5e-3, 0.05)


class _Metrics:
    """Lookup counters kept as plain integers under one lock and exported by a ``prometheus_client``
    collector at scrape time. One lock per lookup instead of one per counter: prometheus_client's
    own metric objects cost ~0.5 us per update, a tenth of a request-shaped lookup."""

    _PAIRS = ("hit", "miss", "stale")

    def __init__(self, registry, model: str, store: EmbeddingStore):
        from prometheus_client import CollectorRegistry

        self.registry = registry if registry is not None else CollectorRegistry()
        self._model, self._store = model, weakref.ref(store)  # the registry must not keep a store alive
        self._lock = threading.Lock()
        self._c = [0, 0, 0, 0, 0.0, 0]  # lookups, hit, miss, stale pairs, latency sum, fallbacks
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._reloads = {"ok": 0, "refused": 0}
        self.registry.register(self)

    def record(self, n_hit: int, n_miss: int, stale: bool, n_fallback: int, seconds: float) -> None:
        b = bisect_left(LATENCY_BUCKETS, seconds)  # buckets are "<= le"
        with self._lock:
            c = self._c
            c[0] += 1
            c[3 if stale else 1] += n_hit
            c[2] += n_miss
            c[4] += seconds
            c[5] += n_fallback
            self._buckets[b] += 1

    def reload(self, result: str) -> None:
        with self._lock:
            self._reloads[result] += 1

    def close(self) -> None:
        try:
            self.registry.unregister(self)
        except KeyError:  # already unregistered
            pass

    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        with self._lock:
            c, buckets, reloads = list(self._c), list(self._buckets), dict(self._reloads)
        lab = [self._model]
        f = CounterMetricFamily("solaris_lookups", "lookup() calls", labels=["model"])
        f.add_metric(lab, c[0])
        yield f
        f = CounterMetricFamily("solaris_lookup_pairs", "pairs looked up, by result", labels=["model", "result"])
        for name, v in zip(self._PAIRS, (c[1], c[2], c[3]), strict=True):
            f.add_metric([*lab, name], v)
        yield f
        store = self._store()
        f = CounterMetricFamily("solaris_lookup_fallbacks", "misses answered by the fallback policy",
                                labels=["model", "policy"])
        if store is not None and store.fallback != "none":
            f.add_metric([*lab, store.fallback], c[5])
        yield f
        cum = np.cumsum(buckets).tolist()
        f = HistogramMetricFamily("solaris_lookup_latency_seconds", "lookup() latency", labels=["model"])
        f.add_metric(lab, [(floatToGoString(le), v) for le, v in zip((*LATENCY_BUCKETS, float("inf")), cum, strict=True)],
                     sum_value=c[4])
        yield f
        f = CounterMetricFamily("solaris_reloads", "reload attempts by result", labels=["model", "result"])
        for k, v in reloads.items():
            f.add_metric([*lab, k], v)
        yield f
        if store is not None:
            f = GaugeMetricFamily("solaris_snapshot_age_seconds", "age of the served snapshot", labels=["model"])
            f.add_metric(lab, store.age_s())
            yield f
            f = InfoMetricFamily("solaris_snapshot", "served snapshot", labels=["model"])
            f.add_metric(lab, {"snapshot_id": store.snapshot_id})
            yield f


class EmbeddingStore:
    def __init__(self, root: Root, model: str, snap: _Snapshot, shard, max_age, fallback, verify, registry,
                 dtype=None, load_threads=None):
        self._root, self._model, self._shard, self._verify = root, model, shard, verify
        self._load_threads = load_threads
        self._dtype = None if dtype in (None, "float16") else np.dtype(dtype)
        self._max_age_s = None if max_age is None else parse_duration(max_age).total_seconds()
        self._fallback = fallback
        self._snap = snap
        self._reload_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.metrics = _Metrics(registry, model, self)
        self.last_reload_error: str | None = None

    @classmethod
    def open(cls, root: str | Path, model_name: str = "fm", shard: tuple[int, int] | None = None,
             max_age: str | None = None, fallback: str = "zeros", verify: str = "fast",
             registry=None, dtype: str = "float16", snapshot_id: str | None = None,
             load_threads: int | None = None) -> EmbeddingStore:
        """Load the snapshot CURRENT names (or the one ``snapshot_id`` pins).

        Args:
            root: snapshot root (path or pyarrow filesystem URI).
            shard: ``(i, n)`` loads only users with ``pmod(xxhash64(user_id), n) == i``.
            max_age: e.g. ``"2h"``: hits from a snapshot whose window end is older are ``STALE``.
            fallback: ``none`` (NaN, mask only), ``zeros`` or ``user_mean`` for misses.
            verify: ``fast`` (XXH3-128 per file, default), ``full`` (sha256) or ``none``.
            registry: a ``prometheus_client.CollectorRegistry`` (default: a private one).
            dtype: embeddings are returned as stored (``float16``) or converted (``float32``).
            snapshot_id: serve this snapshot instead of CURRENT (offline evaluation, canaries);
                ``reload()`` still moves to CURRENT.
            load_threads: threads that verify and decode files at load and reload (default: the
                cores, at most 8). 1 keeps background reloads off the cores serving lookups.
        """
        if fallback not in FALLBACKS:
            raise ConfigError(f"fallback {fallback!r} unknown: choose one of {', '.join(FALLBACKS)}")
        if shard is not None and not (0 <= shard[0] < shard[1]):
            raise ConfigError(f"shard {shard} must be (i, n) with 0 <= i < n")
        r, model = Root.open(root), safe_name(model_name, "model name")
        snap_id = safe_name(snapshot_id, "snapshot id") if snapshot_id else read_current(r, model)
        if snap_id is None:
            raise SnapshotNotFound(
                f"no CURRENT snapshot for model {model!r} under {r}: publish one with 'solaris publish'"
                " or check --model-name / SOLARIS_MODEL_NAME")
        snap = load_snapshot(r, model, snap_id, shard, verify, fallback, load_threads)
        return cls(r, model, snap, shard, max_age, fallback, verify, registry, dtype, load_threads)

    # ---------------------------------------------------------------------------------------
    @property
    def snapshot_id(self) -> str:
        return self._snap.snapshot_id

    @property
    def dim(self) -> int:
        return self._snap.dim

    @property
    def fallback(self) -> str:
        return self._fallback

    @property
    def resident_bytes(self) -> int:
        return self._snap.nbytes

    def __len__(self) -> int:
        return len(self._snap.users)

    def age_s(self, snap: _Snapshot | None = None) -> float:
        """Seconds since the snapshot's window end (the horizon start it was computed for)."""
        snap = snap or self._snap
        return time.time() - snap.at_ts

    def lookup(self, user_ids: np.ndarray, ad_ids: np.ndarray) -> LookupResult:
        """Embeddings for equal-length int64 arrays of user and ad ids (one snapshot per call)."""
        t0 = time.perf_counter()
        snap = self._snap  # one reference: this call never mixes snapshots
        u = np.ascontiguousarray(user_ids, dtype=np.int64)
        a = np.ascontiguousarray(ad_ids, dtype=np.int64)
        if u.shape != a.shape or u.ndim != 1:
            raise ValueError("user_ids and ad_ids must be 1-d arrays of equal length")
        res = snap.one_user(u, a) if snap.one_user is not None and len(u) and u[0] == u[-1] else None
        hit, out, n_hit = res or snap.pairs(u, a)  # one-user requests, else the pair index
        if self._dtype is not None:
            out = out.astype(self._dtype)
        age = self.age_s(snap)
        stale = self._max_age_s is not None and age > self._max_age_s
        status = hit.view(np.int8) * np.int8(STALE) if stale else hit.view(np.int8)  # HIT=1, MISS=0
        n_miss = len(u) - n_hit
        if n_miss and self._fallback != "zeros":  # misses arrive zero-filled
            self._fill_misses(snap, u, hit, out)
        self.metrics.record(n_hit, n_miss, stale, 0 if self._fallback == "none" else n_miss, time.perf_counter() - t0)
        return LookupResult(out, hit, status, snap.snapshot_id, age)

    def _fill_misses(self, snap: _Snapshot, u: np.ndarray, hit: np.ndarray, out: np.ndarray) -> None:
        """Apply the ``none`` (NaN) or ``user_mean`` fallback policy to the zero-filled misses."""
        miss = ~hit
        if self._fallback == "none":
            out[miss] = np.nan
        elif snap.user_mean_ids is not None and len(snap.user_mean_ids):
            mu = u[miss]
            pos = np.searchsorted(snap.user_mean_ids, mu).clip(0, len(snap.user_mean_ids) - 1)
            known = snap.user_mean_ids[pos] == mu
            idx = np.flatnonzero(miss)[known]
            out[idx] = snap.user_mean[pos[known]]

    # ---------------------------------------------------------------------------------------
    def reload(self) -> bool:
        """Swap in the snapshot CURRENT names now, if it changed. Readers are never blocked; a
        snapshot that fails verification is refused (returns False) and the old one keeps serving."""
        with self._reload_lock:
            try:
                snap_id = read_current(self._root, self._model)
                if snap_id is None or snap_id == self._snap.snapshot_id:
                    return False
                new = load_snapshot(self._root, self._model, snap_id, self._shard, self._verify, self._fallback,
                                    self._load_threads)
            except (ValidationFailed, SnapshotNotFound, ConfigError, OSError, pa.ArrowException) as e:
                self.last_reload_error = str(e)
                self.metrics.reload("refused")
                log.warning("keeping snapshot %s: reload refused: %s", self._snap.snapshot_id, e)
                return False
            self._snap = new  # atomic reference swap
            self.last_reload_error = None
            self.metrics.reload("ok")
            return True

    def start_watcher(self, interval_s: float = 30.0) -> None:
        """Reload automatically in a daemon thread every ``interval_s`` seconds."""
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop():
            while not self._stop.wait(interval_s):
                self.reload()

        self._watcher = threading.Thread(target=loop, daemon=True, name=f"solaris-watch-{self._model}")
        self._watcher.start()

    def close(self) -> None:
        """Stop the watcher and take this store's metrics out of the registry."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self.metrics.close()
