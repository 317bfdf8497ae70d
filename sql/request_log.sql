-- Data contract: the canonical request log (Spark SQL DDL).
-- One row per (request, candidate ad) scored by the final-stage ranker: exactly the pairs the FM
-- must serve. Hive-partitioned Parquet; an hour partition is complete when it holds _SUCCESS.
--   <logs>/requests/dt=YYYY-MM-DD/hour=HH/*.parquet
CREATE TABLE IF NOT EXISTS requests (
  request_id  BIGINT    NOT NULL,
  ts          TIMESTAMP NOT NULL,  -- UTC, microseconds
  user_id     BIGINT    NOT NULL,
  ad_id       BIGINT    NOT NULL,
  position    INT,                 -- slot where the ad was shown; NULL when not impressed
  impressed   BOOLEAN   NOT NULL,
  clicked     BOOLEAN   NOT NULL,
  surface     STRING,
  dt          STRING,              -- partition column, YYYY-MM-DD (UTC)
  hour        STRING               -- partition column, HH (UTC)
) USING PARQUET PARTITIONED BY (dt, hour);

-- Optional dimension tables.
CREATE TABLE IF NOT EXISTS ads (        -- <logs>/ads/*.parquet
  ad_id BIGINT NOT NULL, campaign_id BIGINT, advertiser_id BIGINT, category_id INT,
  start_ts TIMESTAMP, end_ts TIMESTAMP
) USING PARQUET;

CREATE TABLE IF NOT EXISTS users (      -- <logs>/users/*.parquet
  user_id BIGINT NOT NULL, region INT, age_bucket INT
) USING PARQUET;
