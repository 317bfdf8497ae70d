import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from solaris_batch.errors import InputNotFound, SnapshotNotFound, ValidationFailed
from solaris_batch.inference.batching import user_batches
from solaris_batch.inference.runner import infer_plan
from solaris_batch.model.checkpoint import load_checkpoint, save_checkpoint
from solaris_batch.model.features import AdFeatures, encode_candidates, encode_tokens, pack_lists
from solaris_batch.model.fm import SolarisFM
from solaris_batch.serving import EmbeddingStore
from solaris_batch.snapshots.publish import publish, read_current
from solaris_batch.snapshots.shards import decode_embeddings, list_shards, write_embedding_shard
from solaris_batch.speculate.plan import read_pairs, read_table
from tests.conftest import tiny_fm_config
from tests.unit.plan_fixture import make_plan

TINY = tiny_fm_config()


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(SolarisFM(TINY), tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_user_batches_hand_computed():
    users = np.array([1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 4])
    # budget 4: [1,1,1] (3) then +2 would be 4 -> [2] joins: 1,1,1,2 = 4 pairs; [3,3] (2); [4 x5] alone
    assert user_batches(users, 4) == [(0, 4, 0, 2), (4, 6, 2, 3), (6, 11, 3, 4)]
    assert user_batches(np.array([], dtype=np.int64), 4) == []
    # token budget: each user also costs seq_len=2 -> costs 5, 3, 4, 7
    assert user_batches(users, 8, user_cost=2) == [(0, 4, 0, 2), (4, 6, 2, 3), (6, 11, 3, 4)]
    assert user_batches(users, 9, user_cost=2) == [(0, 4, 0, 2), (4, 6, 2, 3), (6, 11, 3, 4)]
    assert user_batches(users, 12, user_cost=2) == [(0, 6, 0, 3), (6, 11, 3, 4)]


def _reference_embeddings(plan, ckpt, shard):
    """Per-pair forward of the model, built independently of the runner's batching."""
    lm = load_checkpoint(ckpt)
    pairs = read_pairs(plan, shard)
    ut = read_table(plan, "users").to_pylist()
    users = {r["user_id"]: r for r in ut}
    ads = AdFeatures.from_table(read_table(plan, "ads"))
    out = []
    for u, a in zip(pairs.column("user_id").to_pylist(), pairs.column("ad_id").to_pylist(), strict=True):
        import pyarrow as pa

        row = users[u]
        sa, sc, sv = pack_lists(pa.array([row["seq_ad_id"]]), pa.array([row["seq_clicked"]]), TINY.seq_len)
        tok = encode_tokens(sa, sc, sv, ads, TINY.ad_buckets, TINY.cat_buckets)
        cand = encode_candidates(np.array([a]), ads, TINY.ad_buckets, TINY.cat_buckets)
        with torch.inference_mode():
            e, _ = lm.model(*(torch.as_tensor(tok[k]) for k in ("ad", "cat", "event")),
                            torch.as_tensor(cand["ad"]), torch.as_tensor(cand["cat"]))
        out.append(e[0].numpy())
    return np.array(out)


def test_infer_matches_per_pair_reference_and_resumes(tmp_path, ckpt):
    plan = tmp_path / "plan"
    info = make_plan(plan)
    emb = tmp_path / "emb"
    rs = infer_plan(plan, ckpt, emb, device="cpu", token_budget=20, progress=False)
    assert sum(r.pairs for r in rs) == info.pairs and not any(r.skipped for r in rs)
    for s in info.shards:
        t = pq.read_table(emb / f"part-{s:05d}.parquet")
        pairs = read_pairs(plan, s)
        assert t.column("user_id").to_pylist() == pairs.column("user_id").to_pylist()
        got = decode_embeddings(t.column("embedding"), TINY.emb_dim).astype(np.float32)
        ref = _reference_embeddings(plan, ckpt, s)
        assert np.abs(got - ref).max() < 2e-3  # float16 storage
    first = {p.name: p.read_bytes() for p in list_shards(emb)}
    again = infer_plan(plan, ckpt, emb, device="cpu", token_budget=20, progress=False)
    assert all(r.skipped for r in again)
    # A lost shard is recomputed bit-identically; no temp files remain.
    (emb / "part-00000.parquet").unlink()
    infer_plan(plan, ckpt, emb, device="cpu", token_budget=20, progress=False)
    assert {p.name: p.read_bytes() for p in list_shards(emb)} == first
    assert not [p for p in emb.iterdir() if p.name.startswith(".")]


def test_publish_lookup_and_pointer_rules(tmp_path, ckpt):
    plan = tmp_path / "plan"
    info = make_plan(plan)
    emb = tmp_path / "emb"
    infer_plan(plan, ckpt, emb, device="cpu", progress=False)
    root = tmp_path / "snap"
    r = publish(emb, root, "fm")
    assert r.created and r.current == r.snapshot_id and r.snapshot_id.startswith("20261120T0500Z-")
    assert read_current(root, "fm") == r.snapshot_id
    manifest = json.loads((root / "fm" / "snapshots" / r.snapshot_id / "_manifest.json").read_text())
    assert manifest["rows"] == info.pairs and manifest["dim"] == TINY.emb_dim
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    # republishing the same embeddings is a no-op
    again = publish(emb, root, "fm")
    assert not again.created and again.snapshot_id == r.snapshot_id

    store = EmbeddingStore.open(root, "fm")
    pairs = read_pairs(plan)
    u, a = pairs.column("user_id").to_numpy(), pairs.column("ad_id").to_numpy()
    reference = {}
    for p in list_shards(emb):
        t = pq.read_table(p)
        e = decode_embeddings(t.column("embedding"), TINY.emb_dim).astype(np.float32)
        for i, (uu, aa) in enumerate(zip(t.column("user_id").to_pylist(), t.column("ad_id").to_pylist(), strict=True)):
            reference[(uu, aa)] = e[i]
    qu = np.concatenate([u, [1, u[0]]])
    qa = np.concatenate([a, [a[0], 99999]])
    res = store.lookup(qu, qa)
    assert res.snapshot_id == r.snapshot_id
    assert res.hit.tolist() == [True] * len(u) + [False, False]
    for i in range(len(u)):
        assert np.array_equal(res.embeddings[i], reference[(u[i], a[i])])
    assert not res.embeddings[-2:].any()

    # an older window is kept as a version but does not move CURRENT back
    old_plan = tmp_path / "old"
    make_plan(old_plan, seed=1, at="2026-11-20T03:00:00+00:00")
    infer_plan(old_plan, ckpt, tmp_path / "old_emb", device="cpu", progress=False)
    older = publish(tmp_path / "old_emb", root, "fm")
    assert older.created and older.current == r.snapshot_id == read_current(root, "fm")


def test_publish_gates_leave_current_untouched(tmp_path, ckpt):
    plan = tmp_path / "plan"
    make_plan(plan)
    emb = tmp_path / "emb"
    infer_plan(plan, ckpt, emb, device="cpu", progress=False)
    root = tmp_path / "snap"
    good = publish(emb, root, "fm").snapshot_id
    meta = {"checkpoint_version": "v", "plan_fingerprint": "fpX", "plan_at": "2026-11-20T06:00:00+00:00",
            "plan_pairs": "2", "plan_shards": "0", "shard": "0"}
    bad = tmp_path / "bad"
    write_embedding_shard(bad / "part-00000.parquet", np.array([1, 2]), np.array([3, 4]),
                          np.array([[0.0, np.nan], [1.0, 2.0]]), **meta)
    with pytest.raises(ValidationFailed, match="NaN"):
        publish(bad, root, "fm")
    short = tmp_path / "short"
    write_embedding_shard(short / "part-00000.parquet", np.array([1]), np.array([3]), np.ones((1, 2)), **meta)
    with pytest.raises(ValidationFailed, match="plan has 2 pairs"):
        publish(short, root, "fm")
    missing = tmp_path / "missing"
    write_embedding_shard(missing / "part-00000.parquet", np.array([1, 2]), np.array([3, 4]), np.ones((2, 2)),
                          **{**meta, "plan_shards": "0,1"})
    with pytest.raises(ValidationFailed, match=r"\[1\].*missing"):
        publish(missing, root, "fm")
    mixed = tmp_path / "mixed"
    write_embedding_shard(mixed / "part-00000.parquet", np.array([1]), np.array([3]), np.ones((1, 2)), **meta)
    write_embedding_shard(mixed / "part-00001.parquet", np.array([2]), np.array([3]), np.ones((1, 2)),
                          **{**meta, "checkpoint_version": "w", "shard": "1"})
    with pytest.raises(ValidationFailed, match="checkpoint_version"):
        publish(mixed, root, "fm")
    dup = tmp_path / "dup"  # the same pair twice (in two shards): a lookup could serve only one
    write_embedding_shard(dup / "part-00000.parquet", np.array([1]), np.array([3]), np.ones((1, 2)),
                          **{**meta, "plan_shards": "0,1"})
    write_embedding_shard(dup / "part-00001.parquet", np.array([1]), np.array([3]), np.zeros((1, 2)),
                          **{**meta, "plan_shards": "0,1", "shard": "1"})
    with pytest.raises(ValidationFailed, match=r"1 \(user_id, ad_id\) pairs appear more than once, e.g. \(1, 3\)"):
        publish(dup, root, "fm")
    with pytest.raises(InputNotFound):
        publish(tmp_path / "nothing", root, "fm")
    assert read_current(root, "fm") == good
    assert sorted(p.name for p in (root / "fm" / "snapshots").iterdir()) == [good]


def test_store_errors(tmp_path):
    with pytest.raises(SnapshotNotFound, match="SOLARIS_MODEL_NAME"):
        EmbeddingStore.open(tmp_path, "nope")
