"""The log views and the candidate channels of the speculator, as of a time T.

``load_window`` registers the view ``requests`` of valid lookback rows (and ``ads``); each channel
is then one query in the top-level ``sql/`` folder (shipped as the package data
``solaris_batch.sql``) or, for nearest neighbours, one faiss step. ``features.candidates`` joins
them into one row per candidate pair. Nothing but the ad side (bounded by the ad catalogue)
reaches the driver. pyspark is imported inside the functions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
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
    fresh_ads: int = 50
    """Ads of the fresh channel: the live ads with the largest share of the last hour's requests."""
    fresh_users: int = 20_000
    """Users of the fresh channel: the most active ones. The channel adds at most
    ``fresh_ads * fresh_users`` candidate pairs (1M with the defaults), whatever the log size."""


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


def load_window(spark, logs: Path, at: datetime, lookback: timedelta, quarantine_dir: Path | None = None):
    """Register the view ``requests`` with the valid rows of ``[at - lookback, at)`` (and ``ads``).

    A lookback that starts before the request log does is read from the log's first hour (said on
    stderr); a partition missing inside the log still fails. Malformed rows are counted and, when
    ``quarantine_dir`` is given, written there (never silently dropped). The valid rows are cached
    (callers end with ``spark.catalog.clearCache()``).

    Args:
        spark: the SparkSession to register the views in.
        logs: request-log root.
        at: end of the window (UTC, exclusive): the horizon start T.
        lookback: length of the window before ``at``.
        quarantine_dir: where malformed rows are written (Parquet), if given.

    Returns:
        ``(rows_read, quarantined, window)``: valid rows, malformed rows, and the window read.

    Raises:
        PartitionMissing, PartitionIncomplete: an hour inside the log is absent or lacks ``_SUCCESS``.
    """
    wanted = Window.before(at, lookback)
    window = clip_to_log_start(logs, wanted)
    if window != wanted:
        print(f"lookback {wanted} starts before the request log does: reading {window}", file=sys.stderr)
    valid, bad = read_valid(spark, logs, window)
    quarantined = bad.count()
    if quarantined and quarantine_dir is not None:
        bad.write.mode("overwrite").parquet(to_hadoop(quarantine_dir))
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


def horizon_pairs(spark, logs: Path, at: datetime, horizon: timedelta):
    """What really happened in ``[at, at + horizon)``: (user_id, ad_id, rows) with ``rows`` the
    number of (request, ad) log rows of the pair (malformed rows excluded), as the monitor counts."""
    from pyspark.sql import functions as F

    valid, _ = read_valid(spark, logs, Window.after(at, horizon))
    return valid.groupBy("user_id", "ad_id").agg(F.count("*").alias("rows"))


def recent_distinct_pairs(spark, at: datetime, horizon: timedelta) -> int:
    """Distinct pairs of the last horizon-length window before ``at`` (what ``Nx`` budgets scale)."""
    start = to_us(parse_time(at) - horizon)
    return spark.sql(f"SELECT count(DISTINCT user_id, ad_id) FROM requests WHERE unix_micros(ts) >= {start}").first()[0]


def channel(spark, name: str, **params):
    """One SQL channel of ``sql/<name>.sql`` over the registered views.

    Args:
        spark: the SparkSession holding the views of ``load_window`` (and, for some channels,
            ``live_ads``, ``user_recent``, ``ad_covisit``).
        name: the query's file name without ``.sql``.
        **params: the query's named parameters (``:name`` in the SQL).

    Returns:
        The channel's DataFrame (lazy).
    """
    return spark.sql(sql_text(f"{name}.sql"), args=params)


def sql_text(name: str) -> str:
    """Text of the query ``name`` (e.g. ``channel_ads.sql``) of the top-level ``sql/`` folder."""
    return sql_root().joinpath(name).read_text()


def sql_root() -> Traversable:
    """The folder of the queries.

    A wheel install, and the package zip shipped to a cluster (``speculate.spark.package_zip``),
    read it as the package data ``solaris_batch.sql`` (pyproject maps ``sql/`` there). A source
    checkout (an editable install, whose finder cannot import a mapped folder without
    ``__init__.py`` under a package, or ``PYTHONPATH``) has no such package and reads the ``sql/``
    beside ``solaris_batch/``.
    """
    try:
        return resources.files("solaris_batch.sql")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "sql"


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
