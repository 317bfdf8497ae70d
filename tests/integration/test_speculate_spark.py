import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from solaris_batch.hashing import shard_of, xxhash64
from solaris_batch.logs.layout import partition_dir
from solaris_batch.logs.reader import read_window
from solaris_batch.model.features import Events, sequences_at
from solaris_batch.speculate.budget import Budget
from solaris_batch.speculate.plan import PLAN_ORDER, read_pairs, read_table
from solaris_batch.speculate.planner import write_plan
from solaris_batch.timeutil import Window
from tests.conftest import T0, log_table, python_without_solaris, write_hours

pytestmark = pytest.mark.integration
AT = T0 + timedelta(hours=3)
H = timedelta(hours=1)


def _score(*ages_h):
    return sum(math.exp(-a * math.log(2) / 6.0) for a in ages_h)


@pytest.fixture
def logs(tmp_path):
    """Three hours; the answer for --at 03:00 is written beside each row."""
    r = [
        # hour 0: (1,100) seen at 00:00 (age 3h); (2,200) at 00:00; request 11 repeats (1,100) at 00:30
        (10, T0, 1, 100, 0, True, False), (10, T0, 1, 101, None, False, False), (11, T0 + H / 2, 1, 100, 0, True, True),
        (12, T0, 2, 200, 0, True, False),
    ]
    r1 = [(20, T0 + H + H / 2, 2, 200, 1, True, False), (21, T0 + 2 * H - timedelta(minutes=30), 3, 300, 0, True, False)]
    r2 = [(30, T0 + 2 * H, 1, 101, 0, True, True), (31, T0 + 2 * H + H / 2, 3, 300, None, False, False),
          (32, T0 + 2 * H + H / 2, 3, 999, None, False, False)]  # ad 999 expired before AT
    write_hours(tmp_path, {0: r, 1: r1, 2: r2})
    (tmp_path / "ads").mkdir()
    end = [AT + H, AT + H, AT + H, AT - H, AT + H]
    pq.write_table(pa.table({"ad_id": pa.array([100, 101, 200, 999, 300], pa.int64()),
                             "category_id": pa.array([1, 2, 3, 4, 5], pa.int32()),
                             "end_ts": pa.array(end, pa.timestamp("us", tz="UTC"))}), tmp_path / "ads" / "a.parquet")
    return tmp_path


def test_repeats_scores_budget_and_sharding(spark, logs, tmp_path):
    out = tmp_path / "plan"
    with pytest.warns(UserWarning, match="no trained speculator"):
        info = write_plan(spark, logs, AT, 3 * H, H, Budget.parse("4"), out, shards=2, seq_len=2,
                          registry_root=tmp_path / "no-registry")
    expected = {  # heuristic: recency-weighted distinct-request counts, half-life 6h, ages from 03:00
        (1, 100): _score(3.0, 2.5), (1, 101): _score(3.0, 1.0), (2, 200): _score(3.0, 1.5),
        (3, 300): _score(1.5, 0.5),
    }  # (3, 999) dropped: the ad ended before the horizon; co-visitation/neighbour terms add < 0.02
    pairs = read_pairs(out)
    got = {(u, a): s for u, a, s in zip(pairs.column("user_id").to_pylist(), pairs.column("ad_id").to_pylist(),
                                        pairs.column("score").to_pylist(), strict=True)}
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=0.02)
    assert info.pairs == 4 and info.users == 3 and info.rows_read == 9 and info.quarantined == 0
    assert info.speculator == "heuristic-v2"
    for s in info.shards:  # shard = pmod(xxhash64(user), n); files sorted by user
        t = read_pairs(out, s)
        u = t.column("user_id").to_numpy()
        assert (shard_of(u, 2) == s).all() and (np.diff(u) >= 0).all()

    # budget: top 2 by score; "1x" = distinct pairs in [02:00, 03:00) = 3 pairs
    write_plan(spark, logs, AT, 3 * H, H, Budget.parse("2"), out, shards=2)
    top = sorted(expected, key=lambda k: -expected[k])[:2]
    assert sorted(zip(read_pairs(out).column("user_id").to_pylist(), read_pairs(out).column("ad_id").to_pylist(),
                      strict=True)) == sorted(top)
    # the log root as a file:// URI, as a URI root reaches the Spark side (a job's plan folder given
    # as file:// becomes a path in jobs.PATH: tests/unit/test_jobs.py)
    info = write_plan(spark, f"file://{logs}", AT, 3 * H, H, Budget.parse("1x"), out, shards=2)
    assert info.budget_pairs == 3 and info.rows_read == 9 and read_pairs(out).num_rows == 3

    # user sequences: last 2 impressions before AT, oldest first
    write_plan(spark, logs, AT, 3 * H, H, Budget.parse("4"), out, shards=2, seq_len=2)
    seq = {r["user_id"]: (r["seq_ad_id"], r["seq_clicked"]) for r in read_table(out, "users").to_pylist()}
    assert seq[1] == ([100, 101], [True, True])
    assert seq[2] == ([200, 200], [False, False])
    assert seq[3] == ([300], [False])
    ads = {r["ad_id"]: r["category_id"] for r in read_table(out, "ads").to_pylist()}
    assert ads == {100: 1, 101: 2, 200: 3, 300: 5}


def test_rerun_is_identical_and_malformed_rows_are_quarantined(spark, logs, tmp_path):
    bad_dir = partition_dir(logs, T0 + H)
    # a row whose ts is outside its partition hour, plus a row with a NULL user
    t = log_table([(40, T0 + 5 * H, 3, 300, 0, True, False), (41, T0 + H, 3, 300, 0, True, False)])
    loose = pa.schema([f.with_nullable(True) for f in t.schema])
    t = t.cast(loose).set_column(2, "user_id", pa.array([3, None], pa.int64()))
    pq.write_table(t, bad_dir / "part-bad.parquet")
    out = tmp_path / "plan"
    a = write_plan(spark, logs, AT, 3 * H, H, Budget.parse("4"), out, shards=2)
    assert a.quarantined == 2
    q = ds.dataset(out / "_quarantine", format="parquet").to_table()
    assert sorted(q.column("request_id").to_pylist()) == [40, 41]
    first = read_pairs(out)
    b = write_plan(spark, logs, AT, 3 * H, H, Budget.parse("4"), out, shards=2)
    assert b.fingerprint == a.fingerprint and read_pairs(out).equals(first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_spark_and_numpy_agree_on_hash_and_sequences(spark, tmp_path):
    from solaris_batch.logs.simulator import SimConfig, simulate

    simulate(SimConfig(start=T0, hours=4, users=300, ads=120, seed=2), tmp_path / "logs", progress=False)
    out = tmp_path / "plan"
    write_plan(spark, tmp_path / "logs", T0 + 4 * H, 3 * H, H, Budget.parse("1500"), out, shards=3, seq_len=7)
    users = read_table(out, "users").sort_by("user_id")
    ids = users.column("user_id").to_numpy()
    spark_hash = [r[0] for r in spark.createDataFrame([(int(i),) for i in ids], "u BIGINT")
                  .selectExpr("xxhash64(u)").collect()]
    assert xxhash64(ids).tolist() == spark_hash
    ev = Events.from_table(read_window(tmp_path / "logs", Window(T0 + H, T0 + 4 * H),
                                       columns=["ts", "user_id", "ad_id", "clicked", "impressed"]).filter(
        pa.compute.field("impressed")))
    at_us = int((T0 + 4 * H).timestamp() * 1e6)
    a, c, v = sequences_at(ev, ids, np.full(len(ids), at_us), 7, 3 * 3600 * 10**6)
    for i, row in enumerate(users.to_pylist()):
        assert a[i][v[i]].tolist() == row["seq_ad_id"]
        assert c[i][v[i]].tolist() == row["seq_clicked"]


def test_spark_and_numpy_agree_on_the_plan_order(spark):
    rows = [(2, 10, 0.5), (1, 11, 0.9), (1, 10, 0.5), (3, 10, 0.5), (1, 12, 0.9), (4, 1, 0.25)]
    df = spark.createDataFrame(rows, "user_id BIGINT, ad_id BIGINT, score DOUBLE")
    got = [(r.user_id, r.ad_id) for r in df.orderBy(*PLAN_ORDER.columns()).collect()]
    u, a, s = (np.array(c) for c in zip(*rows, strict=True))
    assert got == [rows[i][:2] for i in PLAN_ORDER.argsort(score=s, user_id=u, ad_id=a)]
    assert got[:3] == [(1, 11), (1, 12), (1, 10)]


@pytest.mark.slow
def test_local_cluster_executors_write_the_same_plan_with_the_package_from_the_shipped_zip(
        spark, tmp_path, monkeypatch):
    """spark-submit on ``local-cluster[2,1,1024]`` (two executor JVMs, each with its own Python
    workers) writes the plan ``local[*]`` writes: same fingerprint, same rows. The executors' Python
    cannot import ``solaris_batch`` from this machine (``python_without_solaris``), so the
    nearest-neighbour channel's Arrow UDF, which imports ``solaris_batch.speculate.embed``, runs
    only because the launcher shipped the package zip (``spark.submit.pyFiles``)."""
    from solaris_batch.config import Settings
    from solaris_batch.jobs import SpeculateJob, launch
    from solaris_batch.logs.simulator import SimConfig, simulate

    simulate(SimConfig(start=T0, hours=3, users=200, ads=80, seed=5), tmp_path / "logs", progress=False)
    job = SpeculateJob(logs=tmp_path / "logs", at=T0 + 3 * H, lookback="3h", budget="800", out=tmp_path / "local",
                       shards=2, speculator="heuristic")
    local = job.resolve(Settings(data=tmp_path)).run(spark)
    monkeypatch.setenv("PYSPARK_PYTHON", str(python_without_solaris(tmp_path)))
    cluster = launch(Settings(data=tmp_path, spark_master="local-cluster[2,1,1024]", spark_shuffle_partitions=2,
                              spark_driver_memory="1g"), replace(job, out=tmp_path / "cluster"), submit=True)
    assert "pyspark.daemon" in (tmp_path / "python-without-solaris.log").read_text()  # the executors ran it
    assert local.pairs > 100 and cluster.fingerprint == local.fingerprint
    assert (cluster.pairs, cluster.users, cluster.shard_pairs) == (local.pairs, local.users, local.shard_pairs)
    for table in ("pairs", "users"):  # files sorted by shard, then user (and ad)
        assert read_table(tmp_path / "cluster", table).equals(read_table(tmp_path / "local", table)), table
    assert read_table(tmp_path / "cluster", "ads").sort_by("ad_id").equals(read_table(tmp_path / "local", "ads")
                                                                          .sort_by("ad_id"))
