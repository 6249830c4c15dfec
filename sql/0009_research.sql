-- Research records of the runbook's quant platform: strategies and the results of backtests, walk-forward
-- analyses and parameter optimizations. Returns, ratios and money are numeric (exact, as computed).
-- migrate:up
CREATE TABLE research.strategies (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text        NOT NULL CHECK (name <> ''),
  version      text        NOT NULL DEFAULT '1',
  description  text,
  parameters   jsonb       NOT NULL DEFAULT '{}',
  is_active    boolean     NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (name, version)
);

CREATE TABLE research.backtest_results (
  id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  strategy_id        bigint      NOT NULL REFERENCES research.strategies (id) ON DELETE CASCADE,
  run_at             timestamptz NOT NULL DEFAULT now(),
  period_start       date        NOT NULL,
  period_end         date        NOT NULL,
  symbols            text[]      NOT NULL DEFAULT '{}',
  timeframe          text,
  parameters         jsonb       NOT NULL DEFAULT '{}',
  initial_capital    numeric     NOT NULL CHECK (initial_capital > 0),
  final_capital      numeric     NOT NULL,
  total_return       numeric,
  annualized_return  numeric,
  volatility         numeric     CHECK (volatility >= 0),
  sharpe_ratio       numeric,
  sortino_ratio      numeric,
  max_drawdown       numeric     CHECK (max_drawdown BETWEEN 0 AND 1),
  win_rate           numeric     CHECK (win_rate BETWEEN 0 AND 1),
  trade_count        integer     NOT NULL DEFAULT 0 CHECK (trade_count >= 0),
  metrics            jsonb       NOT NULL DEFAULT '{}',
  CONSTRAINT backtest_results_period_ordered CHECK (period_end >= period_start)
);
CREATE INDEX backtest_results_strategy_run_at_idx ON research.backtest_results (strategy_id, run_at DESC);

CREATE TABLE research.walk_forward_results (
  id                     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  strategy_id            bigint      NOT NULL REFERENCES research.strategies (id) ON DELETE CASCADE,
  run_id                 uuid        NOT NULL,
  window_index           integer     NOT NULL CHECK (window_index >= 0),
  train_start            date        NOT NULL,
  train_end              date        NOT NULL,
  test_start             date        NOT NULL,
  test_end               date        NOT NULL,
  parameters             jsonb       NOT NULL DEFAULT '{}',
  in_sample_return       numeric,
  out_of_sample_return   numeric,
  in_sample_sharpe       numeric,
  out_of_sample_sharpe   numeric,
  created_at             timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, window_index),
  CONSTRAINT walk_forward_windows_ordered CHECK (train_end >= train_start AND test_start >= train_end AND test_end >= test_start)
);
CREATE INDEX walk_forward_results_strategy_idx ON research.walk_forward_results (strategy_id, created_at DESC);

CREATE TABLE research.optimization_history (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  strategy_id      bigint      NOT NULL REFERENCES research.strategies (id) ON DELETE CASCADE,
  run_id           uuid        NOT NULL,
  trial            integer     NOT NULL CHECK (trial >= 0),
  method           text        NOT NULL DEFAULT 'grid' CHECK (method IN ('grid', 'random', 'bayesian', 'genetic', 'other')),
  parameters       jsonb       NOT NULL,
  objective        text        NOT NULL,
  objective_value  numeric,
  backtest_id      bigint      REFERENCES research.backtest_results (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, trial)
);
CREATE INDEX optimization_history_strategy_value_idx ON research.optimization_history (strategy_id, objective, objective_value DESC);

-- migrate:down
DROP TABLE research.optimization_history;
DROP TABLE research.walk_forward_results;
DROP TABLE research.backtest_results;
DROP TABLE research.strategies;
