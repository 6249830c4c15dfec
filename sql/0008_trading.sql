-- Trading records (seed 004's orders, fills, positions, signals, trades; the runbook's portfolio
-- holdings and transactions). Money and quantities are numeric, never binary floating point (seed 002:
-- "never use float for financial data"). Every change to these tables is written to audit.change_log.
-- Identity columns: the app role inserts through their sequences (USAGE is granted by default privileges).
-- migrate:up
CREATE TABLE trading.orders (
  id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  client_order_id     text        NOT NULL UNIQUE CHECK (client_order_id <> ''),
  broker_order_id     text,
  account             text        NOT NULL DEFAULT 'default',
  strategy            text,
  symbol              text        NOT NULL CHECK (symbol <> ''),
  exchange            text        NOT NULL DEFAULT '',
  side                text        NOT NULL CHECK (side IN ('buy', 'sell')),
  order_type          text        NOT NULL CHECK (order_type IN ('market', 'limit', 'stop', 'stop_limit')),
  time_in_force       text        NOT NULL DEFAULT 'day' CHECK (time_in_force IN ('day', 'gtc', 'ioc', 'fok', 'opg', 'cls')),
  quantity            numeric     NOT NULL CHECK (quantity > 0),
  limit_price         numeric     CHECK (limit_price > 0),
  stop_price          numeric     CHECK (stop_price > 0),
  status              text        NOT NULL DEFAULT 'new'
                                  CHECK (status IN ('new', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired')),
  filled_quantity     numeric     NOT NULL DEFAULT 0,
  average_fill_price  numeric     CHECK (average_fill_price > 0),
  created_at          timestamptz NOT NULL DEFAULT now(),
  submitted_at        timestamptz,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT orders_filled_within_quantity CHECK (filled_quantity >= 0 AND filled_quantity <= quantity),
  CONSTRAINT orders_limit_price_for_limit_orders CHECK ((order_type IN ('limit', 'stop_limit')) = (limit_price IS NOT NULL)),
  CONSTRAINT orders_stop_price_for_stop_orders CHECK ((order_type IN ('stop', 'stop_limit')) = (stop_price IS NOT NULL))
);
CREATE INDEX orders_symbol_created_at_idx ON trading.orders (symbol, created_at DESC);
CREATE INDEX orders_status_symbol_idx ON trading.orders (status, symbol);

CREATE TABLE trading.fills (
  id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id          bigint      NOT NULL REFERENCES trading.orders (id),
  exchange_fill_id  text,
  filled_at         timestamptz NOT NULL,
  quantity          numeric     NOT NULL CHECK (quantity > 0),
  price             numeric     NOT NULL CHECK (price > 0),
  commission        numeric     NOT NULL DEFAULT 0 CHECK (commission >= 0),
  currency          char(3)     CHECK (currency ~ '^[A-Z]{3}$'),
  liquidity         text        CHECK (liquidity IN ('maker', 'taker')),
  UNIQUE (order_id, exchange_fill_id)
);
CREATE INDEX fills_order_filled_at_idx ON trading.fills (order_id, filled_at);

-- Current position per account and instrument; quantity is signed (negative = short).
CREATE TABLE trading.positions (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account         text        NOT NULL DEFAULT 'default',
  symbol          text        NOT NULL CHECK (symbol <> ''),
  exchange        text        NOT NULL DEFAULT '',
  quantity        numeric     NOT NULL DEFAULT 0,
  average_cost    numeric     CHECK (average_cost >= 0),
  realized_pnl    numeric     NOT NULL DEFAULT 0,
  opened_at       timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account, symbol, exchange)
);

CREATE TABLE trading.signals (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  strategy      text        NOT NULL CHECK (strategy <> ''),
  symbol        text        NOT NULL CHECK (symbol <> ''),
  exchange      text        NOT NULL DEFAULT '',
  timeframe     text,
  generated_at  timestamptz NOT NULL DEFAULT now(),
  signal        text        NOT NULL CHECK (signal IN ('buy', 'sell', 'hold')),
  strength      numeric     CHECK (strength BETWEEN -1 AND 1),
  price         numeric     CHECK (price > 0),
  metadata      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX signals_symbol_generated_at_idx ON trading.signals (symbol, generated_at DESC);
CREATE INDEX signals_symbol_signal_idx ON trading.signals (symbol, signal);

-- Round trips: opened by one order, closed (later) by another.
CREATE TABLE trading.trades (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account         text        NOT NULL DEFAULT 'default',
  strategy        text,
  symbol          text        NOT NULL CHECK (symbol <> ''),
  exchange        text        NOT NULL DEFAULT '',
  direction       text        NOT NULL CHECK (direction IN ('long', 'short')),
  quantity        numeric     NOT NULL CHECK (quantity > 0),
  entry_price     numeric     NOT NULL CHECK (entry_price > 0),
  exit_price      numeric     CHECK (exit_price > 0),
  opened_at       timestamptz NOT NULL,
  closed_at       timestamptz,
  commission      numeric     NOT NULL DEFAULT 0 CHECK (commission >= 0),
  pnl             numeric,
  entry_order_id  bigint      REFERENCES trading.orders (id),
  exit_order_id   bigint      REFERENCES trading.orders (id),
  CONSTRAINT trades_closed_after_opened CHECK (closed_at IS NULL OR closed_at >= opened_at),
  CONSTRAINT trades_exit_price_when_closed CHECK ((closed_at IS NULL) = (exit_price IS NULL))
);
CREATE INDEX trades_symbol_opened_at_idx ON trading.trades (symbol, opened_at DESC);
CREATE INDEX trades_symbol_closed_at_idx ON trading.trades (symbol, closed_at DESC) WHERE closed_at IS NOT NULL;

-- Portfolio snapshots: what a portfolio held at a point in time.
CREATE TABLE trading.portfolio_holdings (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  portfolio     text        NOT NULL CHECK (portfolio <> ''),
  symbol        text        NOT NULL CHECK (symbol <> ''),
  region        text        NOT NULL DEFAULT '',
  as_of         timestamptz NOT NULL,
  quantity      numeric     NOT NULL,
  average_cost  numeric     CHECK (average_cost >= 0),
  market_value  numeric,
  weight        numeric     CHECK (weight BETWEEN -100 AND 100),
  UNIQUE (portfolio, symbol, region, as_of)
);
CREATE INDEX portfolio_holdings_portfolio_as_of_idx ON trading.portfolio_holdings (portfolio, as_of DESC);

-- Cash and position movements of a portfolio.
CREATE TABLE trading.portfolio_transactions (
  id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  portfolio         text        NOT NULL CHECK (portfolio <> ''),
  executed_at       timestamptz NOT NULL,
  transaction_type  text        NOT NULL CHECK (transaction_type IN ('buy', 'sell', 'dividend', 'interest', 'deposit', 'withdrawal', 'fee', 'split')),
  symbol            text,
  region            text        NOT NULL DEFAULT '',
  quantity          numeric,
  price             numeric     CHECK (price >= 0),
  amount            numeric     NOT NULL,
  fees              numeric     NOT NULL DEFAULT 0 CHECK (fees >= 0),
  currency          char(3)     NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  order_id          bigint      REFERENCES trading.orders (id),
  notes             text,
  CONSTRAINT portfolio_transactions_symbol_for_trades CHECK (transaction_type NOT IN ('buy', 'sell', 'split') OR symbol IS NOT NULL)
);
CREATE INDEX portfolio_transactions_portfolio_executed_at_idx ON trading.portfolio_transactions (portfolio, executed_at DESC);

CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE OR DELETE ON trading.orders
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER fills_audit AFTER INSERT OR UPDATE OR DELETE ON trading.fills
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER positions_audit AFTER INSERT OR UPDATE OR DELETE ON trading.positions
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER signals_audit AFTER INSERT OR UPDATE OR DELETE ON trading.signals
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER trades_audit AFTER INSERT OR UPDATE OR DELETE ON trading.trades
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER portfolio_holdings_audit AFTER INSERT OR UPDATE OR DELETE ON trading.portfolio_holdings
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();
CREATE TRIGGER portfolio_transactions_audit AFTER INSERT OR UPDATE OR DELETE ON trading.portfolio_transactions
  FOR EACH ROW EXECUTE FUNCTION audit.record_change();

-- migrate:down
DROP TRIGGER portfolio_transactions_audit ON trading.portfolio_transactions;
DROP TRIGGER portfolio_holdings_audit ON trading.portfolio_holdings;
DROP TRIGGER trades_audit ON trading.trades;
DROP TRIGGER signals_audit ON trading.signals;
DROP TRIGGER positions_audit ON trading.positions;
DROP TRIGGER fills_audit ON trading.fills;
DROP TRIGGER orders_audit ON trading.orders;
DROP TABLE trading.portfolio_transactions;
DROP TABLE trading.portfolio_holdings;
DROP TABLE trading.trades;
DROP TABLE trading.signals;
DROP TABLE trading.positions;
DROP TABLE trading.fills;
DROP TABLE trading.orders;
