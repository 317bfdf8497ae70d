"""The baselines the speculator is backtested against, scored over the same candidate views.

Both see the same live-ad filter as the speculator (the view ``live_ads`` that
``features.candidates`` registers) and return ``(user_id, ad_id, score)``; a budget keeps their
top pairs in ``PLAN_ORDER`` like any plan.
"""

from __future__ import annotations

import math


def repeat_scores(spark):
    """Baseline ``repeat``: every pair of the lookback on a live ad, most recently scored first.

    Args:
        spark: the SparkSession holding the views ``requests`` and ``live_ads``.

    Returns:
        DataFrame ``(user_id, ad_id, score)``, score = last request time in microseconds.
    """
    return spark.sql("SELECT r.user_id, r.ad_id, CAST(max(unix_micros(r.ts)) AS DOUBLE) AS score"
                     " FROM requests r JOIN live_ads l ON l.ad_id = r.ad_id GROUP BY r.user_id, r.ad_id")


def popular_scores(spark, max_pairs: int):
    """Baseline ``popular``: active users (any request in the lookback) x the most scored live ads.

    Each user gets at most ``4 * max_pairs / users`` ads, which holds the top ``max_pairs``
    products unless activity is extremely skewed.

    Args:
        spark: the SparkSession holding the views ``requests`` and ``live_ads``.
        max_pairs: the largest budget that will be taken from the result.

    Returns:
        DataFrame ``(user_id, ad_id, score)``, score = user requests x ad requests.
    """
    n_users = spark.sql("SELECT count(DISTINCT user_id) FROM requests").first()[0]
    k = max(1, math.ceil(4 * max_pairs / max(n_users, 1)))
    return spark.sql(
        "WITH u AS (SELECT user_id, count(DISTINCT request_id) AS n FROM requests GROUP BY user_id),"
        " a AS (SELECT r.ad_id, count(DISTINCT r.request_id) AS n FROM requests r"
        "       JOIN live_ads l ON l.ad_id = r.ad_id GROUP BY r.ad_id ORDER BY n DESC, r.ad_id LIMIT :k)"
        " SELECT u.user_id, a.ad_id, CAST(u.n * a.n AS DOUBLE) AS score FROM u CROSS JOIN a",
        args={"k": k})
