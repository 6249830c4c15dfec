-- Reference data of the runbook (seed 001): the ticker universe per region and what is known about
-- each ticker. Money, ratios and counts are numeric so values round-trip exactly as the source wrote them.
-- migrate:up
CREATE TABLE reference_data.tickers (
  ticker        text        NOT NULL CHECK (ticker <> ''),
  region        text        NOT NULL CHECK (region <> ''),
  name          text,
  exchange      text,
  currency      char(3)     CHECK (currency ~ '^[A-Z]{3}$'),
  asset_type    text        NOT NULL DEFAULT 'stock'
                            CHECK (asset_type IN ('stock', 'etf', 'index', 'fund', 'bond', 'crypto', 'fx', 'future', 'option', 'other')),
  is_active     boolean     NOT NULL DEFAULT true,
  listed_on     date,
  delisted_on   date,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ticker, region),
  CHECK (delisted_on IS NULL OR listed_on IS NULL OR delisted_on >= listed_on)
);
CREATE INDEX tickers_region_asset_type_idx ON reference_data.tickers (region, asset_type) WHERE is_active;

CREATE TABLE reference_data.stock_details (
  ticker              text        NOT NULL,
  region              text        NOT NULL,
  sector              text,
  industry            text,
  market_cap          numeric     CHECK (market_cap >= 0),
  shares_outstanding  numeric     CHECK (shares_outstanding >= 0),
  is_spac             boolean     NOT NULL DEFAULT false,
  is_preferred        boolean     NOT NULL DEFAULT false,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ticker, region),
  FOREIGN KEY (ticker, region) REFERENCES reference_data.tickers (ticker, region) ON DELETE CASCADE
);
CREATE INDEX stock_details_sector_idx ON reference_data.stock_details (region, sector);

CREATE TABLE reference_data.etf_details (
  ticker            text        NOT NULL,
  region            text        NOT NULL,
  issuer            text,
  underlying_index  text,
  expense_ratio     numeric     CHECK (expense_ratio >= 0),
  aum               numeric     CHECK (aum >= 0),
  leverage          numeric,
  inception_date    date,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ticker, region),
  FOREIGN KEY (ticker, region) REFERENCES reference_data.tickers (ticker, region) ON DELETE CASCADE
);

CREATE TABLE reference_data.etf_holdings (
  etf_ticker      text    NOT NULL,
  region          text    NOT NULL,
  holding_ticker  text    NOT NULL CHECK (holding_ticker <> ''),
  as_of_date      date    NOT NULL,
  weight          numeric CHECK (weight >= 0 AND weight <= 100),
  shares          numeric CHECK (shares >= 0),
  market_value    numeric,
  PRIMARY KEY (etf_ticker, region, holding_ticker, as_of_date),
  FOREIGN KEY (etf_ticker, region) REFERENCES reference_data.etf_details (ticker, region) ON DELETE CASCADE
);
CREATE INDEX etf_holdings_holding_idx ON reference_data.etf_holdings (holding_ticker, as_of_date DESC);

CREATE TABLE reference_data.ticker_fundamentals (
  ticker          text    NOT NULL,
  region          text    NOT NULL,
  period_end      date    NOT NULL,
  period_type     text    NOT NULL DEFAULT 'daily' CHECK (period_type IN ('daily', 'quarterly', 'annual')),
  per             numeric,
  pbr             numeric,
  psr             numeric,
  eps             numeric,
  bps             numeric,
  roe             numeric,
  dividend_yield  numeric CHECK (dividend_yield >= 0),
  market_cap      numeric CHECK (market_cap >= 0),
  data_source     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ticker, region, period_end, period_type),
  FOREIGN KEY (ticker, region) REFERENCES reference_data.tickers (ticker, region) ON DELETE CASCADE
);
CREATE INDEX ticker_fundamentals_latest_idx ON reference_data.ticker_fundamentals (ticker, region, period_type, period_end DESC);

CREATE TABLE reference_data.technical_analysis (
  ticker        text    NOT NULL,
  region        text    NOT NULL,
  timeframe     text    NOT NULL DEFAULT '1d' CHECK (timeframe <> ''),
  analysis_date date    NOT NULL,
  ma_5          numeric,
  ma_20         numeric,
  ma_60         numeric,
  ma_120        numeric,
  ma_200        numeric,
  rsi_14        numeric CHECK (rsi_14 BETWEEN 0 AND 100),
  macd          numeric,
  macd_signal   numeric,
  bb_upper      numeric,
  bb_lower      numeric,
  atr_14        numeric CHECK (atr_14 >= 0),
  stage         text,
  signal        text    CHECK (signal IN ('buy', 'sell', 'hold')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ticker, region, timeframe, analysis_date),
  FOREIGN KEY (ticker, region) REFERENCES reference_data.tickers (ticker, region) ON DELETE CASCADE
);

-- migrate:down
DROP TABLE reference_data.technical_analysis;
DROP TABLE reference_data.ticker_fundamentals;
DROP TABLE reference_data.etf_holdings;
DROP TABLE reference_data.etf_details;
DROP TABLE reference_data.stock_details;
DROP TABLE reference_data.tickers;
