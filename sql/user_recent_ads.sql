-- Each user's :recent most recently scored distinct ads (ties by ad_id): the seed set of the
-- co-visitation and nearest-neighbour channels.
-- Inputs: view `requests`. Params: :recent.
SELECT user_id, ad_id, ts_us
FROM (
  SELECT user_id, ad_id, ts_us,
         row_number() OVER (PARTITION BY user_id ORDER BY ts_us DESC, ad_id) AS rn
  FROM (SELECT user_id, ad_id, max(unix_micros(ts)) AS ts_us FROM requests GROUP BY user_id, ad_id)
)
WHERE rn <= :recent
