-- Channel 4, co-visitation: ads linked (ad_covisit.sql) to a user's recent ads, scored by the sum
-- of link weights over those seeds; reaches pairs never seen before. Each user keeps :per_user.
-- Inputs: views `user_recent`, `ad_covisit`. Params: :per_user.
WITH s AS (
  SELECT r.user_id, c.dst AS ad_id, sum(c.weight) AS cov_score, count(*) AS cov_support
  FROM user_recent r
  JOIN ad_covisit c ON c.src = r.ad_id
  GROUP BY r.user_id, c.dst
)
SELECT user_id, ad_id, cov_score, CAST(cov_support AS INT) AS cov_support
FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY cov_score DESC, ad_id) AS rn FROM s)
WHERE rn <= :per_user
