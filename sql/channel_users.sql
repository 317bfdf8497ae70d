-- Channel 2, user activity: how likely each user of the lookback is to send a request in the
-- horizon: volume at several scales, recency, and their own hour-of-day profile (share of their
-- requests within one hour of the horizon's hour of day, on any day of the lookback).
-- Inputs: view `requests`. Params: :at_us, :hod (hour of day of :at_us, 0-23).
WITH req AS (
  SELECT request_id, user_id, min(unix_micros(ts)) AS ts_us
  FROM requests
  GROUP BY request_id, user_id
)
SELECT user_id,
       CAST(count_if(ts_us >= :at_us - 3600000000) AS INT) AS usr_req_1h,
       CAST(count_if(ts_us >= :at_us - 21600000000) AS INT) AS usr_req_6h,
       CAST(count_if(ts_us >= :at_us - 86400000000) AS INT) AS usr_req_24h,
       CAST(count(*) AS INT) AS usr_req,
       CAST((:at_us - max(ts_us)) / 3600000000.0 AS DOUBLE) AS usr_age_h,
       CAST(count_if(pmod(hour(timestamp_micros(ts_us)) - :hod, 24) IN (0, 1, 23)) AS DOUBLE) / count(*)
         AS usr_hod_share
FROM req
GROUP BY user_id
