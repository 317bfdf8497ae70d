"""Snapshots and the lookup store: atomicity under kill -9, hot reload, integrity, policies."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow.fs as pafs
import pytest

from solaris_batch.errors import ConfigError, SnapshotNotFound, ValidationFailed
from solaris_batch.hashing import shard_of
from solaris_batch.serving import HIT, MISS, STALE, EmbeddingStore
from solaris_batch.snapshots.publish import (
    gc,
    list_snapshots,
    publish,
    read_bad,
    read_current,
    read_manifest,
    rollback,
)
from solaris_batch.snapshots.shards import write_embedding_shard
from solaris_batch.storage import FsRoot, LocalRoot
from tests.snapshot_fixtures import DIM, make_emb, resign


def test_lookup_statuses_fallbacks_shards_and_metrics(tmp_path):
    root = tmp_path / "snap"
    publish(make_emb(tmp_path / "e", 3, users=(11, 12)), root, "fm")
    q_u = np.array([11, 11, 12, 99, 11], dtype=np.int64)
    q_a = np.array([100, 102, 101, 100, 555], dtype=np.int64)
    from prometheus_client import CollectorRegistry

    zeros = EmbeddingStore.open(root, "fm", registry=CollectorRegistry())
    r = zeros.lookup(q_u, q_a)
    assert r.hit.tolist() == [True, True, True, False, False]
    assert r.status.tolist() == [HIT, HIT, HIT, MISS, MISS]
    assert (r.embeddings[:3] == 3).all() and (r.embeddings[3:] == 0).all()
    assert np.isnan(EmbeddingStore.open(root, "fm", fallback="none").lookup(q_u, q_a).embeddings[3:]).all()
    # user_mean: user 11's mean embedding for its miss, zeros for the unknown user 99
    um = EmbeddingStore.open(root, "fm", fallback="user_mean", dtype="float32").lookup(q_u, q_a)
    assert (um.embeddings[4] == 3).all() and (um.embeddings[3] == 0).all()
    # request-shaped path (one user, many ads) gives the same answer as the general path
    one = zeros.lookup(np.full(4, 11, np.int64), np.array([102, 100, 7, 101], np.int64))
    assert one.hit.tolist() == [True, True, False, True]
    # the snapshot window ended 2026-11-20T05:00 -> stale for max_age=1h
    old = EmbeddingStore.open(root, "fm", max_age="1h").lookup(q_u, q_a)
    assert old.status.tolist() == [STALE, STALE, STALE, MISS, MISS] and old.hit[:3].all()
    assert old.age_s > 3600
    # serving shard (i, n): only users with pmod(xxhash64(user), n) == i are loaded
    n = 2
    for i in range(n):
        s = EmbeddingStore.open(root, "fm", shard=(i, n))
        mine = shard_of(np.array([11, 12]), n) == i
        assert s.lookup(np.array([11, 12]), np.array([100, 100])).hit.tolist() == mine.tolist()
    with pytest.raises(ConfigError):
        EmbeddingStore.open(root, "fm", fallback="guess")
    # metrics
    reg = zeros.metrics.registry
    assert reg.get_sample_value("solaris_lookups_total", {"model": "fm"}) == 2
    assert reg.get_sample_value("solaris_lookup_pairs_total", {"model": "fm", "result": "hit"}) == 6
    assert reg.get_sample_value("solaris_lookup_pairs_total", {"model": "fm", "result": "miss"}) == 3
    assert reg.get_sample_value("solaris_lookup_fallbacks_total", {"model": "fm", "policy": "zeros"}) == 3
    assert reg.get_sample_value("solaris_lookup_latency_seconds_count", {"model": "fm"}) == 2


def test_metrics_series_age_info_and_unregister(tmp_path):
    from prometheus_client import CollectorRegistry

    root = tmp_path / "snap"
    publish(make_emb(tmp_path / "e", 3), root, "fm")
    reg = CollectorRegistry()
    store = EmbeddingStore.open(root, "fm", registry=reg, max_age="1h")
    store.lookup(np.array([11, 11], np.int64), np.array([100, 999], np.int64))
    assert reg.get_sample_value("solaris_lookup_pairs_total", {"model": "fm", "result": "stale"}) == 1
    assert reg.get_sample_value("solaris_lookup_pairs_total", {"model": "fm", "result": "hit"}) == 0
    assert reg.get_sample_value("solaris_snapshot_age_seconds", {"model": "fm"}) > 3600
    assert reg.get_sample_value("solaris_snapshot_info", {"model": "fm", "snapshot_id": store.snapshot_id}) == 1
    # the one lookup landed in exactly one latency bucket: the +Inf bucket equals the count
    assert reg.get_sample_value("solaris_lookup_latency_seconds_bucket", {"model": "fm", "le": "+Inf"}) == 1
    store.close()
    assert reg.get_sample_value("solaris_lookups_total", {"model": "fm"}) is None  # unregistered


def test_multi_file_load_matches_pyarrow_and_checks_row_counts(tmp_path):
    import pyarrow.parquet as pq

    from solaris_batch.serving.store import load_snapshot
    from solaris_batch.snapshots.shards import decode_embeddings

    root = tmp_path / "snap"
    rng = np.random.default_rng(0)
    users = np.arange(40, dtype=np.int64) * 3 + 1
    u, a = np.repeat(users, 7), np.tile(np.arange(7, dtype=np.int64) * 5, len(users))
    e = rng.standard_normal((len(u), DIM)).astype(np.float16)
    meta = {"checkpoint_version": "ck", "plan_fingerprint": "fp", "plan_at": "2026-11-20T05:00:00+00:00",
            "plan_pairs": str(len(u)), "plan_shards": "0,1,2,3,4"}
    for f, idx in enumerate(np.array_split(np.arange(len(u)), 5)):  # files of unequal row counts
        write_embedding_shard(tmp_path / "e" / f"part-{f:05d}.parquet", u[idx], a[idx], e[idx], **meta, shard=str(f))
    sid = publish(tmp_path / "e", root, "fm").snapshot_id
    t = pq.read_table(root / "fm" / "snapshots" / sid)  # the independent reader
    ref_u, ref_a = t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()
    ref_e = decode_embeddings(t.column("embedding"), DIM)
    for threads in (1, 3):  # serial, and files finishing out of order
        snap = load_snapshot(LocalRoot(root), "fm", sid, threads=threads)
        assert np.array_equal(snap.keys, np.stack([ref_u, ref_a], 1)) and np.array_equal(snap.emb, ref_e)
    store = EmbeddingStore.open(root, "fm")
    r = store.lookup(ref_u, ref_a)
    assert r.hit.all() and np.array_equal(r.embeddings, ref_e) and len(store) == len(u)
    # a manifest whose per-file row counts were moved between files (same total) is refused: by
    # its digest when edited by hand, and by the files' own row counts when re-signed
    mpath = root / "fm" / "snapshots" / sid / "_manifest.json"
    m = json.loads(mpath.read_text())
    m["files"][0]["rows"] += 1
    m["files"][1]["rows"] -= 1
    mpath.write_text(json.dumps(m))
    with pytest.raises(ValidationFailed, match="digest"):
        EmbeddingStore.open(root, "fm")

    def move_rows(body):
        body["files"][0]["rows"] += 1
        body["files"][1]["rows"] -= 1

    resign(root, "fm", sid, move_rows)
    with pytest.raises(ValidationFailed, match="rows"):
        EmbeddingStore.open(root, "fm")


def test_prefaulted_arrays_are_zeroed_aligned_and_writable():
    from solaris_batch.serving.memory import prefaulted_empty

    big = prefaulted_empty((3_000_000, 2), np.int64)  # 48 MB: the mmap path
    assert big.shape == (3_000_000, 2) and big.dtype == np.int64 and big.ctypes.data % 4096 == 0
    assert not big.any()
    big[-1, -1] = 7
    assert big.sum() == 7
    small = prefaulted_empty((3, 4), np.float16)  # small: plain numpy
    assert small.shape == (3, 4) and small.flags.writeable


def test_hot_reload_readers_never_see_errors_or_mixed_results(tmp_path):
    root = tmp_path / "snap"
    users = tuple(range(1000, 1200))
    publish(make_emb(tmp_path / "e0", 0, hour=0, users=users, ads_per_user=5, files=2), root, "fm")
    store = EmbeddingStore.open(root, "fm")
    rng = np.random.default_rng(0)
    errors, mixed, seen, stop = [], [], set(), threading.Event()

    def reader():
        while not stop.is_set():
            try:
                u = rng.choice(np.array(users), 300)
                r = store.lookup(u, 100 + rng.integers(0, 5, 300))
                version = int(r.snapshot_id.split("-")[0][9:11])  # the hour encodes the version
                if not r.hit.all() or not (r.embeddings == version).all():
                    mixed.append(r.snapshot_id)
                seen.add(r.snapshot_id)
            except Exception as e:  # any error at all fails the test
                errors.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for v in range(1, 21):
        publish(make_emb(tmp_path / f"e{v}", v, hour=v, users=users, ads_per_user=5, files=2), root, "fm")
        assert store.reload()
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and mixed == []
    assert store.snapshot_id.startswith("20261120T2000Z") and len(seen) > 5


def test_tampered_snapshot_is_refused_and_old_keeps_serving(tmp_path):
    root = tmp_path / "snap"
    from prometheus_client import CollectorRegistry

    publish(make_emb(tmp_path / "a", 1, hour=1), root, "fm")
    store = EmbeddingStore.open(root, "fm", registry=CollectorRegistry())
    new = publish(make_emb(tmp_path / "b", 2, hour=2), root, "fm")
    part = root / "fm" / "snapshots" / new.snapshot_id / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    assert store.reload() is False and "checksum" in store.last_reload_error
    assert store.snapshot_id != new.snapshot_id and (store.lookup(np.array([11]), np.array([100])).embeddings == 1).all()
    with pytest.raises(ValidationFailed, match="checksum"):
        EmbeddingStore.open(root, "fm")
    assert store.metrics.registry.get_sample_value(
        "solaris_reloads_total", {"model": "fm", "result": "refused", "reason": "ValidationFailed"}) == 1


def test_path_traversal_is_refused(tmp_path):
    root = tmp_path / "snap"
    r = publish(make_emb(tmp_path / "a", 1), root, "fm")
    with pytest.raises(ConfigError):
        publish(tmp_path / "a", root, "../evil")
    with pytest.raises(ConfigError):
        read_manifest(root, "fm", "../../etc")
    for pointer in ("../../outside\n", json.dumps({"snapshot_id": "../../outside", "manifest_sha256": "0" * 64,
                                                   "generation": 1})):
        (root / "fm" / "CURRENT").write_text(pointer)
        with pytest.raises(ValidationFailed):
            EmbeddingStore.open(root, "fm")
    with pytest.raises(ValidationFailed, match="bare snapshot id"):  # the pre-digest pointer format
        (root / "fm" / "CURRENT").write_text(r.snapshot_id + "\n")
        EmbeddingStore.open(root, "fm")
    resign(root, "fm", r.snapshot_id, lambda m: m["files"][0].update(name="../../../../etc/passwd"))
    with pytest.raises(ValidationFailed, match="unexpected file"):
        EmbeddingStore.open(root, "fm")


def test_rollback_and_gc_semantics(tmp_path):
    root = tmp_path / "snap"
    ids = [publish(make_emb(tmp_path / f"e{h}", h, hour=h), root, "fm").snapshot_id for h in range(1, 6)]
    assert list_snapshots(root, "fm") == ids and read_current(root, "fm") == ids[-1]
    bad, now = rollback(root, "fm")
    assert (bad, now) == (ids[-1], ids[-2]) and read_bad(LocalRoot(root), "fm") == [ids[-1]]
    # the bad one is never promoted again, even when republished
    again = publish(tmp_path / "e5", root, "fm")
    assert again.snapshot_id == ids[-1] and read_current(root, "fm") == ids[-2] and "rolled back" in again.note
    # gc keeps the newest good ones, CURRENT, and CURRENT's rollback target
    deleted = gc(root, "fm", keep=1)
    left = list_snapshots(root, "fm")
    assert ids[-2] in left and ids[-3] in left  # CURRENT and its rollback target
    assert set(deleted) == set(ids) - set(left) and ids[0] in deleted
    # a newer good snapshot moves CURRENT forward again
    assert publish(make_emb(tmp_path / "e7", 7, hour=7), root, "fm").current.startswith("20261120T0700Z")
    with pytest.raises(SnapshotNotFound):
        rollback(tmp_path / "empty", "fm")


def test_object_store_root_without_rename(tmp_path):
    fs = pafs.SubTreeFileSystem(str(tmp_path / "bucket"), pafs.LocalFileSystem())
    (tmp_path / "bucket").mkdir()
    root = FsRoot(fs, "warehouse")
    assert not root.atomic_rename
    r = publish(make_emb(tmp_path / "a", 4), root, "fm")
    assert read_current(root, "fm") == r.snapshot_id
    assert (tmp_path / "bucket" / "warehouse" / "fm" / "snapshots" / r.snapshot_id / "_manifest.json").exists()
    res = EmbeddingStore.open(root, "fm").lookup(np.array([12]), np.array([101]))
    assert res.hit.all() and (res.embeddings == 4).all()


KILL_PUBLISH = r"""
import sys, time
from solaris_batch import storage
from solaris_batch.snapshots.publish import publish

def announce(name):
    orig = getattr(storage.LocalRoot, name)
    def step(self, *a):
        print(name, flush=True)   # the test kills us after the k-th step
        time.sleep(0.2)
        return orig(self, *a)
    setattr(storage.LocalRoot, name, step)

for name in ("put_file", "write_text", "commit_dir"):
    announce(name)
publish(sys.argv[1], sys.argv[2], "fm")
print("done", flush=True)
"""


def _assert_current_valid(root):
    sid = read_current(root, "fm")
    assert sid is not None
    EmbeddingStore.open(root, "fm", verify="full")  # complete and every file matches its sha256
    return sid


def test_kill_9_at_every_publish_step_leaves_a_valid_current(tmp_path):
    root = tmp_path / "snap"
    first = publish(make_emb(tmp_path / "base", 1, hour=1), root, "fm").snapshot_id
    big = make_emb(tmp_path / "big", 2, hour=2, users=tuple(range(300)), ads_per_user=10, files=5)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    steps = 5 + 1 + 1 + 1 + 1  # 5 files, index, manifest, commit, CURRENT
    outcomes = []
    for k in range(1, steps + 1):
        p = subprocess.Popen([sys.executable, "-c", KILL_PUBLISH, str(big), str(root)], env=env,
                             stdout=subprocess.PIPE, text=True)
        for _ in range(k):
            assert p.stdout.readline().strip() in {"put_file", "write_text", "commit_dir"}
        time.sleep(0.1)  # inside step k
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        outcomes.append(_assert_current_valid(root))
        assert read_current(root, "fm") == first  # killed before the pointer write completed
        for leftover in (root / "fm" / "snapshots").iterdir():
            if leftover.name.startswith("2026") and leftover.name != first:
                assert (leftover / "_manifest.json").exists()  # visible folders are always complete
    assert outcomes == [first] * steps
    out = subprocess.run([sys.executable, "-c", KILL_PUBLISH, str(big), str(root)], env=env,
                         capture_output=True, text=True)
    # the run killed before its pointer write had committed the folder: a retry only flips CURRENT
    assert out.stdout.split() == ["write_text", "done"]
    assert _assert_current_valid(root).startswith("20261120T0200Z")
    gc(root, "fm", keep=5)
    assert not [p for p in (root / "fm" / "snapshots").iterdir() if p.name.startswith(".tmp-")]


def test_a_file_truncated_after_it_was_read_cannot_kill_the_reader(tmp_path):
    """Snapshot files are read into memory, not mapped: a mapping of a file truncated in place
    raises SIGBUS on the next access, which no Python code can catch."""
    (tmp_path / "f.bin").write_bytes(b"x" * (1 << 20))
    code = ("import os, sys; from solaris_batch.storage import LocalRoot\n"
            "buf = LocalRoot(sys.argv[1]).read_buffer('f.bin')\n"
            "os.truncate(os.path.join(sys.argv[1], 'f.bin'), 0)\n"
            "print(bytes(buf)[-1:].decode())")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.returncode == 0 and p.stdout.strip() == "x", p.stderr


def test_default_registry_serves_the_store_and_sums_stores_of_one_model(tmp_path):
    """A serving process that scrapes prometheus_client's default registry sees every store."""
    from prometheus_client import REGISTRY, generate_latest

    root = tmp_path / "snap"
    publish(make_emb(tmp_path / "e", 3), root, "fm-default")
    a = EmbeddingStore.open(root, "fm-default")
    b = EmbeddingStore.open(root, "fm-default")
    a.lookup(np.array([11]), np.array([100]))
    b.lookup(np.array([11, 99]), np.array([100, 100]))
    assert REGISTRY.get_sample_value("solaris_lookups_total", {"model": "fm-default"}) == 2
    assert REGISTRY.get_sample_value("solaris_lookup_pairs_total", {"model": "fm-default", "result": "hit"}) == 2
    text = generate_latest(REGISTRY).decode()
    assert text.count('solaris_lookups_total{model="fm-default"}') == 1  # summed: no duplicate series
    b.close()
    assert REGISTRY.get_sample_value("solaris_lookups_total", {"model": "fm-default"}) == 1
    a.close()
    assert REGISTRY.get_sample_value("solaris_lookups_total", {"model": "fm-default"}) is None
