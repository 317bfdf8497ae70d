from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from solaris_batch import schemas
from solaris_batch.errors import (
    EmptyWindow,
    InputNotFound,
    PartitionIncomplete,
    PartitionMissing,
    SchemaMismatch,
)
from solaris_batch.logs.layout import SUCCESS, partition_dir
from solaris_batch.logs.reader import read_window
from solaris_batch.logs.simulator import SimConfig, simulate
from solaris_batch.timeutil import Window
from tests.conftest import T0, log_table, write_hours


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    stats = simulate(SimConfig(start=T0, hours=8, users=800, ads=300, seed=5), out, progress=False)
    return out, stats


def _all(out):
    return ds.dataset(out / "requests", format="parquet", partitioning="hive").to_table()


def test_simulator_writes_contract_partitions_and_dims(sim):
    out, stats = sim
    for h in range(8):
        d = partition_dir(out, T0 + timedelta(hours=h))
        assert (d / SUCCESS).exists()
        schemas.check_schema(pq.read_schema(next(d.glob("*.parquet"))), schemas.REQUEST_LOG, "sim")
    assert stats.rows == _all(out).num_rows > 0
    schemas.check_schema(pq.read_schema(out / "ads" / "ads.parquet"), schemas.ADS, "ads")
    schemas.check_schema(pq.read_schema(out / "users" / "users.parquet"), schemas.USERS, "users")


def test_simulator_is_deterministic_per_seed(tmp_path, sim):
    out, _ = sim
    simulate(SimConfig(start=T0, hours=8, users=800, ads=300, seed=5), tmp_path, progress=False)
    assert _all(tmp_path).equals(_all(out))
    simulate(SimConfig(start=T0, hours=8, users=800, ads=300, seed=6), tmp_path / "b", progress=False)
    assert not _all(tmp_path / "b").equals(_all(out))


def test_simulator_marketplace_properties(sim):
    out, _ = sim
    t = _all(out)
    req = t.column("request_id").to_numpy()
    pair = t.column("user_id").to_numpy() * 1_000_003 + t.column("ad_id").to_numpy()
    # one row per (request, ad)
    assert len(np.unique(req * 10_000_019 + t.column("ad_id").to_numpy())) == t.num_rows
    # a few tens of candidates per request
    per_req = np.bincount(np.unique(req, return_inverse=True)[1])
    assert 15 <= per_req.mean() <= 45
    # pairs recur across requests
    assert len(np.unique(pair)) < 0.7 * t.num_rows
    imp = t.column("impressed").to_numpy(zero_copy_only=False)
    clk = t.column("clicked").to_numpy(zero_copy_only=False)
    assert not (clk & ~imp).any()  # clicks only on impressions
    assert 0.005 < clk.sum() / imp.sum() < 0.2
    pos = t.column("position")
    assert pos.null_count == int((~imp).sum())  # position is the slot shown, NULL otherwise
    ads = pq.read_table(out / "ads" / "ads.parquet")
    start = ads.column("start_ts").cast(pa.int64()).to_numpy()
    end = ads.column("end_ts").cast(pa.int64()).to_numpy()
    t0, t1 = int(T0.timestamp() * 1e6), int((T0 + timedelta(hours=8)).timestamp() * 1e6)
    assert ((start > t0) & (start < t1)).any(), "some ads launch during the run"
    assert ((end > t0) & (end < t1)).any(), "some ads expire during the run"


def _feed(out, seed=11):
    return simulate(SimConfig(start=T0, hours=10, users=600, ads=200, seed=seed, regime="feed"), out,
                    progress=False)


def test_feed_regime_short_lived_items_shown_to_many_users_pairs_rarely_repeat(tmp_path):
    _feed(tmp_path / "a")
    t = _all(tmp_path / "a")
    user, ad = t.column("user_id").to_numpy(), t.column("ad_id").to_numpy()
    _, inv, per_pair = np.unique(user * 1_000_003 + ad, return_inverse=True, return_counts=True)
    assert (per_pair[inv] > 1).mean() < 0.25  # the market regime: ~0.8 of rows are of repeated pairs
    ads = pq.read_table(tmp_path / "a" / "ads" / "ads.parquet")
    life_h = (ads.column("end_ts").cast(pa.int64()).to_numpy()
              - ads.column("start_ts").cast(pa.int64()).to_numpy()) / 3.6e9
    assert np.median(life_h) < 6 and (life_h < 12).mean() > 0.9  # the market's ads live days
    start = ads.column("start_ts").cast(pa.int64()).to_numpy()
    t0 = int(T0.timestamp() * 1e6)
    assert ((start > t0) & (start < t0 + 10 * 3600 * 10**6)).sum() > 50, "launched continuously"
    users_per_item = np.array([len(np.unique(user[ad == a])) for a in np.unique(ad)])
    assert np.median(users_per_item) > 0.1 * 600  # each item reaches many users
    per_req = np.bincount(np.unique(t.column("request_id").to_numpy(), return_inverse=True)[1])
    assert 5 <= per_req.mean() <= 45
    _feed(tmp_path / "b")
    assert _all(tmp_path / "b").equals(t)  # deterministic under the seed
    _feed(tmp_path / "c", seed=12)
    assert not _all(tmp_path / "c").equals(t)


def test_read_window_filters_by_time(tmp_path):
    ts = [T0 + timedelta(minutes=m) for m in (5, 30, 65)]
    write_hours(tmp_path, {0: [(1, ts[0], 7, 70, 0, True, False), (2, ts[1], 7, 71, None, False, False)],
                           1: [(3, ts[2], 8, 70, 0, True, True)]})
    t = read_window(tmp_path, Window(T0 + timedelta(minutes=10), T0 + timedelta(hours=2)))
    assert sorted(t.column("request_id").to_pylist()) == [2, 3]


def test_read_window_errors_name_the_problem(tmp_path):
    with pytest.raises(InputNotFound, match="solaris simulate"):
        read_window(tmp_path, Window(T0, T0 + timedelta(hours=1)))
    write_hours(tmp_path, {0: [(1, T0, 7, 70, 0, True, False)]})
    with pytest.raises(PartitionMissing, match="hour=01"):
        read_window(tmp_path, Window(T0, T0 + timedelta(hours=2)))
    (partition_dir(tmp_path, T0) / SUCCESS).unlink()
    with pytest.raises(PartitionIncomplete, match="_SUCCESS"):
        read_window(tmp_path, Window(T0, T0 + timedelta(hours=1)))


def test_read_window_refuses_wrong_schema_and_empty(tmp_path):
    write_hours(tmp_path, {0: [(1, T0, 7, 70, 0, True, False)]})
    d = partition_dir(tmp_path, T0 + timedelta(hours=1))
    d.mkdir(parents=True)
    bad = log_table([(2, T0 + timedelta(hours=1), 7, 70, 0, True, False)]).drop_columns(["clicked"])
    pq.write_table(bad.set_column(0, "request_id", bad.column(0).cast(pa.string())), d / "part-0.parquet")
    (d / SUCCESS).touch()
    with pytest.raises(SchemaMismatch, match=r"request_id is string.*missing column clicked"):
        read_window(tmp_path, Window(T0, T0 + timedelta(hours=2)))
    with pytest.raises(EmptyWindow):
        read_window(tmp_path, Window(T0 + timedelta(minutes=30), T0 + timedelta(hours=1)))
