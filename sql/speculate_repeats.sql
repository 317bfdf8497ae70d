-- Speculator v1: recency-weighted repeats.
-- Every (user, ad) pair scored in the lookback window is a candidate for the horizon; its score is
-- the sum over distinct requests of exp(-age / tau), tau = half_life / ln 2, age measured back from
-- :at_us. Ads whose end_ts is at or before :at_us cannot be served in the horizon and are dropped.
-- Inputs: view `requests` (valid lookback rows), view `ads` (may be empty).
WITH per_request AS (
  SELECT user_id, ad_id, max(unix_micros(ts)) AS ts_us
  FROM requests
  GROUP BY request_id, user_id, ad_id
)
SELECT r.user_id,
       r.ad_id,
       CAST(sum(exp(-(CAST(:at_us AS DOUBLE) - r.ts_us) * ln(2) / CAST(:half_life_us AS DOUBLE))) AS FLOAT) AS score
FROM per_request r
LEFT JOIN ads a ON a.ad_id = r.ad_id
WHERE a.end_ts IS NULL OR unix_micros(a.end_ts) > :at_us
GROUP BY r.user_id, r.ad_id
