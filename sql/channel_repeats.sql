-- Channel 1, repeats: every (user, ad) pair scored in the lookback, with its recency and frequency
-- at several scales. Counts are distinct requests; scales are 1h, 6h and 24h before :at_us (a scale
-- longer than the lookback sees the whole lookback).
-- Inputs: view `requests` (valid lookback rows before :at_us).
-- Params: :at_us (horizon start, epoch us), :half_life_us (decay of rep_decay).
WITH per_request AS (
  SELECT request_id, user_id, ad_id, max(unix_micros(ts)) AS ts_us, min(position) AS position,
         bool_or(clicked) AS clicked
  FROM requests
  GROUP BY request_id, user_id, ad_id
)
SELECT user_id,
       ad_id,
       CAST(count_if(ts_us >= :at_us - 3600000000) AS INT) AS rep_req_1h,
       CAST(count_if(ts_us >= :at_us - 21600000000) AS INT) AS rep_req_6h,
       CAST(count_if(ts_us >= :at_us - 86400000000) AS INT) AS rep_req_24h,
       CAST(count(*) AS INT) AS rep_req,
       CAST((:at_us - max(ts_us)) / 3600000000.0 AS DOUBLE) AS rep_age_h,
       -- slot of the most recent showing; -1 when it was scored but not impressed
       CAST(coalesce(max_by(position, struct(ts_us, request_id)), -1) AS INT) AS rep_last_position,
       CAST(count_if(clicked) AS INT) AS rep_clicks,
       sum(exp(-(CAST(:at_us AS DOUBLE) - ts_us) * ln(2) / CAST(:half_life_us AS DOUBLE))) AS rep_decay
FROM per_request
GROUP BY user_id, ad_id
