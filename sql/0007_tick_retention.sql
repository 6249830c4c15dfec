-- Ticks older than the stack's tickRetention setting are dropped chunk by chunk. An empty setting (the
-- prod default) keeps every tick, and this migration then does nothing. Vanilla PostgreSQL has no
-- scheduler, so there is no retention there.
-- migrate:up
-- if:timescaledb
-- if:tickRetention
SELECT add_retention_policy('market_data.ticks', drop_after => INTERVAL {{tickRetention}});
-- end:tickRetention
-- end:timescaledb

-- migrate:down
-- if:timescaledb
-- if_exists: the policy exists only when tickRetention was set when this migration ran.
SELECT remove_retention_policy('market_data.ticks', if_exists => true);
-- end:timescaledb
