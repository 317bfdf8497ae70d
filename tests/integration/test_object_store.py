"""Every stage that reads or writes a root works with that root on an S3 API server on loopback
(moto's server, started here): ingest writes the log to s3://; the DAG's infer and validate steps
read the plan and the checkpoint from s3:// and write the embedding shards there; publish writes
the snapshot to s3://; lookup, replay, verify and the monitor read from s3://; FM registration
trains from the s3:// log and writes its checkpoint there.
The Spark jobs read the same URIs through Hadoop's s3a:// (storage.uri.to_hadoop) when a Hadoop S3
connector is installed; their tests run on local roots."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from solaris_batch.cli import main
from tests.conftest import tiny_fm_config
from tests.unit.plan_fixture import make_plan

pytestmark = pytest.mark.integration
BUCKET = "solaris"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A real S3 API (moto_server) on 127.0.0.1 with one bucket; pyarrow and boto3 find it through
    the standard AWS_* environment, as they would find a real endpoint."""
    port = _free_port()
    log = open(tmp_path / "moto.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError((tmp_path / "moto.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    for k, v in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
                 "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(k, v)
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield f"s3://{BUCKET}"
    proc.terminate()
    proc.wait(10)
    log.close()


def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def test_ingest_infer_publish_lookup_replay_and_monitor_on_s3(s3, tmp_path, capsys, monkeypatch):
    import torch

    from solaris_batch.config import load_settings
    from solaris_batch.inference.runner import infer_plan
    from solaris_batch.model.checkpoint import save_checkpoint
    from solaris_batch.model.fm import SolarisFM
    from solaris_batch.speculate.plan import read_pairs
    from solaris_batch.storage import Root
    from solaris_batch.tasks import infer_interval, monitor_interval, plan_shards, validate_interval
    from solaris_batch.timeutil import parse_time

    # a plan for the 05:00 horizon, and a MovieLens file whose 05:00 hour holds every planned pair
    # once plus 10 unplanned rows (04:00 holds history): the realized hit rate is known in advance
    plan = tmp_path / "plan"
    info = make_plan(plan, at="2026-11-20T05:00:00+00:00")
    pairs = read_pairs(plan)
    u, a = pairs.column("user_id").to_numpy(), pairs.column("ad_id").to_numpy()
    t05, t04 = 1_795_150_800, 1_795_147_200  # 2026-11-20T05:00Z, 04:00Z
    lines = [f"{x}\t{y}\t5\t{t05 + 60 + i}" for i, (x, y) in enumerate(zip(u, a, strict=True))]
    lines += [f"{u[0]}\t{9000 + i}\t3\t{t05 + 120 + i}" for i in range(10)]
    lines += [f"{x}\t{y}\t4\t{t04 + 5}" for x, y in zip(u[:5], a[:5], strict=True)]
    (tmp_path / "u.data").write_text("\n".join(lines) + "\n")
    out = _cli(capsys, "ingest", "movielens", "--src", tmp_path / "u.data", "--out", f"{s3}/logs")
    assert f"log root {s3}/logs" in out
    fs, _ = pafs.FileSystem.from_uri(f"{s3}/logs")
    listed = {i.path for i in fs.get_file_info(pafs.FileSelector(f"{BUCKET}/logs", recursive=True))}
    assert f"{BUCKET}/logs/requests/dt=2026-11-20/hour=05/_SUCCESS" in listed

    # the plan and the checkpoint live on the object store too: work and model roots are URIs
    torch.manual_seed(0)
    ckpt = tmp_path / "ckpt"
    save_checkpoint(SolarisFM(tiny_fm_config()), ckpt)
    Root.open(f"{s3}/models/fm").put_tree(ckpt, last=("config.json",))
    Root.open(f"{s3}/work/plans/20261120T0500Z").put_tree(plan, last=("_plan.json",))
    for k, v in {"SOLARIS_WORK": f"{s3}/work", "SOLARIS_MODEL": f"{s3}/models/fm"}.items():
        monkeypatch.setenv(k, v)
    st, at = load_settings(), parse_time("2026-11-20T05:00")
    emb = f"{s3}/work/embeddings/20261120T0500Z"
    assert plan_shards(st, at) == info.shards
    first = [infer_interval(st, at, s) for s in info.shards]
    assert [r["skipped"] for r in first] == [False] * len(first) and sum(r["pairs"] for r in first) == info.pairs
    assert sorted(Root.open(emb).listdir("")) == [f"part-{s:05d}.parquet" for s in info.shards]
    # a rerun of a shard task finds its shard on the store and skips it
    assert infer_interval(st, at, info.shards[0])["skipped"]
    assert validate_interval(st, at)["rows"] == info.pairs
    # the same shards as a local inference of the same plan and checkpoint
    infer_plan(plan, ckpt, tmp_path / "emb", device="cpu", progress=False)
    capsys.readouterr()  # the infer summary lines
    remote = pq.read_table(f"{BUCKET}/work/embeddings/20261120T0500Z", filesystem=fs).sort_by("user_id")
    local = pq.read_table(tmp_path / "emb").sort_by("user_id")
    assert remote.column("embedding").equals(local.column("embedding"))
    sid = _cli(capsys, "publish", "--embeddings", emb, "--root", f"{s3}/snapshots",
               "--plan", f"{s3}/work/plans/20261120T0500Z").strip()
    assert sid.startswith("20261120T0500Z-")
    assert _cli(capsys, "snapshots", "verify", "--root", f"{s3}/snapshots").startswith(f"{sid}: {info.pairs:,} rows")

    hit = json.loads(_cli(capsys, "lookup", "--root", f"{s3}/snapshots", "--user", u[0], "--ads",
                          f"{a[0]},999999").splitlines()[0])
    assert hit["hit"] and len(hit["embedding"]) == tiny_fm_config().emb_dim
    rep = json.loads(_cli(capsys, "replay", "--logs", f"{s3}/logs", "--at", "2026-11-20T05:00", "--horizon", "1h",
                          "--root", f"{s3}/snapshots"))
    assert rep["snapshot_id"] == sid and rep["horizon_rows"] == len(u) + 10
    assert rep["request_hit_rate"] == pytest.approx(len(u) / (len(u) + 10))

    for k, v in {"SOLARIS_LOGS": f"{s3}/logs", "SOLARIS_SNAPSHOTS": f"{s3}/snapshots",
                 "SOLARIS_METRICS": f"{s3}/metrics"}.items():
        monkeypatch.setenv(k, v)
    rec = monitor_interval(load_settings(), None, threshold=0.5)
    assert rec["snapshot_id"] == sid and rec["request_hit_rate"] == pytest.approx(rep["request_hit_rate"])
    t = pq.read_table(f"{BUCKET}/metrics/monitor/snapshot_id={sid}.parquet", filesystem=fs)
    assert t.column("request_hit_rate").to_pylist() == [rec["request_hit_rate"]]
    assert fs.get_file_info(f"{BUCKET}/metrics/monitor/hit_rate.png").size > 1000
    # the printed settings keep the scheme (a Path would print 's3:/solaris/logs')
    assert json.loads(_cli(capsys, "config"))["logs_root"] == f"{s3}/logs"
    assert np.isfinite(rec["staleness_s"]) and os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")

    # FM registration trains from the s3 log and writes the checkpoint (and its version) to the s3 model root
    from solaris_batch.model.checkpoint import load_checkpoint
    from solaris_batch.model.registry import train_and_register
    from solaris_batch.storage.staging import fetched

    reg = train_and_register(load_settings(), parse_time("2026-11-20T06:00"), window="2h", epochs=1)
    assert reg["path"] == f"{s3}/models/fm"
    with fetched(f"{s3}/models/fm") as live, fetched(f"{s3}/models/fm.versions/{reg['version']}") as kept:
        assert load_checkpoint(live).version == load_checkpoint(kept).version == reg["version"]
