"""Candidate channels and their features, as of a time T, for the speculate, train and backtest jobs.

Each channel is one query in ``sql/`` (or, for nearest neighbours, one faiss step) over the view
``requests`` of valid lookback rows; ``candidates`` joins them into one row per candidate pair with
the feature columns in ``FEATURES``. Nothing but the ad side (bounded by the ad catalogue) reaches
the driver.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from solaris_batch import schemas
from solaris_batch.logs.reader import (
    clip_to_log_start,
    log_files,
    partition_paths,
    require_logs_root,
)
from solaris_batch.storage import Root
from solaris_batch.storage.uri import to_hadoop
from solaris_batch.timeutil import Window, parse_time, to_us
from spark_jobs.session import sql_text

HOUR_US = 3_600_000_000

FEATURES = [
    "rep_req_1h", "rep_req_6h", "rep_req_24h", "rep_req", "rep_age_h", "rep_last_position", "rep_clicks",
    "rep_decay", "usr_req_1h", "usr_req_6h", "usr_req_24h", "usr_req", "usr_age_h", "usr_hod_share",
    "ad_req_1h", "ad_req_6h", "ad_req_24h", "ad_users", "ad_momentum", "ad_age_h", "ad_ends_in_h",
    "cov_score", "cov_support", "nn_sim", "nn_rank", "rep_share",
]
"""Model inputs, in vector order. ``rep_share``: the pair's share of the user's lookback requests."""


@dataclass(frozen=True)
class ChannelOptions:
    """Knobs of the candidate channels (defaults fit the simulator and keep candidates bounded)."""

    half_life: float = 6.0
    """Hours; decay of ``rep_decay`` (also the heuristic score)."""
    recent: int = 20
    """Seed ads per user for co-visitation and nearest neighbours."""
    neighbors: int = 20
    """Co-visitation links kept per ad."""
    covisit_per_user: int = 50
    """Co-visitation candidates kept per user."""
    nn_k: int = 20
    """Nearest-neighbour candidates per user."""
    nn_dim: int = 32
    """Dimension of the co-visitation ad vectors."""


def read_valid(spark, logs: Path, window: Window):
    """Rows of the hour partitions covering ``window``, flagged: ``(valid_in_window, malformed)``.

    Malformed: a null in a required column, or a ``ts`` outside its own partition. The valid rows
    are further cut to ``window``.
    """
    from pyspark.sql import functions as F

    root = require_logs_root(logs)
    files = [to_hadoop(f) for f in log_files(partition_paths(root, window), window)]
    raw = (spark.read.option("basePath", to_hadoop(root.uri("requests"))).parquet(*files)
           .select(*schemas.REQUEST_LOG.names, "dt", "hour"))
    bad = (
        F.col("request_id").isNull() | F.col("ts").isNull() | F.col("user_id").isNull()
        | F.col("ad_id").isNull() | F.col("impressed").isNull() | F.col("clicked").isNull()
        | (F.date_format("ts", "yyyy-MM-dd") != F.col("dt"))
        | (F.hour("ts") != F.col("hour").cast("int"))
    )
    raw = raw.withColumn("_bad", F.coalesce(bad, F.lit(True)))
    valid = raw.filter(~F.col("_bad") & (F.unix_micros("ts") >= to_us(window.start))
                       & (F.unix_micros("ts") < to_us(window.end))).drop("_bad", "dt", "hour")
    return valid, raw.filter("_bad").drop("_bad")


def load_window(spark, logs: Path, at: datetime, lookback, quarantine_dir: Path | None = None):
    """Register view ``requests`` with the valid rows of ``[at - lookback, at)`` (and view ``ads``).

    A lookback that starts before the request log does is read from the log's first hour (said on
    stderr); a partition missing inside the log still fails. Malformed rows are counted and, when
    ``quarantine_dir`` is given, written there (never silently dropped). The valid rows are cached
    (callers end with ``spark.catalog.clearCache()``). Returns ``(rows_read, quarantined, window)``
    with the window read.
    """
    wanted = Window.before(at, lookback)
    window = clip_to_log_start(logs, wanted)
    if window != wanted:
        print(f"lookback {wanted} starts before the request log does: reading {window}", file=sys.stderr)
    valid, bad = read_valid(spark, logs, window)
    quarantined = bad.count()
    if quarantined and quarantine_dir is not None:
        bad.write.mode("overwrite").parquet(str(quarantine_dir))
        print(f"speculate: quarantined {quarantined} malformed log rows -> {quarantine_dir}", file=sys.stderr)
    rows = valid.cache()
    rows.createOrReplaceTempView("requests")
    rows_read = rows.count()
    ads_view(spark, logs).createOrReplaceTempView("ads")
    return rows_read, quarantined, window


ADS_COLUMNS = {"ad_id": "BIGINT", "category_id": "INT", "start_ts": "TIMESTAMP", "end_ts": "TIMESTAMP"}


def ads_view(spark, logs: Path):
    """The optional ads dimension table with the columns the channels use (NULL where absent)."""
    from pyspark.sql import functions as F

    root = Root.open(logs)
    if not root.is_dir("ads"):
        return spark.createDataFrame([], ", ".join(f"{k} {v}" for k, v in ADS_COLUMNS.items()))
    df = spark.read.parquet(to_hadoop(root.uri("ads")))
    return df.select(*[(F.col(k) if k in df.columns else F.lit(None)).cast(v).alias(k)
                       for k, v in ADS_COLUMNS.items()])


def horizon_pairs(spark, logs: Path, at: datetime, horizon):
    """What really happened in ``[at, at + horizon)``: (user_id, ad_id, rows) with ``rows`` the
    number of (request, ad) log rows of the pair (malformed rows excluded), as the monitor counts."""
    from pyspark.sql import functions as F

    valid, _ = read_valid(spark, logs, Window.after(at, horizon))
    return valid.groupBy("user_id", "ad_id").agg(F.count("*").alias("rows"))


def recent_distinct_pairs(spark, at: datetime, horizon) -> int:
    """Distinct pairs of the last horizon-length window before ``at`` (what ``Nx`` budgets scale)."""
    start = to_us(parse_time(at) - horizon)
    return spark.sql(f"SELECT count(DISTINCT user_id, ad_id) FROM requests WHERE unix_micros(ts) >= {start}").first()[0]


def channel(spark, name: str, **params):
    """One SQL channel of ``sql/<name>.sql`` over the registered views."""
    return spark.sql(sql_text(f"{name}.sql"), args=params)


def nearest_neighbours(spark, user_recent, ad_covisit, live_ads, opts: ChannelOptions):
    """Channel 5: top-``nn_k`` live ads per user by inner product of co-visitation ad vectors with
    the mean vector of the user's recent ads. Live ads never co-visited (new ads) take the mean
    vector of their category, so they are reachable. Returns (user_id, ad_id, nn_sim, nn_rank)."""
    import numpy as np
    import pyarrow as pa
    from pyspark.sql import functions as F

    from solaris_batch.speculate.embed import cooccurrence_vectors, group_mean, normalize

    edges = ad_covisit.select("src", "dst", "weight").toArrow()
    live = live_ads.select("ad_id", "category_id").toArrow()
    empty = spark.createDataFrame([], "user_id BIGINT, ad_id BIGINT, nn_sim DOUBLE, nn_rank INT")
    if edges.num_rows == 0 or live.num_rows == 0:
        return empty
    ids = np.unique(np.concatenate([edges["src"].to_numpy(), edges["dst"].to_numpy(), live["ad_id"].to_numpy()]))
    vec = cooccurrence_vectors(np.searchsorted(ids, edges["src"].to_numpy()),
                               np.searchsorted(ids, edges["dst"].to_numpy()),
                               edges["weight"].to_numpy(), len(ids), opts.nn_dim)
    live_idx = np.searchsorted(ids, live["ad_id"].to_numpy())
    cat = live["category_id"].fill_null(-1).to_numpy()
    cold = ~np.linalg.norm(vec[live_idx], axis=1).astype(bool)
    if cold.any() and (cat >= 0).any():
        c = np.where(cat >= 0, cat, 0)
        means = normalize(group_mean(c[~cold], vec[live_idx[~cold]], int(c.max()) + 1))
        fill = np.where((cat[cold] >= 0)[:, None], means[c[cold]], 0.0)
        vec[live_idx[cold]] = fill
    live_vec, live_ids = vec[live_idx], ids[live_idx]
    b = spark.sparkContext.broadcast((ids, vec, live_ids, live_vec, opts.nn_k))

    def search(batches):
        import faiss

        from solaris_batch.speculate.embed import top_k

        faiss.omp_set_num_threads(1)
        ids_, vec_, live_ids_, live_vec_, k = b.value
        for batch in batches:
            users = batch.column("user_id").to_numpy()
            seeds = batch.column("seeds")
            offs = seeds.offsets.to_numpy()
            flat = np.searchsorted(ids_, seeds.flatten().to_numpy())
            owner = np.repeat(np.arange(len(users)), np.diff(offs))
            q = normalize(group_mean(owner, vec_[flat], len(users)))
            sims, idx = top_k(q, live_vec_, k)
            kk = idx.shape[1]
            ok = (idx >= 0) & np.repeat(np.linalg.norm(q, axis=1)[:, None] > 0, kk, axis=1)
            yield pa.RecordBatch.from_pydict({
                "user_id": np.repeat(users, kk)[ok.ravel()],
                "ad_id": live_ids_[np.where(idx >= 0, idx, 0)].ravel()[ok.ravel()],
                "nn_sim": sims.ravel()[ok.ravel()].astype(np.float64),
                "nn_rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), len(users))[ok.ravel()],
            })

    seeds = user_recent.groupBy("user_id").agg(F.collect_list("ad_id").alias("seeds"))
    return seeds.mapInArrow(search, empty.schema)


def candidates(spark, at: datetime, horizon, lookback, opts: ChannelOptions | None = None):
    """One row per candidate pair of the horizon starting at ``at``: (user_id, ad_id, *FEATURES).

    Needs the views of ``load_window``; registers view ``live_ads`` (channel 3). Candidates are the union of the repeats, co-visitation and
    nearest-neighbour channels, restricted to ads live in the horizon; missing features are filled
    with their "never" values (0 counts, age = lookback + 1h, rank = nn_k + 1).
    """
    from pyspark.sql import functions as F

    opts = opts or ChannelOptions()
    at = parse_time(at)
    at_us, hz_us = to_us(at), int(horizon.total_seconds() * 1e6)
    never_h = lookback.total_seconds() / 3600 + 1
    rep = channel(spark, "channel_repeats", at_us=at_us, half_life_us=int(opts.half_life * HOUR_US))
    usr = channel(spark, "channel_users", at_us=at_us, hod=at.hour)
    ads = channel(spark, "channel_ads", at_us=at_us, horizon_us=hz_us).cache()
    ads.createOrReplaceTempView("live_ads")
    user_recent = channel(spark, "user_recent_ads", recent=opts.recent).cache()
    user_recent.createOrReplaceTempView("user_recent")
    covisit = channel(spark, "ad_covisit", neighbors=opts.neighbors).cache()
    covisit.createOrReplaceTempView("ad_covisit")
    cov = channel(spark, "channel_covisit", per_user=opts.covisit_per_user)
    nn = nearest_neighbours(spark, user_recent, covisit, ads, opts)
    keys = ["user_id", "ad_id"]
    pairs = rep.join(cov, keys, "full").join(nn, keys, "full")
    out = (pairs.join(ads.drop("category_id"), "ad_id", "inner").join(usr, "user_id", "left")
           .fillna(0, subset=[c for c in FEATURES if c not in ("rep_age_h", "rep_last_position", "nn_rank",
                                                              "usr_age_h", "rep_share")])
           .fillna({"rep_age_h": never_h, "usr_age_h": never_h, "rep_last_position": -1,
                    "nn_rank": opts.nn_k + 1})
           .withColumn("rep_share", F.col("rep_req") / F.greatest(F.col("usr_req"), F.lit(1))))
    return out.select("user_id", "ad_id", *[F.col(c).cast("double") for c in FEATURES])
