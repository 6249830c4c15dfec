-- Time-series market data. Prices are unconstrained numeric so a price round-trips exactly as written in
-- the source file. Every table has its time column in its primary key, as hypertables require, and an
-- index for the seeds' query: one symbol (and timeframe), a time range, latest first.
-- migrate:up
CREATE TABLE market_data.ohlcv_bars (
  symbol     text        NOT NULL,
  exchange   text        NOT NULL DEFAULT '',
  provider   text        NOT NULL DEFAULT '',
  timeframe  text        NOT NULL,
  time       timestamptz NOT NULL,
  open       numeric     NOT NULL,
  high       numeric     NOT NULL,
  low        numeric     NOT NULL,
  close      numeric     NOT NULL,
  volume     numeric     NOT NULL DEFAULT 0,
  adj_close  numeric,
  PRIMARY KEY (symbol, exchange, provider, timeframe, time),
  CONSTRAINT ohlcv_bars_symbol_not_empty CHECK (symbol <> ''),
  CONSTRAINT ohlcv_bars_timeframe_not_empty CHECK (timeframe <> ''),
  CONSTRAINT ohlcv_bars_prices_positive CHECK (open > 0 AND high > 0 AND low > 0 AND close > 0 AND (adj_close IS NULL OR adj_close > 0)),
  CONSTRAINT ohlcv_bars_high_is_highest CHECK (high >= greatest(open, close, low)),
  CONSTRAINT ohlcv_bars_low_is_lowest CHECK (low <= least(open, close)),
  CONSTRAINT ohlcv_bars_volume_not_negative CHECK (volume >= 0)
);
-- The primary key serves symbol + exchange + provider + timeframe + range; this one serves queries that
-- name only the symbol and timeframe.
CREATE INDEX ohlcv_bars_symbol_timeframe_time_idx ON market_data.ohlcv_bars (symbol, timeframe, time DESC);

-- Trades as they print (ticks). No natural key: venues repeat timestamps and not all send trade ids.
CREATE TABLE market_data.ticks (
  symbol     text        NOT NULL CHECK (symbol <> ''),
  exchange   text        NOT NULL DEFAULT '',
  provider   text        NOT NULL DEFAULT '',
  time       timestamptz NOT NULL,
  price      numeric     NOT NULL CHECK (price > 0),
  size       numeric     NOT NULL CHECK (size >= 0),
  side       text        CHECK (side IN ('buy', 'sell')),
  trade_id   text,
  conditions text[]
);
CREATE INDEX ticks_symbol_time_idx ON market_data.ticks (symbol, time DESC);

-- Factor values per symbol and date (runbook: a hypertable next to the bars).
CREATE TABLE market_data.factor_scores (
  symbol       text        NOT NULL CHECK (symbol <> ''),
  region       text        NOT NULL DEFAULT '',
  factor_name  text        NOT NULL CHECK (factor_name <> ''),
  time         timestamptz NOT NULL,
  score        numeric     NOT NULL,
  percentile   numeric     CHECK (percentile BETWEEN 0 AND 100),
  PRIMARY KEY (symbol, region, factor_name, time)
);
CREATE INDEX factor_scores_factor_time_idx ON market_data.factor_scores (factor_name, time DESC);

-- Market index values (S&P 500, KOSPI, ...), daily or intraday.
CREATE TABLE market_data.global_market_indices (
  symbol          text        NOT NULL CHECK (symbol <> ''),
  region          text        NOT NULL DEFAULT '',
  name            text,
  time            timestamptz NOT NULL,
  open            numeric     CHECK (open > 0),
  high            numeric     CHECK (high > 0),
  low             numeric     CHECK (low > 0),
  close           numeric     NOT NULL CHECK (close > 0),
  volume          numeric     CHECK (volume >= 0),
  change_percent  numeric,
  PRIMARY KEY (symbol, region, time),
  CHECK (high IS NULL OR low IS NULL OR high >= low)
);

-- Exchange rates: price of one unit of base_currency in quote_currency.
CREATE TABLE market_data.exchange_rate_history (
  base_currency   char(3)     NOT NULL CHECK (base_currency ~ '^[A-Z]{3}$'),
  quote_currency  char(3)     NOT NULL CHECK (quote_currency ~ '^[A-Z]{3}$'),
  provider        text        NOT NULL DEFAULT '',
  time            timestamptz NOT NULL,
  rate            numeric     NOT NULL CHECK (rate > 0),
  PRIMARY KEY (base_currency, quote_currency, provider, time),
  CHECK (base_currency <> quote_currency)
);

-- if:timescaledb
-- The indexes above are created on each chunk; TimescaleDB's default time index is left out because no
-- seed query ranges over time across all symbols.
SELECT create_hypertable('market_data.ohlcv_bars', by_range('time', INTERVAL {{ohlcvChunkInterval}}), create_default_indexes => false);
SELECT create_hypertable('market_data.ticks', by_range('time', INTERVAL {{tickChunkInterval}}), create_default_indexes => false);
SELECT create_hypertable('market_data.factor_scores', by_range('time', INTERVAL {{ohlcvChunkInterval}}), create_default_indexes => false);
SELECT create_hypertable('market_data.global_market_indices', by_range('time', INTERVAL {{ohlcvChunkInterval}}), create_default_indexes => false);
SELECT create_hypertable('market_data.exchange_rate_history', by_range('time', INTERVAL {{ohlcvChunkInterval}}), create_default_indexes => false);
-- end:timescaledb

-- Bars of one symbol and timeframe in [p_from, p_to], oldest first (the order a backtest replays them).
-- NULL provider means any provider; NULL bounds are open. Plain SQL without SET options so the planner
-- can inline it and use the indexes above.
CREATE FUNCTION market_data.get_market_data(
  p_symbol    text,
  p_timeframe text,
  p_provider  text DEFAULT NULL,
  p_from      timestamptz DEFAULT NULL,
  p_to        timestamptz DEFAULT NULL
) RETURNS TABLE (
  "time"     timestamptz,
  symbol     text,
  exchange   text,
  provider   text,
  timeframe  text,
  open       numeric,
  high       numeric,
  low        numeric,
  close      numeric,
  volume     numeric,
  adj_close  numeric
)
LANGUAGE sql STABLE
AS $$
  SELECT b.time, b.symbol, b.exchange, b.provider, b.timeframe, b.open, b.high, b.low, b.close, b.volume, b.adj_close
  FROM market_data.ohlcv_bars AS b
  WHERE b.symbol = p_symbol
    AND b.timeframe = p_timeframe
    AND (p_provider IS NULL OR b.provider = p_provider)
    AND (p_from IS NULL OR b.time >= p_from)
    AND (p_to IS NULL OR b.time <= p_to)
  ORDER BY b.time, b.exchange, b.provider
$$;

-- The newest p_limit bars of one symbol and timeframe, newest first (what a live strategy asks for).
CREATE FUNCTION market_data.get_latest_bars(
  p_symbol    text,
  p_timeframe text,
  p_limit     integer DEFAULT 1000,
  p_provider  text DEFAULT NULL
) RETURNS SETOF market_data.ohlcv_bars
LANGUAGE sql STABLE
AS $$
  SELECT b.*
  FROM market_data.ohlcv_bars AS b
  WHERE b.symbol = p_symbol
    AND b.timeframe = p_timeframe
    AND (p_provider IS NULL OR b.provider = p_provider)
  ORDER BY b.time DESC
  LIMIT p_limit
$$;

-- migrate:down
DROP FUNCTION market_data.get_latest_bars(text, text, integer, text);
DROP FUNCTION market_data.get_market_data(text, text, text, timestamptz, timestamptz);
DROP TABLE market_data.exchange_rate_history;
DROP TABLE market_data.global_market_indices;
DROP TABLE market_data.factor_scores;
DROP TABLE market_data.ticks;
DROP TABLE market_data.ohlcv_bars;
