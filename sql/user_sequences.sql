-- FM input per planned user: the last :seq_len impressions before :at_us in the lookback window,
-- oldest first (ties at one timestamp broken by ad_id), with whether each was clicked.
-- Must agree with solaris_batch.model.features.sequences_at (tested).
-- Inputs: view `requests` (valid lookback rows), view `planned_users` (user_id).
WITH ev AS (
  SELECT r.user_id, array_sort(collect_list(struct(unix_micros(r.ts) AS ts_us, r.ad_id, r.clicked))) AS evs
  FROM requests r
  JOIN planned_users p ON p.user_id = r.user_id
  WHERE r.impressed
  GROUP BY r.user_id
),
cut AS (
  SELECT user_id, slice(evs, greatest(size(evs) - :seq_len + 1, 1), :seq_len) AS s FROM ev
)
SELECT p.user_id,
       coalesce(transform(c.s, x -> x.ad_id), array()) AS seq_ad_id,
       coalesce(transform(c.s, x -> x.clicked), array()) AS seq_clicked
FROM planned_users p
LEFT JOIN cut c ON c.user_id = p.user_id
