"""The speculator's features: every candidate channel joined into one row per candidate pair.

``FEATURES`` is the model's input vector, in order; ``candidates`` builds it for the speculate,
train and backtest jobs alike, so a model scores exactly what it was trained on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from solaris_batch.speculate.channels import ChannelOptions, channel, nearest_neighbours
from solaris_batch.timeutil import HOUR_US, parse_time, to_us

FEATURES = [
    "rep_req_1h", "rep_req_6h", "rep_req_24h", "rep_req", "rep_age_h", "rep_last_position", "rep_clicks",
    "rep_decay", "usr_req_1h", "usr_req_6h", "usr_req_24h", "usr_req", "usr_age_h", "usr_hod_share",
    "ad_req_1h", "ad_req_6h", "ad_req_24h", "ad_users", "ad_momentum", "ad_age_h", "ad_ends_in_h",
    "cov_score", "cov_support", "nn_sim", "nn_rank", "rep_share", "fresh_p", "fresh_share", "fresh_ad_rank",
]
"""Model inputs, in vector order. ``rep_share``: the pair's share of the user's lookback requests;
``fresh_*``: the fresh channel's (``sql/channel_fresh.sql``)."""


def candidates(spark, at: datetime, horizon: timedelta, lookback: timedelta, opts: ChannelOptions | None = None):
    """One row per candidate pair of the horizon starting at ``at``.

    Candidates are the union of the repeats, co-visitation, nearest-neighbour and fresh channels,
    restricted to ads live in the horizon; missing features are filled with their "never" values
    (0 counts and shares, age = lookback + 1h, rank = nn_k + 1 or fresh_ads + 1). Needs the views
    of ``channels.load_window``; registers the views ``live_ads``, ``user_recent`` and
    ``ad_covisit``.

    Args:
        spark: the SparkSession holding the views.
        at: horizon start T (UTC).
        horizon: length of the horizon the pairs are planned for.
        lookback: length of the log window read before ``at``.
        opts: channel knobs (defaults fit the simulator).

    Returns:
        DataFrame ``(user_id, ad_id, *FEATURES)``, features as doubles, one row per pair.
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
    fresh = channel(spark, "channel_fresh", at_us=at_us, horizon_us=hz_us, fresh_ads=opts.fresh_ads,
                    fresh_users=opts.fresh_users)
    keys = ["user_id", "ad_id"]
    pairs = rep.join(cov, keys, "full").join(nn, keys, "full").join(fresh, keys, "full")
    out = (pairs.join(ads.drop("category_id"), "ad_id", "inner").join(usr, "user_id", "left")
           .fillna(0, subset=[c for c in FEATURES if c not in ("rep_age_h", "rep_last_position", "nn_rank",
                                                              "usr_age_h", "rep_share", "fresh_ad_rank")])
           .fillna({"rep_age_h": never_h, "usr_age_h": never_h, "rep_last_position": -1,
                    "nn_rank": opts.nn_k + 1, "fresh_ad_rank": opts.fresh_ads + 1})
           .withColumn("rep_share", F.col("rep_req") / F.greatest(F.col("usr_req"), F.lit(1))))
    return out.select("user_id", "ad_id", *[F.col(c).cast("double") for c in FEATURES])
