-- The five schemas of docs/ARCHITECTURE.md. The Pulumi stack creates them too (owned by <db>_owner);
-- IF NOT EXISTS lets the CLI build the schema on an empty database as well.
-- migrate:up
-- if:timescaledb
-- A no-op when the extension exists (as the stack ensures); on a bare server it needs a superuser.
CREATE EXTENSION IF NOT EXISTS timescaledb;
-- end:timescaledb
CREATE SCHEMA IF NOT EXISTS market_data;
CREATE SCHEMA IF NOT EXISTS reference_data;
CREATE SCHEMA IF NOT EXISTS trading;
CREATE SCHEMA IF NOT EXISTS research;
CREATE SCHEMA IF NOT EXISTS audit;

-- migrate:down
-- Nothing: the schemas (and the extension) belong to the stack, and dropping them here could take
-- objects this project did not create with them.
