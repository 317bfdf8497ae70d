import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from solaris_batch.errors import ValidationFailed
from solaris_batch.inference.batching import iter_user_chunks
from solaris_batch.inference.runner import infer_plan
from solaris_batch.model.checkpoint import save_checkpoint
from solaris_batch.model.fm import FMConfig, SolarisFM
from solaris_batch.snapshots.shards import list_shards
from solaris_batch.speculate.plan import shard_files
from tests.conftest import tiny_fm_config
from tests.unit.plan_fixture import make_plan


def _write(path, table, row_group):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group)


def test_iter_user_chunks_keeps_users_whole_across_record_batches(tmp_path):
    pu = np.array([1, 1, 1, 2, 3, 3, 3, 3, 5, 8, 8], dtype=np.int64)
    pa_ = np.arange(len(pu), dtype=np.int64) + 100
    _write(tmp_path / "p" / "a.parquet", pa.table({"user_id": pu, "ad_id": pa_}), 2)
    users = pa.table({"user_id": np.array([1, 2, 3, 4, 8], dtype=np.int64),
                      "seq_ad_id": [[10], [20, 21], [], [40], [80]], "seq_clicked": [[True], [False, True], [], [False], [True]]})
    _write(tmp_path / "u" / "a.parquet", users, 2)
    chunks = list(iter_user_chunks([str(tmp_path / "p" / "a.parquet")], [str(tmp_path / "u" / "a.parquet")], rows=3))
    assert np.array_equal(np.concatenate([c[0] for c in chunks]), pu)
    assert np.array_equal(np.concatenate([c[1] for c in chunks]), pa_)
    seen = set()
    for cu, _, ut in chunks:
        uniq = set(np.unique(cu).tolist())
        assert not uniq & seen  # no user split across chunks
        seen |= uniq
        assert ut.column("user_id").to_pylist() == sorted(uniq & {1, 2, 3, 4, 8})  # user 5 has no sequence
        for r in ut.to_pylist():
            assert r["seq_ad_id"] == users.to_pylist()[[1, 2, 3, 4, 8].index(r["user_id"])]["seq_ad_id"]


def test_iter_user_chunks_refuses_unsorted_shard(tmp_path):
    _write(tmp_path / "p.parquet", pa.table({"user_id": np.array([2, 1], np.int64), "ad_id": np.array([1, 1], np.int64)}), 2)
    with pytest.raises(ValidationFailed, match="not sorted"):
        list(iter_user_chunks([str(tmp_path / "p.parquet")], [], rows=2))


KILL_SCRIPT = r"""
import sys, time, torch
from solaris_batch.inference import runner
from tests.conftest import tiny_fm_config
orig = runner.run_model
def slow(*a, **k):
    time.sleep(0.3)   # give the test time to kill us mid-shard, after a first batch was written
    return orig(*a, **k)
runner.run_model = slow
runner.infer_plan(sys.argv[1], sys.argv[2], sys.argv[3], shard=int(sys.argv[4]), device="cpu",
                  token_budget=12, progress=False)
"""


def test_killed_run_leaves_no_partial_shard_and_resumes_identically(tmp_path):
    cfg = tiny_fm_config(seq_len=4)
    torch.manual_seed(1)
    save_checkpoint(SolarisFM(cfg), tmp_path / "ck")
    info = make_plan(tmp_path / "plan", n_users=40, max_ads=6, shards=1)
    ref = tmp_path / "ref"
    infer_plan(tmp_path / "plan", tmp_path / "ck", ref, device="cpu", progress=False)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "plan"), str(tmp_path / "ck"),
                             str(out), "0"], env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".part-00000.parquet.tmp-*")):
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(out.glob(".part-00000.parquet.tmp-*")), "the run was killed before it started writing"
    assert list_shards(out) == [], "a killed run must not leave a visible shard"
    rs = infer_plan(tmp_path / "plan", tmp_path / "ck", out, device="cpu", progress=False)
    assert rs[0].pairs == info.pairs and not rs[0].skipped
    assert (out / "part-00000.parquet").read_bytes() == (ref / "part-00000.parquet").read_bytes()
    assert not list(out.glob(".*")), "stale temp files are cleaned on resume"
    assert shard_files(tmp_path / "plan", "pairs", 0)


def test_custom_fm_by_dotted_path_runs_end_to_end(tmp_path):
    from solaris_batch.model.checkpoint import load_checkpoint
    from tests.unit.custom_fm import MeanPoolFM

    cfg = replace(FMConfig(), ad_buckets=64, seq_len=4, emb_dim=6)
    save_checkpoint(MeanPoolFM(cfg), tmp_path / "ck", model_class="tests.unit.custom_fm:MeanPoolFM")
    assert isinstance(load_checkpoint(tmp_path / "ck").model, MeanPoolFM)
    info = make_plan(tmp_path / "plan", shards=1)
    rs = infer_plan(tmp_path / "plan", tmp_path / "ck", tmp_path / "emb", device="cpu", progress=False)
    assert rs[0].pairs == info.pairs
    assert pq.read_schema(tmp_path / "emb" / "part-00000.parquet").field("embedding").type.byte_width == 12
