-- Channel 3, ad liveness and momentum: every ad that can be served in [:at_us, :at_us + :horizon_us).
-- Ads whose end_ts is at or before :at_us are excluded; ads launching before the horizon ends are
-- kept even if never seen (new ads stay reachable through the co-visitation and nearest-neighbour
-- channels). Momentum > 1 means the ad is scored more in the last hour than its 6h average.
-- Inputs: views `requests`, `ads` (may be empty). Params: :at_us, :horizon_us.
WITH req AS (
  SELECT ad_id, request_id, max(unix_micros(ts)) AS ts_us, max(user_id) AS user_id
  FROM requests
  GROUP BY ad_id, request_id
),
seen AS (
  SELECT ad_id,
         count_if(ts_us >= :at_us - 3600000000) AS req_1h,
         count_if(ts_us >= :at_us - 21600000000) AS req_6h,
         count_if(ts_us >= :at_us - 86400000000) AS req_24h,
         count(DISTINCT user_id) AS users,
         min(ts_us) AS first_us
  FROM req
  GROUP BY ad_id
)
SELECT coalesce(s.ad_id, a.ad_id) AS ad_id,
       CAST(coalesce(s.req_1h, 0) AS INT) AS ad_req_1h,
       CAST(coalesce(s.req_6h, 0) AS INT) AS ad_req_6h,
       CAST(coalesce(s.req_24h, 0) AS INT) AS ad_req_24h,
       CAST(coalesce(s.users, 0) AS INT) AS ad_users,
       CAST((coalesce(s.req_1h, 0) + 1.0) / (coalesce(s.req_6h, 0) / 6.0 + 1.0) AS DOUBLE) AS ad_momentum,
       CAST((:at_us - coalesce(unix_micros(a.start_ts), s.first_us, :at_us)) / 3600000000.0 AS DOUBLE) AS ad_age_h,
       CAST(least(coalesce((unix_micros(a.end_ts) - :at_us) / 3600000000.0, 1000.0), 1000.0) AS DOUBLE) AS ad_ends_in_h,
       CAST(a.category_id AS INT) AS category_id
FROM seen s
FULL OUTER JOIN ads a ON a.ad_id = s.ad_id
WHERE (a.end_ts IS NULL OR unix_micros(a.end_ts) > :at_us)
  AND (a.start_ts IS NULL OR unix_micros(a.start_ts) < :at_us + :horizon_us)
