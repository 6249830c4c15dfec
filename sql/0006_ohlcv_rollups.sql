-- OHLCV rolled up into daily, weekly, monthly, quarterly and yearly bars, with the columns of
-- docs/ARCHITECTURE.md: (bucket, symbol, exchange, provider, open, high, low, close, volume).
--
-- The source is the daily bars (timeframe '1d'): summing several timeframes of one symbol would count its
-- volume twice, and daily bars are what the seeds roll up. Buckets are UTC days, ISO weeks (Monday),
-- calendar months, quarters and years. Each level is built from the one below it (hierarchical), so a
-- refresh reads days, not raw bars.
--
-- TimescaleDB: continuous aggregates with real-time aggregation (materialized_only = false: rows not yet
--   materialized are computed from the source at query time) and a refresh policy every
--   caggRefreshInterval over the whole range (only invalidated buckets are recomputed).
-- Vanilla: ordinary materialized views with a unique index each (so REFRESH ... CONCURRENTLY works).
-- Both: `CALL market_data.refresh_ohlcv_rollups()` refreshes every level bottom-up, e.g. after a load.
-- migrate:up
-- if:timescaledb
CREATE MATERIALIZED VIEW market_data.ohlcv_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', time) AS bucket,
       symbol, exchange, provider,
       first(open, time) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, time) AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_bars
WHERE timeframe = '1d'
GROUP BY bucket, symbol, exchange, provider
WITH NO DATA;

CREATE MATERIALIZED VIEW market_data.ohlcv_weekly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 week', bucket) AS bucket,
       symbol, exchange, provider,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_daily
GROUP BY 1, symbol, exchange, provider
WITH NO DATA;

CREATE MATERIALIZED VIEW market_data.ohlcv_monthly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 month', bucket) AS bucket,
       symbol, exchange, provider,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_daily
GROUP BY 1, symbol, exchange, provider
WITH NO DATA;

CREATE MATERIALIZED VIEW market_data.ohlcv_quarterly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '3 months', bucket) AS bucket,
       symbol, exchange, provider,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_monthly
GROUP BY 1, symbol, exchange, provider
WITH NO DATA;

CREATE MATERIALIZED VIEW market_data.ohlcv_yearly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 year', bucket) AS bucket,
       symbol, exchange, provider,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_monthly
GROUP BY 1, symbol, exchange, provider
WITH NO DATA;

SELECT add_continuous_aggregate_policy('market_data.ohlcv_daily', start_offset => NULL, end_offset => NULL, schedule_interval => INTERVAL {{caggRefreshInterval}});
SELECT add_continuous_aggregate_policy('market_data.ohlcv_weekly', start_offset => NULL, end_offset => NULL, schedule_interval => INTERVAL {{caggRefreshInterval}});
SELECT add_continuous_aggregate_policy('market_data.ohlcv_monthly', start_offset => NULL, end_offset => NULL, schedule_interval => INTERVAL {{caggRefreshInterval}});
SELECT add_continuous_aggregate_policy('market_data.ohlcv_quarterly', start_offset => NULL, end_offset => NULL, schedule_interval => INTERVAL {{caggRefreshInterval}});
SELECT add_continuous_aggregate_policy('market_data.ohlcv_yearly', start_offset => NULL, end_offset => NULL, schedule_interval => INTERVAL {{caggRefreshInterval}});

-- Invoker's rights, not SECURITY DEFINER: refresh_continuous_aggregate commits as it goes, which a
-- security-definer procedure may not do. So here only the owner (the migrator after SET ROLE) can call
-- it; everyone else relies on the policies above.
CREATE PROCEDURE market_data.refresh_ohlcv_rollups()
LANGUAGE plpgsql
AS $$
BEGIN
  CALL refresh_continuous_aggregate('market_data.ohlcv_daily', NULL, NULL);
  CALL refresh_continuous_aggregate('market_data.ohlcv_weekly', NULL, NULL);
  CALL refresh_continuous_aggregate('market_data.ohlcv_monthly', NULL, NULL);
  CALL refresh_continuous_aggregate('market_data.ohlcv_quarterly', NULL, NULL);
  CALL refresh_continuous_aggregate('market_data.ohlcv_yearly', NULL, NULL);
END;
$$;
-- end:timescaledb
-- if:vanilla
-- first()/last() are TimescaleDB aggregates; array_agg ordered by time gives the same open and close.
CREATE MATERIALIZED VIEW market_data.ohlcv_daily AS
SELECT date_trunc('day', time, 'UTC') AS bucket,
       symbol, exchange, provider,
       (array_agg(open ORDER BY time))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY time DESC))[1] AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_bars
WHERE timeframe = '1d'
GROUP BY 1, symbol, exchange, provider;
CREATE UNIQUE INDEX ohlcv_daily_key ON market_data.ohlcv_daily (symbol, exchange, provider, bucket);

CREATE MATERIALIZED VIEW market_data.ohlcv_weekly AS
SELECT date_trunc('week', bucket, 'UTC') AS bucket,
       symbol, exchange, provider,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_daily
GROUP BY 1, symbol, exchange, provider;
CREATE UNIQUE INDEX ohlcv_weekly_key ON market_data.ohlcv_weekly (symbol, exchange, provider, bucket);

CREATE MATERIALIZED VIEW market_data.ohlcv_monthly AS
SELECT date_trunc('month', bucket, 'UTC') AS bucket,
       symbol, exchange, provider,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_daily
GROUP BY 1, symbol, exchange, provider;
CREATE UNIQUE INDEX ohlcv_monthly_key ON market_data.ohlcv_monthly (symbol, exchange, provider, bucket);

CREATE MATERIALIZED VIEW market_data.ohlcv_quarterly AS
SELECT date_trunc('quarter', bucket, 'UTC') AS bucket,
       symbol, exchange, provider,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_monthly
GROUP BY 1, symbol, exchange, provider;
CREATE UNIQUE INDEX ohlcv_quarterly_key ON market_data.ohlcv_quarterly (symbol, exchange, provider, bucket);

CREATE MATERIALIZED VIEW market_data.ohlcv_yearly AS
SELECT date_trunc('year', bucket, 'UTC') AS bucket,
       symbol, exchange, provider,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM market_data.ohlcv_monthly
GROUP BY 1, symbol, exchange, provider;
CREATE UNIQUE INDEX ohlcv_yearly_key ON market_data.ohlcv_yearly (symbol, exchange, provider, bucket);

-- SECURITY DEFINER because only the owner may refresh a materialized view and loaders run as the app
-- role; CONCURRENTLY keeps the views readable meanwhile. EXECUTE only for the roles the stack grants it to.
CREATE PROCEDURE market_data.refresh_ohlcv_rollups()
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  REFRESH MATERIALIZED VIEW CONCURRENTLY market_data.ohlcv_daily;
  REFRESH MATERIALIZED VIEW CONCURRENTLY market_data.ohlcv_weekly;
  REFRESH MATERIALIZED VIEW CONCURRENTLY market_data.ohlcv_monthly;
  REFRESH MATERIALIZED VIEW CONCURRENTLY market_data.ohlcv_quarterly;
  REFRESH MATERIALIZED VIEW CONCURRENTLY market_data.ohlcv_yearly;
END;
$$;
REVOKE EXECUTE ON PROCEDURE market_data.refresh_ohlcv_rollups() FROM PUBLIC;
-- end:vanilla

-- migrate:down
DROP PROCEDURE market_data.refresh_ohlcv_rollups();
-- if:timescaledb
SELECT remove_continuous_aggregate_policy('market_data.ohlcv_yearly');
SELECT remove_continuous_aggregate_policy('market_data.ohlcv_quarterly');
SELECT remove_continuous_aggregate_policy('market_data.ohlcv_monthly');
SELECT remove_continuous_aggregate_policy('market_data.ohlcv_weekly');
SELECT remove_continuous_aggregate_policy('market_data.ohlcv_daily');
DROP MATERIALIZED VIEW market_data.ohlcv_yearly;
DROP MATERIALIZED VIEW market_data.ohlcv_quarterly;
DROP MATERIALIZED VIEW market_data.ohlcv_monthly;
DROP MATERIALIZED VIEW market_data.ohlcv_weekly;
DROP MATERIALIZED VIEW market_data.ohlcv_daily;
-- end:timescaledb
-- if:vanilla
DROP MATERIALIZED VIEW market_data.ohlcv_yearly;
DROP MATERIALIZED VIEW market_data.ohlcv_quarterly;
DROP MATERIALIZED VIEW market_data.ohlcv_monthly;
DROP MATERIALIZED VIEW market_data.ohlcv_weekly;
DROP MATERIALIZED VIEW market_data.ohlcv_daily;
-- end:vanilla
