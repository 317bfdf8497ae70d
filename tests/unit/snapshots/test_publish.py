"""Publish, rollback and gc under forced interleavings, the publish gates, and the hot-reload
watcher against a run of broken snapshots. CURRENT must always name a complete, verifiable one."""

import json
import threading
import time

import numpy as np
import pytest

from solaris_batch import storage
from solaris_batch.errors import ValidationFailed
from solaris_batch.serving import EmbeddingStore
from solaris_batch.snapshots.publish import (
    gc,
    list_snapshots,
    publish,
    read_current,
    read_pointer,
    rollback,
)
from solaris_batch.snapshots.shards import write_embedding_shard
from tests.snapshot_fixtures import make_emb, resign


def _valid_current(root):
    sid = read_current(root, "fm")
    EmbeddingStore.open(root, "fm", verify="full")  # complete, and every file matches its sha256
    return sid


class Pause:
    """Patch one LocalRoot method so that the thread running publish stops inside it (after the
    ``after``-th call has run) until released; other threads pass through."""

    def __init__(self, monkeypatch, name, after=1):
        self.entered, self.release, self.calls, self.owner = threading.Event(), threading.Event(), 0, None
        orig = getattr(storage.LocalRoot, name)

        def hooked(root, *a):
            out = orig(root, *a)
            if threading.current_thread() is self.owner:
                self.calls += 1
                if self.calls == after:
                    self.entered.set()
                    assert self.release.wait(10)
            return out

        monkeypatch.setattr(storage.LocalRoot, name, hooked)

    def run(self, fn, *a, **kw):
        out = {}

        def target():
            try:
                out["result"] = fn(*a, **kw)
            except Exception as e:  # surfaced by the test's asserts
                out["error"] = e

        t = threading.Thread(target=target)
        self.owner = t
        t.start()
        assert self.entered.wait(10)
        return t, out


def _other(fn, *a, **kw):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("result", fn(*a, **kw)))
    t.start()
    return t, out


def test_gc_during_publish_waits_and_never_takes_the_staged_folder(tmp_path, monkeypatch):
    root = tmp_path / "snap"
    first = publish(make_emb(tmp_path / "a", 1, hour=1), root, "fm").snapshot_id
    pause = Pause(monkeypatch, "put_file")  # the publisher stops after copying its first file
    pub, pub_out = pause.run(publish, make_emb(tmp_path / "b", 2, hour=2, files=3), root, "fm")
    staged = [p for p in (root / "fm" / "snapshots").iterdir() if p.name.startswith(".tmp-")]
    assert len(staged) == 1
    g, g_out = _other(gc, root, "fm", 1)
    time.sleep(0.3)
    assert g.is_alive() and staged[0].exists()  # gc waits for the writer lock
    pause.release.set()
    pub.join(10)
    g.join(10)
    assert "error" not in pub_out and pub_out["result"].current.startswith("20261120T0200Z")
    assert _valid_current(root) == pub_out["result"].snapshot_id
    assert g_out["result"] == [] and first in list_snapshots(root, "fm")  # the rollback target stays
    assert not [p for p in (root / "fm" / "snapshots").iterdir() if p.name.startswith(".tmp-")]


def test_two_publishes_of_the_same_content_never_remove_the_live_folder(tmp_path, monkeypatch):
    root = tmp_path / "snap"
    emb = make_emb(tmp_path / "a", 1, hour=1, files=2)
    pause = Pause(monkeypatch, "commit_dir")  # the first publisher stops after its rename, before CURRENT
    first, first_out = pause.run(publish, emb, root, "fm")
    second, second_out = _other(publish, emb, root, "fm")
    time.sleep(0.3)
    assert second.is_alive()
    pause.release.set()
    first.join(10)
    second.join(10)
    a, b = first_out["result"], second_out["result"]
    assert a.created and not b.created and a.snapshot_id == b.snapshot_id == _valid_current(root)
    assert read_pointer(root, "fm").generation == 1  # one flip: the second publish was a no-op


def test_rollback_during_publish_runs_after_it(tmp_path, monkeypatch):
    root = tmp_path / "snap"
    ids = [publish(make_emb(tmp_path / f"e{h}", h, hour=h), root, "fm").snapshot_id for h in (1, 2)]
    pause = Pause(monkeypatch, "put_file")
    pub, pub_out = pause.run(publish, make_emb(tmp_path / "e3", 3, hour=3, files=2), root, "fm")
    rb, rb_out = _other(rollback, root, "fm")
    time.sleep(0.3)
    assert rb.is_alive() and read_current(root, "fm") == ids[1]
    pause.release.set()
    pub.join(10)
    rb.join(10)
    new = pub_out["result"].snapshot_id
    assert rb_out["result"] == (new, ids[1])  # the rollback saw the publish that finished first
    assert _valid_current(root) == ids[1]


def test_publish_gates(tmp_path):
    root = tmp_path / "snap"
    meta = {"checkpoint_version": "ck", "plan_fingerprint": "fp", "plan_at": "2026-11-20T05:00:00+00:00",
            "plan_pairs": "2", "plan_shards": "0", "shard": "0"}
    u, a = np.array([1, 2]), np.array([3, 4])
    copy = tmp_path / "copy"  # a name the loader would refuse after the flip
    write_embedding_shard(copy / "part-00000.parquet", u, a, np.ones((2, 4)), **meta)
    (copy / "part-00000 (copy).parquet").write_bytes((copy / "part-00000.parquet").read_bytes())
    with pytest.raises(ValidationFailed, match="part-NNNNN.parquet"):
        publish(copy, root, "fm")
    noplan = tmp_path / "noplan"  # no plan metadata: refused unless said explicitly
    write_embedding_shard(noplan / "part-00000.parquet", u, a, np.ones((2, 4)), checkpoint_version="ck")
    with pytest.raises(ValidationFailed, match="--no-plan"):
        publish(noplan, root, "fm")
    assert publish(noplan, root, "fm", no_plan=True).rows == 2
    empty = tmp_path / "empty"
    write_embedding_shard(empty / "part-00000.parquet", u[:0], a[:0], np.ones((0, 4)), **{**meta, "plan_pairs": "0"})
    with pytest.raises(ValidationFailed, match="no rows"):
        publish(empty, root, "fm")
    badmeta = tmp_path / "badmeta"
    write_embedding_shard(badmeta / "part-00000.parquet", u, a, np.ones((2, 4)), **{**meta, "plan_pairs": "two"})
    with pytest.raises(ValidationFailed, match="plan_pairs='two' is not an integer"):
        publish(badmeta, root, "fm")
    nockpt = tmp_path / "nockpt"
    write_embedding_shard(nockpt / "part-00000.parquet", u, a, np.ones((2, 4)),
                          **{k: v for k, v in meta.items() if k != "checkpoint_version"})
    with pytest.raises(ValidationFailed, match=r"no solaris.checkpoint_version .*checkpoint_version="):
        publish(nockpt, root, "fm")
    nulls = tmp_path / "nulls"  # null embeddings would be served as hits of zeros
    nulls.mkdir()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from solaris_batch.schemas import embedding_shard_schema

    t = pa.table([pa.array([1, 2], pa.int64()), pa.array([3, 4], pa.int64()),
                  pa.array([b"\0" * 8, None], pa.binary(8)), pa.array([0.0, 0.0], pa.float32())],
                 schema=pa.schema([f.with_nullable(True) for f in embedding_shard_schema(4)]).with_metadata(
                     {f"solaris.{k}": v for k, v in {**meta, "dim": "4"}.items()}))
    pq.write_table(t, nulls / "part-00000.parquet")
    with pytest.raises(ValidationFailed, match="null"):
        publish(nulls, root, "fm")
    wide = make_emb(tmp_path / "wide", 9, hour=9, dim=8)  # dim 8 over CURRENT's dim 4
    with pytest.raises(ValidationFailed, match="--allow-schema-change"):
        publish(wide, root, "fm")
    assert publish(wide, root, "fm", allow_schema_change=True).current.startswith("20261120T0900Z")


def _bad_snapshots(tmp_path, root):
    """Ten ways a new CURRENT can be broken. Each breaker publishes into a side root and breaks the
    snapshot there; ``promote`` then copies it into ``root`` and writes CURRENT last, as a publisher
    would, so the watcher never sees the snapshot before it is broken."""
    import os
    import shutil

    side = tmp_path / "side"

    def published(v, **kw):
        publish(make_emb(tmp_path / f"b{v}", v, hour=v, **kw), side, "fm", allow_schema_change=True)
        return read_current(side, "fm"), side / "fm" / "snapshots" / read_current(side, "fm")

    def promote():
        for d in (side / "fm" / "snapshots").iterdir():
            if not (root / "fm" / "snapshots" / d.name).exists():
                shutil.copytree(d, root / "fm" / "snapshots" / d.name)
        (root / "fm" / "CURRENT.tmp").write_bytes((side / "fm" / "CURRENT").read_bytes())
        os.replace(root / "fm" / "CURRENT.tmp", root / "fm" / "CURRENT")

    def flip_part(v):
        _, d = published(v)
        p = d / "part-00000.parquet"
        p.write_bytes(p.read_bytes()[:-9] + b"corrupted")

    def drop_index(v):
        _, d = published(v)
        (d / "_index.bin").unlink()

    def edit_manifest(v):
        _, d = published(v)
        m = json.loads((d / "_manifest.json").read_text())
        m["index"]["mask"] = 2**64 - 1
        (d / "_manifest.json").write_text(json.dumps(m))

    def resigned_dim(v):
        sid, _ = published(v)
        resign(side, "fm", sid, lambda m: m.update(dim=2))

    def manifest_not_json(v):
        _, d = published(v)
        (d / "_manifest.json").write_bytes(b"{\"format\": 2, \"rows\": ")

    def current_binary(v):
        published(v)
        (side / "fm" / "CURRENT").write_bytes(b"\x00\xff\xfe" * 10)

    def current_bare_id(v):
        sid, _ = published(v)
        (side / "fm" / "CURRENT").write_text(sid + "\n")

    def current_missing_snapshot(v):
        published(v)
        p = json.loads((side / "fm" / "CURRENT").read_text())
        (side / "fm" / "CURRENT").write_text(json.dumps({**p, "snapshot_id": "20261120T0000Z-00000000"}))

    def dim_change(v):
        published(v, dim=8)  # a real, valid snapshot of another width: this store serves dim 4

    def missing_part(v):
        _, d = published(v, files=2)
        (d / "part-00001.parquet").unlink()

    def chain(breaker):
        def run(v):
            breaker(v)
            promote()
        run.__name__ = breaker.__name__
        return run

    return [chain(b) for b in (flip_part, drop_index, edit_manifest, resigned_dim, manifest_not_json, current_binary,
                               current_bare_id, current_missing_snapshot, dim_change, missing_part)]


def test_watcher_survives_ten_bad_snapshots_and_ends_on_the_good_one(tmp_path):
    from prometheus_client import CollectorRegistry

    root = tmp_path / "snap"
    publish(make_emb(tmp_path / "a", 1, hour=1), root, "fm")
    reg = CollectorRegistry()
    store = EmbeddingStore.open(root, "fm", registry=reg)
    store.start_watcher(interval_s=0.02)
    errors, wrong, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                r = store.lookup(np.array([11, 12, 99]), np.array([100, 101, 100]))
                v = 1 if r.snapshot_id.startswith("20261120T0100Z") else 20
                if r.hit.tolist() != [True, True, False] or not (r.embeddings[:2] == v).all():
                    wrong.append(r.snapshot_id)
            except Exception as e:  # any error at all fails the test
                errors.append(repr(e))
            time.sleep(0.001)  # two readers, not two spinning threads that starve the publisher of the GIL

    def refusals():
        return sum(s.value for m in reg.collect() if m.name == "solaris_reloads" for s in m.samples
                   if s.labels.get("result") == "refused" and s.name.endswith("_total"))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i, breaker in enumerate(_bad_snapshots(tmp_path, root), start=1):
            breaker(i + 1)
            deadline = time.time() + 20
            while refusals() < i and time.time() < deadline:
                time.sleep(0.01)
            assert refusals() == i, f"{breaker.__name__} was not refused"
            assert store.snapshot_id.startswith("20261120T0100Z")
        publish(make_emb(tmp_path / "good", 20, hour=20), root, "fm")
        deadline = time.time() + 20
        while not store.snapshot_id.startswith("20261120T2000Z") and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # a few more watcher ticks: nothing is refused again
        refused = refusals()
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
    assert store.snapshot_id.startswith("20261120T2000Z")
    assert refused == 10 and errors == [] and wrong == []
