-- Ad-to-ad co-visitation: two ads are linked when they are among the recent ads of the same users.
-- weight = users(a, b) / sqrt(users(a) * users(b)) (cosine over users); each ad keeps its
-- :neighbors strongest links (ties by ad_id), so the table is bounded by ads x neighbors.
-- Inputs: view `user_recent` (user_recent_ads.sql). Params: :neighbors.
WITH deg AS (SELECT ad_id, count(*) AS n FROM user_recent GROUP BY ad_id),
co AS (
  SELECT a.ad_id AS src, b.ad_id AS dst, count(*) AS c
  FROM user_recent a
  JOIN user_recent b ON a.user_id = b.user_id AND a.ad_id <> b.ad_id
  GROUP BY a.ad_id, b.ad_id
),
w AS (
  SELECT co.src, co.dst, co.c / sqrt(CAST(ds.n AS DOUBLE) * dd.n) AS weight
  FROM co JOIN deg ds ON ds.ad_id = co.src JOIN deg dd ON dd.ad_id = co.dst
)
SELECT src, dst, weight
FROM (SELECT *, row_number() OVER (PARTITION BY src ORDER BY weight DESC, dst) AS rn FROM w)
WHERE rn <= :neighbors
