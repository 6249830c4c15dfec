-- Columnstore (compression) for the time-series tables, and a policy converting chunks older than the
-- stack's compressAfter setting. Segmenting by symbol keeps one symbol's rows together, so a query for one
-- symbol decompresses only its segments; ordering by time DESC matches "latest first". Nothing to do in
-- vanilla PostgreSQL.
-- migrate:up
-- if:timescaledb
ALTER TABLE market_data.ohlcv_bars SET (
  timescaledb.enable_columnstore = true,
  timescaledb.segmentby = 'symbol',
  timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_data.ticks SET (
  timescaledb.enable_columnstore = true,
  timescaledb.segmentby = 'symbol',
  timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_data.factor_scores SET (
  timescaledb.enable_columnstore = true,
  timescaledb.segmentby = 'symbol',
  timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_data.global_market_indices SET (
  timescaledb.enable_columnstore = true,
  timescaledb.segmentby = 'symbol',
  timescaledb.orderby = 'time DESC'
);
ALTER TABLE market_data.exchange_rate_history SET (
  timescaledb.enable_columnstore = true,
  timescaledb.segmentby = 'base_currency, quote_currency',
  timescaledb.orderby = 'time DESC'
);
CALL add_columnstore_policy('market_data.ohlcv_bars', after => INTERVAL {{compressAfter}});
CALL add_columnstore_policy('market_data.ticks', after => INTERVAL {{compressAfter}});
CALL add_columnstore_policy('market_data.factor_scores', after => INTERVAL {{compressAfter}});
CALL add_columnstore_policy('market_data.global_market_indices', after => INTERVAL {{compressAfter}});
CALL add_columnstore_policy('market_data.exchange_rate_history', after => INTERVAL {{compressAfter}});
-- end:timescaledb

-- migrate:down
-- if:timescaledb
-- Columnstore can only be switched off once no chunk is compressed, so compressed chunks go back to
-- rowstore first (keeping their rows).
CALL remove_columnstore_policy('market_data.exchange_rate_history');
CALL remove_columnstore_policy('market_data.global_market_indices');
CALL remove_columnstore_policy('market_data.factor_scores');
CALL remove_columnstore_policy('market_data.ticks');
CALL remove_columnstore_policy('market_data.ohlcv_bars');
SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks('market_data.exchange_rate_history') AS c;
SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks('market_data.global_market_indices') AS c;
SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks('market_data.factor_scores') AS c;
SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks('market_data.ticks') AS c;
SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks('market_data.ohlcv_bars') AS c;
ALTER TABLE market_data.exchange_rate_history SET (timescaledb.enable_columnstore = false);
ALTER TABLE market_data.global_market_indices SET (timescaledb.enable_columnstore = false);
ALTER TABLE market_data.factor_scores SET (timescaledb.enable_columnstore = false);
ALTER TABLE market_data.ticks SET (timescaledb.enable_columnstore = false);
ALTER TABLE market_data.ohlcv_bars SET (timescaledb.enable_columnstore = false);
-- end:timescaledb
