-- Channel 6, fresh items x active users: the live ads most requests will carry in the horizon,
-- crossed with the users most likely to send requests in it. Reaches pairs never seen before when
-- items are short-lived and shown to many users (news feeds), where repeats and co-visitation
-- have little to say. An ad's share is the fraction of the last hour's requests that scored it,
-- times the fraction of the horizon it is live; a user's rate blends their requests of the last
-- 6 h and 24 h. Only ads scored in the last hour take part (never-seen ads are the nearest-neighbour
-- channel's). Bounded: at most :fresh_ads ads x :fresh_users users pairs.
--   fresh_p       1 - exp(-rate * horizon hours * share): chance the user's requests score the ad
--   fresh_share   the ad's share of the last hour's distinct users
--   fresh_ad_rank the ad's rank by share among the fresh ads (1 = first)
-- Inputs: views `requests`, `live_ads` (channel_ads.sql). Params: :at_us, :horizon_us, :fresh_ads,
-- :fresh_users.
WITH last_hour AS (
  SELECT request_id, user_id, ad_id FROM requests WHERE unix_micros(ts) >= :at_us - 3600000000
),
total AS (
  SELECT count(DISTINCT request_id) AS requests, count(DISTINCT user_id) AS users FROM last_hour
),
ad AS (
  SELECT h.ad_id,
         count(DISTINCT h.request_id) / max(t.requests)
           * greatest(least(max(l.ad_ends_in_h) * 3600000000 / :horizon_us, 1.0), 0.0) AS share,
         count(DISTINCT h.user_id) / max(t.users) AS user_share
  FROM last_hour h
  JOIN live_ads l ON l.ad_id = h.ad_id
  CROSS JOIN total t
  GROUP BY h.ad_id
),
top_ads AS (
  SELECT * FROM (SELECT *, row_number() OVER (ORDER BY share DESC, ad_id) AS rank FROM ad)
  WHERE rank <= :fresh_ads
),
usr AS (
  SELECT user_id,
         (0.7D * count_if(ts_us >= :at_us - 21600000000) / 6
          + 0.3D * count_if(ts_us >= :at_us - 86400000000) / 24) AS rate_h
  FROM (SELECT request_id, max(user_id) AS user_id, max(unix_micros(ts)) AS ts_us FROM requests
        GROUP BY request_id)
  GROUP BY user_id
),
top_users AS (  -- a top-k, not a global sort: users can be many
  SELECT * FROM usr WHERE rate_h > 0 ORDER BY rate_h DESC, user_id LIMIT :fresh_users
)
SELECT u.user_id,
       a.ad_id,
       CAST(1 - exp(-u.rate_h * :horizon_us / 3600000000.0 * a.share) AS DOUBLE) AS fresh_p,
       CAST(a.user_share AS DOUBLE) AS fresh_share,
       CAST(a.rank AS INT) AS fresh_ad_rank
FROM top_users u
CROSS JOIN top_ads a
