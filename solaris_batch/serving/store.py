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

import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from solaris_batch.errors import (
    ConfigError,
    InvalidInput,
    SnapshotNotFound,
    SolarisError,
    ValidationFailed,
)
from solaris_batch.hashing import shard_of
from solaris_batch.serving.memory import prefaulted_empty
from solaris_batch.snapshots.index import PairIndex, UserSegments
from solaris_batch.snapshots.manifest import (
    CURRENT,
    INDEX,
    FileEntry,
    Manifest,
    Pointer,
    verify_bytes,
)
from solaris_batch.snapshots.publish import load_manifest, read_pointer, snapshot_dir
from solaris_batch.snapshots.shards import decode_embeddings, has_shard_schema
from solaris_batch.storage import Root, safe_name
from solaris_batch.timeutil import parse_duration

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


def _read_file(root: Root, rel: str, entry: FileEntry, verify: str) -> pa.Buffer:
    try:
        data = root.read_buffer(rel)
    except FileNotFoundError:
        raise ValidationFailed(f"snapshot file {rel} is missing: the snapshot is incomplete; refused") from None
    verify_bytes(memoryview(data), entry, verify, rel)
    return data


def _row_groups(data: pa.Buffer, columns: list[str], m: Manifest, entry: FileEntry, rel: str):
    """Decode one row group at a time (small, reused decode buffers), refusing a file whose schema
    or row count differs from what the manifest says, or that holds nulls."""
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
        if not has_shard_schema(pf.schema_arrow, m.dim):
            raise ValidationFailed(f"snapshot file {rel} does not have the embedding schema of dim {m.dim}: refused")
        if pf.metadata.num_rows != entry.rows:
            raise ValidationFailed(f"snapshot file {rel} holds {pf.metadata.num_rows} rows, manifest says"
                                   f" {entry.rows}: refused")
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g, columns=columns, use_threads=False)
            if any(c.null_count for c in t.columns):
                raise ValidationFailed(f"snapshot file {rel} holds nulls: refused")
            yield t
    except (pa.ArrowException, OSError) as e:
        raise ValidationFailed(f"snapshot file {rel} is not readable Parquet ({str(e)[:100]}): refused") from None


def _read_index(root: Root, base: str, m: Manifest, n: int, verify: str) -> np.ndarray | None:
    """The pair index built at publish time, or None when the manifest has none for this layout."""
    ix = m.index
    if ix is None or ix.format != PairIndex.FORMAT or ix.rows != n:
        return None
    table = prefaulted_empty((ix.slots,), np.int64)
    try:
        root.read_into(f"{base}/{INDEX}", table)
    except FileNotFoundError:
        raise ValidationFailed(f"{base}/{INDEX} is missing: the snapshot is incomplete; refused") from None
    verify_bytes(memoryview(table).cast("B"), ix, verify, f"{base}/{INDEX}")
    return table


def _load_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def load_snapshot(root: Root, model: str, snapshot_id: str, shard: tuple[int, int] | None = None,
                  verify: str = "fast", fallback: str = "zeros", threads: int | None = None,
                  expect_sha256: str | None = None) -> _Snapshot:
    """Verify and decode a snapshot's files in parallel (``threads``, default: cores, at most 8)
    straight into prefaulted huge-page arrays, one row group at a time.

    ``expect_sha256`` is the manifest digest CURRENT records; every field of the manifest is
    validated (``Manifest.parse``) and checked against the files before it sizes any memory."""
    m = load_manifest(root, model, snapshot_id, expect_sha256)
    dim, base, files = m.dim, snapshot_dir(model, snapshot_id), m.files
    cols = ["user_id", "ad_id", "embedding"]

    def shard_rows(f: FileEntry) -> int:  # this serving shard's rows in one file, from its user_id column
        rel = f"{base}/{f.name}"
        data = _read_file(root, rel, f, verify)
        return sum(int((shard_of(t.column(0).to_numpy(), shard[1]) == shard[0]).sum())
                   for t in _row_groups(data, ["user_id"], m, f, rel))

    def fill(f: FileEntry, off: int, count: int) -> None:
        rel = f"{base}/{f.name}"
        k, end = off, off + count
        for t in _row_groups(_read_file(root, rel, f, verify), cols, m, f, rel):
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
        counts = [f.rows for f in files] if shard is None else list(pool.map(shard_rows, files))
        n = sum(counts)
        keys = prefaulted_empty((n, 2), np.int64)
        emb = prefaulted_empty((n, dim), "<f2")
        index_job = pool.submit(_read_index, root, base, m, n, verify) if shard is None else None
        offsets = np.r_[0, np.cumsum(counts)[:-1]].astype(int).tolist()
        for job in [pool.submit(fill, f, o, c) for f, o, c in zip(files, offsets, counts, strict=True)]:
            job.result()
        table = index_job.result() if index_job else None
    index = PairIndex.from_table(keys, table, m.index.mask) if table is not None else PairIndex(keys)
    users = keys[:, 0]
    segments = UserSegments(keys)
    segments = segments if segments.ok else None  # data not grouped by user: the pair index only
    snap = _Snapshot(snapshot_id, dim, keys, emb, index, segments, m.at_ts)
    if fallback == "user_mean" and n:
        snap.user_mean_ids, snap.user_mean = user_means(users, emb)
    snap.nbytes = keys.nbytes + emb.nbytes + snap.index.nbytes + (segments.nbytes if segments else 0) + (
        snap.user_mean.nbytes + snap.user_mean_ids.nbytes if snap.user_mean is not None else 0)
    return snap


def user_means(users: np.ndarray, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``user_mean`` fallback's table: each distinct user of ``users`` (sorted) and the float32
    mean of its rows of ``emb`` (n, d)."""
    if not len(users):
        return np.zeros(0, np.int64), np.zeros((0, emb.shape[1]), np.float32)
    o = np.argsort(users, kind="stable")
    su = users[o]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
    sums = np.add.reduceat(emb[o].astype(np.float32), starts, axis=0)
    return su[starts], sums / np.diff(np.r_[starts, len(su)])[:, None]


def find_users(ids: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``users`` is in the sorted ``ids``: ``(known, pos)``, ``pos`` valid where ``known``."""
    if not len(ids):
        return np.zeros(len(users), bool), np.zeros(len(users), np.int64)
    pos = np.searchsorted(ids, users).clip(0, len(ids) - 1)
    return ids[pos] == users, pos


_INT64 = np.dtype(np.int64)


def _ids(x, what: str) -> np.ndarray:
    """``x`` as a contiguous int64 array; non-integer ids are refused, never truncated or wrapped."""
    if type(x) is np.ndarray and x.dtype is _INT64:  # the serving hot path: nothing to check
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    if (arr.size and arr.dtype.kind not in "iu") or (arr.dtype == np.uint64 and len(arr) and arr.max() > np.iinfo(np.int64).max):
        raise InvalidInput(f"{what} must be integers (int64), got dtype {arr.dtype}: convert ids before lookup,"
                           " fractional or NaN ids are never truncated")
    return np.ascontiguousarray(arr, dtype=np.int64)


LATENCY_BUCKETS = (25e-6, 50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 1e-3, 5e-3, 0.05)


class _Metrics:
    """One store's lookup counters, kept as plain integers under one lock. One lock per lookup
    instead of one per counter: prometheus_client's own metric objects cost ~0.5 us per update, a
    tenth of a request-shaped lookup. ``_Exporter`` turns them into series at scrape time."""

    def __init__(self, registry, model: str, store: EmbeddingStore):
        from prometheus_client import REGISTRY

        self.registry = registry if registry is not None else REGISTRY
        self.model, self._store = model, weakref.ref(store)  # the registry must not keep a store alive
        self._lock = threading.Lock()
        self._c = [0, 0, 0, 0, 0.0, 0]  # lookups, hit, miss, stale pairs, latency sum, fallbacks
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._reloads: dict[tuple[str, str], int] = {("ok", ""): 0}
        self.opened = time.monotonic()
        _Exporter.of(self.registry).add(self)

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

    def reload(self, result: str, reason: str = "") -> None:
        with self._lock:
            self._reloads[result, reason] = self._reloads.get((result, reason), 0) + 1

    def snapshot(self):
        with self._lock:
            return list(self._c), list(self._buckets), dict(self._reloads)

    @property
    def store(self) -> EmbeddingStore | None:
        return self._store()

    def close(self) -> None:
        _Exporter.of(self.registry).discard(self)


class _Exporter:
    """The one ``prometheus_client`` collector per registry (the process's default ``REGISTRY``
    unless a store is given its own): series are labelled by model, and the live stores of one
    model are summed, so two stores never export duplicate series and a closed or collected store
    drops out."""

    _by_registry: dict[int, _Exporter] = {}
    _guard = threading.Lock()
    _PAIRS = ("hit", "miss", "stale")

    @classmethod
    def of(cls, registry) -> _Exporter:
        with cls._guard:
            ex = cls._by_registry.get(id(registry))
            if ex is None or ex.registry is not registry:
                ex = cls._by_registry[id(registry)] = cls(registry)
            return ex

    def __init__(self, registry):
        self.registry = registry
        self.members: weakref.WeakSet[_Metrics] = weakref.WeakSet()
        registry.register(self)

    def describe(self):
        return []  # series appear and vanish with stores: no fixed names to reserve

    def add(self, m: _Metrics) -> None:
        self.members.add(m)

    def discard(self, m: _Metrics) -> None:
        self.members.discard(m)

    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )
        from prometheus_client.utils import floatToGoString

        by_model: dict[str, list[_Metrics]] = {}
        for m in list(self.members):
            if m.store is not None:
                by_model.setdefault(m.model, []).append(m)
        fams = {
            "lookups": CounterMetricFamily("solaris_lookups", "lookup() calls", labels=["model"]),
            "pairs": CounterMetricFamily("solaris_lookup_pairs", "pairs looked up, by result", labels=["model", "result"]),
            "fallbacks": CounterMetricFamily("solaris_lookup_fallbacks", "misses answered by the fallback policy",
                                             labels=["model", "policy"]),
            "latency": HistogramMetricFamily("solaris_lookup_latency_seconds", "lookup() latency", labels=["model"]),
            "reloads": CounterMetricFamily("solaris_reloads", "reload attempts by result (refusals by reason)",
                                           labels=["model", "result", "reason"]),
            "age": GaugeMetricFamily("solaris_snapshot_age_seconds", "age of the served snapshot", labels=["model"]),
            "info": InfoMetricFamily("solaris_snapshot", "served snapshot", labels=["model"]),
        }
        for model, ms in sorted(by_model.items()):
            c, buckets, reloads, fallback = [0] * 6, [0] * (len(LATENCY_BUCKETS) + 1), {}, {}
            for m in ms:
                mc, mb, mr = m.snapshot()
                c = [x + y for x, y in zip(c, mc, strict=True)]
                buckets = [x + y for x, y in zip(buckets, mb, strict=True)]
                for k, v in mr.items():
                    reloads[k] = reloads.get(k, 0) + v
                store = m.store
                if store is not None and store.fallback != "none":
                    fallback[store.fallback] = fallback.get(store.fallback, 0) + mc[5]
            fams["lookups"].add_metric([model], c[0])
            for name, v in zip(self._PAIRS, (c[1], c[2], c[3]), strict=True):
                fams["pairs"].add_metric([model, name], v)
            for policy, v in fallback.items():
                fams["fallbacks"].add_metric([model, policy], v)
            cum = np.cumsum(buckets).tolist()
            fams["latency"].add_metric([model], [(floatToGoString(le), v) for le, v in
                                                 zip((*LATENCY_BUCKETS, float("inf")), cum, strict=True)], sum_value=c[4])
            for (result, reason), v in reloads.items():
                fams["reloads"].add_metric([model, result, reason], v)
            newest = max(ms, key=lambda m: m.opened).store  # the store a restart would keep
            if newest is not None:
                fams["age"].add_metric([model], newest.age_s())
                fams["info"].add_metric([model], {"snapshot_id": newest.snapshot_id})
        yield from fams.values()


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
        self._refused_raw: bytes | None = None  # the CURRENT bytes last refused

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
            registry: the ``prometheus_client`` registry to export to (default: the process's
                ``REGISTRY``, which ``prometheus_client.start_http_server(port)`` serves).
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
        if verify not in ("fast", "full", "none"):
            raise ConfigError(f"verify={verify!r}: choose fast (XXH3-128, default), full (sha256) or none")
        r, model = Root.open(root), safe_name(model_name, "model name")
        pointer = read_pointer(r, model)
        snap_id = safe_name(snapshot_id, "snapshot id") if snapshot_id else (pointer and pointer.snapshot_id)
        if snap_id is None:
            raise SnapshotNotFound(
                f"no CURRENT snapshot for model {model!r} under {r}: publish one with 'solaris publish'"
                " or check --model-name / SOLARIS_MODEL_NAME")
        digest = pointer.manifest_sha256 if pointer and pointer.snapshot_id == snap_id else None
        snap = load_snapshot(r, model, snap_id, shard, verify, fallback, load_threads, digest)
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
        u, a = _ids(user_ids, "user_ids"), _ids(ad_ids, "ad_ids")
        if u.shape != a.shape or u.ndim != 1:
            raise InvalidInput(f"user_ids {u.shape} and ad_ids {a.shape} must be 1-d arrays of equal length")
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
            known, pos = find_users(snap.user_mean_ids, u[miss])
            idx = np.flatnonzero(miss)[known]
            out[idx] = snap.user_mean[pos[known]]

    # ---------------------------------------------------------------------------------------
    def reload(self, force: bool = False) -> bool:
        """Swap in the snapshot CURRENT names now, if it changed. Readers are never blocked.

        Reload can fail, the store cannot: whatever goes wrong while reading or loading the new
        snapshot (a corrupt pointer, manifest or file, a dim change, an I/O error, a bug) is caught,
        counted once in ``solaris_reloads_total{result="refused", reason=...}``, logged, and the old
        snapshot keeps serving (returns False). A refused CURRENT is not loaded again until it
        changes (a republish or rollback rewrites it) or ``force=True``; I/O errors are retried."""
        with self._reload_lock:
            raw = None
            try:
                raw = self._root.read_optional(f"{self._model}/{CURRENT}")
                if raw is None or (raw == self._refused_raw and not force):
                    return False
                pointer = Pointer.parse(raw, f"{self._root}/{self._model}/{CURRENT}")
                if pointer.snapshot_id == self._snap.snapshot_id:
                    return False
                new = load_snapshot(self._root, self._model, pointer.snapshot_id, self._shard, self._verify,
                                    self._fallback, self._load_threads, pointer.manifest_sha256)
                if new.dim != self._snap.dim:
                    raise ValidationFailed(f"snapshot {pointer.snapshot_id} has dim {new.dim}, this store serves"
                                           f" dim {self._snap.dim}: open a new store to change width")
            except Exception as e:  # the trust boundary: nothing read from storage may stop the store
                self._refused(e)
                self._refused_raw = None if isinstance(e, OSError) else raw  # I/O errors may pass: retry
                return False
            self._snap = new  # atomic reference swap
            self.last_reload_error, self._refused_raw = None, None
            self.metrics.reload("ok")
            return True

    def _refused(self, e: Exception) -> None:
        reason = type(e).__name__ if isinstance(e, SolarisError | OSError | pa.ArrowException) else "unexpected"
        self.metrics.reload("refused", reason)
        msg = f"{type(e).__name__}: {e}"
        if msg != self.last_reload_error:  # once per distinct error, not once per watcher tick
            log.warning("keeping snapshot %s: reload refused: %s", self._snap.snapshot_id, msg,
                        exc_info=reason == "unexpected")
        self.last_reload_error = msg

    def start_watcher(self, interval_s: float = 30.0) -> None:
        """Reload automatically in a daemon thread every ``interval_s`` seconds."""
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop():
            while not self._stop.wait(interval_s):
                try:
                    self.reload()
                except Exception as e:  # reload() catches its own; this keeps the watcher alive regardless
                    self._refused(e)

        self._watcher = threading.Thread(target=loop, daemon=True, name=f"solaris-watch-{self._model}")
        self._watcher.start()

    def close(self) -> None:
        """Stop the watcher and take this store's metrics out of the registry."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self.metrics.close()
