/**
 * The schema in sql/ on plain PostgreSQL 17 with TimescaleDB disabled (seed 002's `--skip-timescale`):
 * plain tables with their indexes and ordinary materialized views, applied by the real MigrationRunner as the
 * migrator with SET ROLE to the owner, as the stack runs it, after the roles, grants and default privileges
 * the stack declares (lib/access.ts), so the tests also show what the app and read-only roles can do with it.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { accessPlan, renderAccessSql } from "../../lib/access";
import { withClient } from "../../lib/db";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import {
  EXPECTED_TABLES,
  MIGRATION_FILES,
  ROLLUP_COLUMNS,
  ROLLUPS,
  WEEK_OF_DAILY_BARS,
  exec,
  insertBars,
  objectsInAppSchemas,
  rows,
  schemaRunner,
  tablesInAppSchemas,
} from "../fixtures/schema";

const DB = "market";
const PASSWORD = "schema-test-pw";

const PASSWORDS = { migrator: PASSWORD, app: PASSWORD, readonly: PASSWORD };

/** The roles, database, schemas, grants and default privileges the stack declares (lib/access.ts), for vanilla mode. */
const ACCESS = renderAccessSql(
  accessPlan({ database: DB, migratorConnectionLimit: 5, appConnectionLimit: 50, readonlyConnectionLimit: 20, timescaledb: false }),
  PASSWORDS,
);

describe("the schema on PostgreSQL 17 without TimescaleDB (vanilla mode)", () => {
  let server: Engine;
  let migrator: string;
  let app: string;
  let readonly: string;
  const runner = () => schemaRunner(migrator, { timescaledb: false, role: "market_owner" });

  beforeAll(async () => {
    server = await startPostgresServer();
    await withClient(server.url, async (c) => {
      for (const statement of ACCESS.cluster) await c.query(statement);
    });
    await withClient(server.urlFor(DB), async (c) => {
      for (const statement of ACCESS.database) await c.query(statement);
    });
    migrator = server.urlFor(DB, "market_migrator", PASSWORD);
    app = server.urlFor(DB, "market_app", PASSWORD);
    readonly = server.urlFor(DB, "market_readonly", PASSWORD);
    await runner().up();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("up creates every table as a plain table owned by the owner role, and nothing of TimescaleDB", async () => {
    expect(await tablesInAppSchemas(app)).toEqual(EXPECTED_TABLES);
    const owners = await rows<{ owner: string }>(
      app,
      `SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('audit','market_data','reference_data','research','trading')`,
    );
    expect(owners).toEqual([{ owner: "market_owner" }]);
    expect(await rows(app, `SELECT extname FROM pg_extension WHERE extname = 'timescaledb'`)).toEqual([]);
    expect((await runner().status()).every((s) => s.state === "applied")).toBe(true);
  });

  test("bars have their primary key and the symbol + timeframe + time index, ascending as bars arrive (0012)", async () => {
    const indexes = await rows<{ indexdef: string }>(
      app,
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'market_data' AND tablename = 'ohlcv_bars' ORDER BY indexname`,
    );
    expect(indexes.map((i) => i.indexdef)).toEqual([
      "CREATE UNIQUE INDEX ohlcv_bars_pkey ON market_data.ohlcv_bars USING btree (symbol, exchange, provider, timeframe, \"time\")",
      "CREATE INDEX ohlcv_bars_symbol_timeframe_time_idx ON market_data.ohlcv_bars USING btree (symbol, timeframe, \"time\")",
    ]);
  });

  test("the rollups are materialized views with a unique index each and the documented columns", async () => {
    const views = await rows<{ matviewname: string; idx: string }>(
      app,
      `SELECT m.matviewname, i.indexdef AS idx FROM pg_matviews m
         JOIN pg_indexes i ON i.schemaname = m.schemaname AND i.tablename = m.matviewname
        WHERE m.schemaname = 'market_data' ORDER BY 1`,
    );
    expect(views.map((v) => v.matviewname)).toEqual([...ROLLUPS].sort());
    for (const v of views) expect(v.idx).toMatch(/^CREATE UNIQUE INDEX .* \(symbol, exchange, provider, bucket\)$/);
    for (const view of ROLLUPS) {
      const cols = await rows<{ attname: string }>(
        app,
        `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [`market_data.${view}`],
      );
      expect(cols.map((c) => c.attname), view).toEqual(ROLLUP_COLUMNS);
    }
  });

  test("the app role loads bars and refreshes the rollups; weekly, monthly and yearly bars are right", async () => {
    await insertBars(app, "ROLL", "1d", WEEK_OF_DAILY_BARS);
    await insertBars(app, "ROLL", "1d", [
      { time: "2024-04-01T00:00:00Z", open: "101.00", high: "110", low: "100", close: "109.5", volume: "500" },
    ]);
    await insertBars(app, "ROLL", "1h", [
      { time: "2024-03-04T14:00:00Z", open: "100.10", high: "200", low: "50", close: "101", volume: "99999" },
    ]);
    await expect(exec(readonly, `CALL market_data.refresh_ohlcv_rollups()`)).rejects.toThrow(/permission denied for procedure/);
    await exec(app, `CALL market_data.refresh_ohlcv_rollups()`);
    const weekly = await rows(
      readonly,
      `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS week, open, high, low, close, volume
         FROM market_data.ohlcv_weekly WHERE symbol = 'ROLL' ORDER BY bucket`,
    );
    expect(weekly).toEqual([
      { week: "2024-03-04", open: "100.10", high: "108.25", low: "97.75", close: "101.2500", volume: "7000.5" },
      { week: "2024-04-01", open: "101.00", high: "110", low: "100", close: "109.5", volume: "500" },
    ]);
    const monthly = await rows(
      readonly,
      `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM') AS month, open, close, volume FROM market_data.ohlcv_monthly WHERE symbol = 'ROLL' ORDER BY bucket`,
    );
    expect(monthly).toEqual([
      { month: "2024-03", open: "100.10", close: "101.2500", volume: "7000.5" },
      { month: "2024-04", open: "101.00", close: "109.5", volume: "500" },
    ]);
    const quarterly = await rows(readonly, `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM') AS q FROM market_data.ohlcv_quarterly WHERE symbol = 'ROLL' ORDER BY bucket`);
    expect(quarterly).toEqual([{ q: "2024-01" }, { q: "2024-04" }]);
    const yearly = await rows(readonly, `SELECT open, high, low, close, volume FROM market_data.ohlcv_yearly WHERE symbol = 'ROLL'`);
    expect(yearly).toEqual([{ open: "100.10", high: "110", low: "97.75", close: "109.5", volume: "7500.5" }]);
  });

  test("checks and exact prices hold in vanilla mode too", async () => {
    await expect(
      insertBars(app, "BAD", "1d", [{ time: "2024-01-02T00:00:00Z", open: "10", high: "9", low: "-9.5", close: "9.8", volume: "1" }]),
    ).rejects.toThrow(/ohlcv_bars_prices_positive/);
    await insertBars(app, "EXACT", "1d", [{ time: "2024-01-02T00:00:00Z", open: "101.2500", high: "102", low: "101", close: "101.7", volume: "3" }]);
    expect(await rows(readonly, `SELECT open FROM market_data.get_market_data('EXACT', '1d')`)).toEqual([{ open: "101.2500" }]);
  });

  test("the audit trail names the app role that changed an order, and the app cannot edit the trail", async () => {
    await withClient(app, async (c) => {
      const { rows: [order] } = await c.query(
        `INSERT INTO trading.orders (client_order_id, symbol, side, order_type, quantity) VALUES ('a-1', 'MSFT', 'sell', 'market', '5.5') RETURNING id`,
      );
      await c.query(`DELETE FROM trading.orders WHERE id = $1`, [order.id]);
    });
    await withClient(migrator, async (c) => {
      await c.query(`SET ROLE market_owner`);
      await c.query(`INSERT INTO trading.orders (client_order_id, symbol, side, order_type, quantity) VALUES ('m-1', 'MSFT', 'buy', 'market', 1)`);
    });
    const log = await rows(
      app,
      `SELECT operation, session_role, acting_role, coalesce(new_row, old_row)->>'client_order_id' AS client_order_id
         FROM audit.change_log WHERE table_name = 'orders' ORDER BY id`,
    );
    expect(log).toEqual([
      { operation: "INSERT", session_role: "market_app", acting_role: "market_app", client_order_id: "a-1" },
      { operation: "DELETE", session_role: "market_app", acting_role: "market_app", client_order_id: "a-1" },
      { operation: "INSERT", session_role: "market_migrator", acting_role: "market_owner", client_order_id: "m-1" },
    ]);
    await expect(exec(app, `DELETE FROM audit.change_log`)).rejects.toThrow(/permission denied for table change_log/);
    await expect(exec(app, `UPDATE audit.change_log SET acting_role = 'someone'`)).rejects.toThrow(/permission denied/);
    await expect(
      exec(app, `INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role) VALUES ('x','y','INSERT','z','z')`),
    ).rejects.toThrow(/permission denied/);
  });

  test("the app role writes data but cannot change the schema; the read-only role only reads", async () => {
    await expect(exec(app, `CREATE TABLE market_data.mine (x int)`)).rejects.toThrow(/permission denied for schema market_data/);
    await expect(exec(app, `DROP TABLE market_data.ohlcv_bars`)).rejects.toThrow(/must be owner/);
    await expect(exec(readonly, `INSERT INTO research.strategies (name) VALUES ('s')`)).rejects.toThrow(/permission denied/);
    await exec(app, `INSERT INTO research.strategies (name) VALUES ('momentum')`);
    expect(await rows(readonly, `SELECT name, version FROM research.strategies`)).toEqual([{ name: "momentum", version: "1" }]);
  });

  test("a role the stack did not grant anything gets nothing from the migrations' objects", async () => {
    await exec(server.url, `CREATE ROLE outsider LOGIN PASSWORD '${PASSWORD}'`);
    const outsider = server.urlFor(DB, "outsider", PASSWORD);
    await expect(exec(outsider, `SELECT 1`)).rejects.toThrow(/permission denied for database "market"/);
    // Even allowed to connect, it reaches no table, view or function: the schemas are closed to PUBLIC.
    await exec(server.urlFor(DB), `GRANT CONNECT ON DATABASE market TO outsider`);
    await expect(exec(outsider, `SELECT * FROM market_data.ohlcv_bars`)).rejects.toThrow(/permission denied for schema market_data/);
    await expect(exec(outsider, `SELECT * FROM market_data.get_market_data('X', '1d')`)).rejects.toThrow(/permission denied for schema market_data/);
    await expect(exec(outsider, `SELECT * FROM audit.change_log`)).rejects.toThrow(/permission denied for schema audit/);
  });

  test("down to 0 removes every object of the schema, and up restores it", async () => {
    const down = await runner().down({ to: 0, force: true });
    expect(down.reverted).toEqual([...MIGRATION_FILES].reverse());
    expect(await objectsInAppSchemas(migrator)).toEqual([]);
    const up = await runner().up();
    expect(up.applied).toEqual(MIGRATION_FILES);
    expect(await tablesInAppSchemas(app)).toEqual(EXPECTED_TABLES);
    expect((await rows(app, `SELECT matviewname FROM pg_matviews WHERE schemaname = 'market_data' ORDER BY 1`)).length).toBe(5);
    // The restored tables get the default privileges again.
    await insertBars(app, "AGAIN", "1d", WEEK_OF_DAILY_BARS.slice(0, 1));
  });
});
