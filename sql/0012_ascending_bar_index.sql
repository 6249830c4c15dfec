-- The secondary index on bars runs in the order bars arrive (issue 11). 0004 declared it
-- (symbol, timeframe, time DESC), but loads append bars in ascending time: every new entry went to the
-- leftmost leaf of its (symbol, timeframe) range, splitting pages that then stay half empty. On 1,000,000
-- one-minute bars the index grew to 69 MB where the ascending one is 39 MB, and every load tool took about
-- 15% longer writing it. A B-tree is read in both directions, so "latest first" queries
-- (ORDER BY time DESC LIMIT n) are served by a backward scan of the ascending index as before
-- (bench/queries.md measures them before and after). Same name, so nothing that names it changes.
-- migrate:up
DROP INDEX market_data.ohlcv_bars_symbol_timeframe_time_idx;
CREATE INDEX ohlcv_bars_symbol_timeframe_time_idx ON market_data.ohlcv_bars (symbol, timeframe, time);

-- migrate:down
DROP INDEX market_data.ohlcv_bars_symbol_timeframe_time_idx;
CREATE INDEX ohlcv_bars_symbol_timeframe_time_idx ON market_data.ohlcv_bars (symbol, timeframe, time DESC);
