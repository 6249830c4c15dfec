/**
 * The schema in sql/ on TimescaleDB, native (PostgreSQL 15, as the stack's container runs it: the scheduler runs
 * the policies) and the PGlite build (PostgreSQL 17.5 + TimescaleDB 2.23), applied by the real MigrationRunner:
 * up, down to zero, up again, checked through timescaledb_information, plus what a user of the tables notices
 * (checks, exact prices, rollups, helper functions, the audit trail).
 * PGlite accepts one connection at a time, so every step below opens and closes its own.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type Engine, startTimescaleEngine, startTimescaleServer } from "../fixtures/engines";
import {
  EXPECTED_TABLES,
  MIGRATION_FILES,
  ROLLUP_COLUMNS,
  ROLLUPS,
  TEST_VARIABLES,
  WEEK_OF_DAILY_BARS,
  exec,
  insertBars,
  objectsInAppSchemas,
  rows,
  schemaRunner,
  tablesInAppSchemas,
} from "../fixtures/schema";

const HYPERTABLES = [
  "market_data.exchange_rate_history",
  "market_data.factor_scores",
  "market_data.global_market_indices",
  "market_data.ohlcv_bars",
  "market_data.ticks",
];

/** Jobs the migrations create (TimescaleDB's own housekeeping jobs have ids below 1000). */
async function policyJobs(url: string) {
  return rows<{ proc_name: string; target: string; schedule_interval: string; config: Record<string, unknown> }>(
    url,
    `SELECT proc_name, hypertable_schema || '.' || hypertable_name AS target, schedule_interval::text, config
       FROM timescaledb_information.jobs
      WHERE job_id >= 1000
      ORDER BY proc_name, target`,
  );
}

async function hypertableIntervals(url: string) {
  return rows<{ hypertable: string; column_name: string; time_interval: string }>(
    url,
    `SELECT hypertable_schema || '.' || hypertable_name AS hypertable, column_name, time_interval::text
       FROM timescaledb_information.dimensions
      WHERE hypertable_schema = 'market_data'
      ORDER BY 1`,
  );
}

describe.each([
  { name: "native TimescaleDB (PostgreSQL 15)", start: startTimescaleServer },
  { name: "TimescaleDB (PGlite)", start: startTimescaleEngine },
])("the schema on $name", ({ start }) => {
  let engine: Engine;
  let url: string;
  beforeAll(async () => {
    engine = await start();
    url = engine.url;
    await schemaRunner(url, { timescaledb: true }).up();
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("up applies every migration and status shows none pending", async () => {
    const status = await schemaRunner(url, { timescaledb: true }).status();
    expect(status.map((s) => `${s.file} ${s.state}`)).toEqual(MIGRATION_FILES.map((f) => `${f} applied`));
    expect(MIGRATION_FILES.slice(0, 2)).toEqual(["0001_schemas.sql", "0002_audit.sql"]);
    expect(await schemaRunner(url, { timescaledb: true }).plan()).toEqual([]);
    expect(await tablesInAppSchemas(url)).toEqual(expect.arrayContaining(EXPECTED_TABLES));
  });

  test("the time-series tables are hypertables chunked by the interval settings", async () => {
    expect(await hypertableIntervals(url)).toEqual([
      { hypertable: "market_data.exchange_rate_history", column_name: "time", time_interval: "14 days" },
      { hypertable: "market_data.factor_scores", column_name: "time", time_interval: "14 days" },
      { hypertable: "market_data.global_market_indices", column_name: "time", time_interval: "14 days" },
      { hypertable: "market_data.ohlcv_bars", column_name: "time", time_interval: "14 days" },
      { hypertable: "market_data.ticks", column_name: "time", time_interval: "02:00:00" },
    ]);
  });

  test("bars are stored as columnstore segmented by symbol and ordered by time, latest first", async () => {
    const settings = await rows(
      url,
      `SELECT hypertable::text, segmentby, orderby FROM timescaledb_information.hypertable_columnstore_settings
        WHERE hypertable::text LIKE 'market_data.%' ORDER BY 1`,
    );
    expect(settings).toEqual([
      { hypertable: "market_data.exchange_rate_history", segmentby: "base_currency,quote_currency", orderby: '"time" DESC' },
      { hypertable: "market_data.factor_scores", segmentby: "symbol", orderby: '"time" DESC' },
      { hypertable: "market_data.global_market_indices", segmentby: "symbol", orderby: '"time" DESC' },
      { hypertable: "market_data.ohlcv_bars", segmentby: "symbol", orderby: '"time" DESC' },
      { hypertable: "market_data.ticks", segmentby: "symbol", orderby: '"time" DESC' },
    ]);
  });

  test("policies: columnstore after compressAfter, rollup refresh every caggRefreshInterval, tick retention", async () => {
    const jobs = await policyJobs(url);
    const compression = jobs.filter((j) => j.proc_name === "policy_compression");
    expect(compression.map((j) => [j.target, j.config.compress_after])).toEqual(
      HYPERTABLES.map((h) => [h, TEST_VARIABLES.compressAfter]),
    );
    const refresh = jobs.filter((j) => j.proc_name === "policy_refresh_continuous_aggregate");
    expect(refresh.map((j) => [j.target, j.schedule_interval, j.config.start_offset, j.config.end_offset]).sort()).toEqual(
      [...ROLLUPS].sort().map((v) => [`market_data.${v}`, "00:20:00", null, null]),
    );
    const retention = jobs.filter((j) => j.proc_name === "policy_retention");
    expect(retention.map((j) => [j.target, j.config.drop_after])).toEqual([["market_data.ticks", "120 days"]]);
    expect(jobs).toHaveLength(compression.length + refresh.length + retention.length);
  });

  test("the five rollups are continuous aggregates with real-time results and the documented columns", async () => {
    const caggs = await rows(
      url,
      `SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = 'market_data' ORDER BY view_name`,
    );
    expect(caggs).toEqual([...ROLLUPS].sort().map((v) => ({ view_name: v, materialized_only: false })));
    for (const view of ROLLUPS) {
      const cols = await rows<{ column_name: string }>(
        url,
        `SELECT column_name FROM information_schema.columns WHERE table_schema = 'market_data' AND table_name = $1 ORDER BY ordinal_position`,
        [view],
      );
      expect(cols.map((c) => c.column_name), view).toEqual(ROLLUP_COLUMNS);
    }
  });

  test("no money, price or quantity column is binary floating point", async () => {
    const floats = await rows(
      url,
      `SELECT table_schema || '.' || table_name || '.' || column_name AS col FROM information_schema.columns
        WHERE table_schema IN ('audit','market_data','reference_data','research','trading')
          AND data_type IN ('real', 'double precision')`,
    );
    expect(floats).toEqual([]);
  });

  test("a bar with a price that is not positive or a negative volume is rejected, naming the check; inconsistent OHLC are the loader's decision (0013)", async () => {
    await expect(
      insertBars(url, "BAD", "1d", [{ time: "2024-01-02T00:00:00Z", open: "10", high: "0", low: "9.5", close: "9.8", volume: "1" }]),
    ).rejects.toThrow(/ohlcv_bars_prices_positive/);
    await insertBars(url, "KEPT", "1d", [{ time: "2024-01-02T00:00:00Z", open: "10", high: "9", low: "9.5", close: "9.8", volume: "1" }]);
    // Reverting 0013 is refused while such a bar exists (the migration's down says so); the later tests revert.
    await exec(url, "DELETE FROM market_data.ohlcv_bars WHERE symbol = 'KEPT'");
    await expect(
      insertBars(url, "BAD", "1d", [{ time: "2024-01-02T00:00:00Z", open: "10", high: "11", low: "9", close: "10", volume: "-1" }]),
    ).rejects.toThrow(/ohlcv_bars_volume_not_negative/);
    await expect(
      insertBars(url, "BAD", "1d", [{ time: "2024-01-02T00:00:00Z", open: "0", high: "11", low: "0", close: "10", volume: "1" }]),
    ).rejects.toThrow(/ohlcv_bars_prices_positive/);
    expect(await rows(url, `SELECT count(*)::int AS n FROM market_data.ohlcv_bars WHERE symbol = 'BAD'`)).toEqual([{ n: 0 }]);
  });

  test("prices round-trip exactly as written, trailing zeros included", async () => {
    await insertBars(url, "EXACT", "1d", [
      { time: "2024-01-02T00:00:00Z", open: "101.2500", high: "101.2500", low: "0.00000001", close: "0.1", volume: "12345678901234567890" },
    ]);
    const [bar] = await rows(url, `SELECT open, low, close, volume FROM market_data.ohlcv_bars WHERE symbol = 'EXACT'`);
    expect(bar).toEqual({ open: "101.2500", low: "0.00000001", close: "0.1", volume: "12345678901234567890" });
  });

  test("daily bars roll up into the daily and weekly aggregates; hourly bars do not count twice", async () => {
    await insertBars(url, "ROLL", "1d", WEEK_OF_DAILY_BARS);
    // Hourly bars of the same days must not be summed into the daily rollup (it is built from '1d' bars).
    await insertBars(url, "ROLL", "1h", [
      { time: "2024-03-04T14:00:00Z", open: "100.10", high: "200", low: "50", close: "101", volume: "99999" },
    ]);
    await exec(url, `CALL refresh_continuous_aggregate('market_data.ohlcv_daily', NULL, NULL)`);
    await exec(url, `CALL refresh_continuous_aggregate('market_data.ohlcv_weekly', NULL, NULL)`);
    const daily = await rows(
      url,
      `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, open, high, low, close, volume
         FROM market_data.ohlcv_daily WHERE symbol = 'ROLL' ORDER BY bucket`,
    );
    expect(daily).toEqual(
      WEEK_OF_DAILY_BARS.map((b) => ({ day: b.time.slice(0, 10), open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume })),
    );
    const weekly = await rows(
      url,
      `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS week, exchange, provider, open, high, low, close, volume
         FROM market_data.ohlcv_weekly WHERE symbol = 'ROLL'`,
    );
    expect(weekly).toEqual([
      { week: "2024-03-04", exchange: "XNYS", provider: "test", open: "100.10", high: "108.25", low: "97.75", close: "101.2500", volume: "7000.5" },
    ]);
    // Real-time aggregation: monthly was never refreshed, yet shows the week through the daily level.
    const monthly = await rows(url, `SELECT open, close, volume FROM market_data.ohlcv_monthly WHERE symbol = 'ROLL'`);
    expect(monthly).toEqual([{ open: "100.10", close: "101.2500", volume: "7000.5" }]);
  });

  test("refresh_ohlcv_rollups() materializes every level, bottom-up", async () => {
    const materialized = async () =>
      rows<{ view_name: string; n: number }>(
        url,
        `SELECT view_name, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I',
                materialization_hypertable_schema, materialization_hypertable_name), false, true, '')))[1]::text::int AS n
           FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'market_data' ORDER BY view_name`,
      );
    expect((await materialized()).find((v) => v.view_name === "ohlcv_yearly")?.n).toBe(0);
    await exec(url, `CALL market_data.refresh_ohlcv_rollups()`);
    const after = await materialized();
    expect(after.every((v) => v.n > 0), JSON.stringify(after)).toBe(true);
    const [yearly] = await rows(url, `SELECT open, high, low, close, volume FROM market_data.ohlcv_yearly WHERE symbol = 'ROLL'`);
    expect(yearly).toEqual({ open: "100.10", high: "108.25", low: "97.75", close: "101.2500", volume: "7000.5" });
  });

  test("get_market_data returns one symbol's bars in the range, oldest first; get_latest_bars newest first", async () => {
    await insertBars(url, "GMD", "1d", WEEK_OF_DAILY_BARS);
    await insertBars(url, "GMD", "1d", WEEK_OF_DAILY_BARS.slice(0, 1), "other");
    const range = await rows<{ day: string; close: string }>(
      url,
      `SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, close
         FROM market_data.get_market_data('GMD', '1d', 'test', '2024-03-05', '2024-03-07')`,
    );
    expect(range).toEqual([
      { day: "2024-03-05", close: "107.00" },
      { day: "2024-03-06", close: "98.00" },
      { day: "2024-03-07", close: "100.00" },
    ]);
    // Two providers hold 03-04: without a provider, one bar per time by market_data.provider_precedence (0011).
    const anyProvider = `SELECT provider FROM market_data.get_market_data('GMD', '1d', NULL, NULL, '2024-03-04')`;
    await expect(rows(url, anyProvider)).rejects.toThrow(/held by providers 'other', 'test', none ranked/);
    await exec(url, `INSERT INTO market_data.provider_precedence (provider, rank) VALUES ('other', 1)`);
    expect(await rows(url, anyProvider)).toEqual([{ provider: "other" }]);
    await exec(url, `DELETE FROM market_data.provider_precedence`);
    const latest = await rows(url, `SELECT to_char(time AT TIME ZONE 'UTC', 'MM-DD') AS d FROM market_data.get_latest_bars('GMD', '1d', 2, 'test')`);
    expect(latest).toEqual([{ d: "03-08" }, { d: "03-07" }]);
  });

  test("the audit trail records who changed an order, how, and the row before and after", async () => {
    await withClient(url, async (c) => {
      const { rows: [order] } = await c.query(
        `INSERT INTO trading.orders (client_order_id, symbol, side, order_type, quantity, limit_price)
         VALUES ('c-1', 'AAPL', 'buy', 'limit', '10', '189.9900') RETURNING id`,
      );
      await c.query(`UPDATE trading.orders SET status = 'filled', filled_quantity = quantity WHERE id = $1`, [order.id]);
    });
    const log = await rows(
      url,
      `SELECT operation, session_role, acting_role, old_row->>'status' AS old_status, new_row->>'status' AS new_status,
              new_row->>'limit_price' AS limit_price
         FROM audit.change_log WHERE table_schema = 'trading' AND table_name = 'orders' ORDER BY id`,
    );
    expect(log).toEqual([
      { operation: "INSERT", session_role: "postgres", acting_role: "postgres", old_status: null, new_status: "new", limit_price: "189.9900" },
      { operation: "UPDATE", session_role: "postgres", acting_role: "postgres", old_status: "new", new_status: "filled", limit_price: "189.9900" },
    ]);
  });

  test("a limit order without a limit price is rejected", async () => {
    await expect(
      exec(url, `INSERT INTO trading.orders (client_order_id, symbol, side, order_type, quantity) VALUES ('c-2', 'AAPL', 'buy', 'limit', 1)`),
    ).rejects.toThrow(/orders_limit_price_for_limit_orders/);
  });

  test("down to 0 removes every table, view, function and policy, even with compressed chunks; up restores them", async () => {
    // Old bars in a compressed chunk: switching columnstore off in 0005's down part must decompress first.
    await insertBars(url, "OLD", "1d", [{ time: "2001-01-02T00:00:00Z", open: "1", high: "2", low: "0.5", close: "1.5", volume: "10" }]);
    const compressed = await rows<{ n: number }>(
      url,
      `SELECT count(compress_chunk(c))::int AS n FROM show_chunks('market_data.ohlcv_bars', older_than => TIMESTAMPTZ '2002-01-01') c`,
    );
    expect(compressed).toEqual([{ n: 1 }]);

    expect(await objectsInAppSchemas(url)).toEqual(
      expect.arrayContaining(["r market_data.ohlcv_bars", "v market_data.ohlcv_weekly", "function audit.record_change", "S trading.orders_id_seq"]),
    );
    const down = await schemaRunner(url, { timescaledb: true }).down({ to: 0, force: true });
    expect(down.reverted).toEqual([...MIGRATION_FILES].reverse());
    expect(await objectsInAppSchemas(url)).toEqual([]);
    expect(await policyJobs(url)).toEqual([]);
    expect(await rows(url, `SELECT hypertable_name FROM timescaledb_information.hypertables`)).toEqual([]);
    expect(await rows(url, `SELECT view_name FROM timescaledb_information.continuous_aggregates`)).toEqual([]);
    // The schemas stay: they belong to the stack.
    expect(await rows(url, `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname IN ('audit','market_data','reference_data','research','trading')`)).toEqual([{ n: 5 }]);

    const up = await schemaRunner(url, { timescaledb: true }).up();
    expect(up.applied).toEqual(MIGRATION_FILES);
    expect(await tablesInAppSchemas(url)).toEqual(expect.arrayContaining(EXPECTED_TABLES));
    expect((await hypertableIntervals(url)).map((h) => h.hypertable)).toEqual(HYPERTABLES);
    expect((await policyJobs(url)).map((j) => j.proc_name)).toEqual([
      ...Array<string>(5).fill("policy_compression"),
      ...Array<string>(5).fill("policy_refresh_continuous_aggregate"),
      "policy_retention",
    ]);
  });

  test("with tickRetention empty (keep every tick) there is no retention policy", async () => {
    const keepTicks = { ...TEST_VARIABLES, tickRetention: "" };
    // The checksum covers the file, not the settings, so the same history serves both runs.
    await schemaRunner(url, { timescaledb: true, variables: keepTicks }).down({ to: 6, force: true });
    await schemaRunner(url, { timescaledb: true, variables: keepTicks }).up();
    const jobs = await policyJobs(url);
    expect(jobs.filter((j) => j.proc_name === "policy_retention")).toEqual([]);
    expect(jobs.filter((j) => j.proc_name === "policy_compression")).toHaveLength(5);
  });
});
