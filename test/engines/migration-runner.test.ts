import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { MigrationRunner } from "../../lib/migrations/runner";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";

const FIXTURES = path.join(__dirname, "../fixtures/migrations");
const VARS = {
  ohlcvChunkInterval: "30 days",
  tickChunkInterval: "1 day",
  compressAfter: "90 days",
  tickRetention: "",
  caggRefreshInterval: "1 hour",
};

async function rows<T = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return withClient(url, async (c) => (await c.query(sql, params)).rows as T[]);
}

/**
 * A copy of a fixture scenario that a test may edit. `basic` is complete; every other scenario holds only the
 * files it changes (e.g. its own 0003) and takes the rest from `basic`.
 */
function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mig-${name}-`));
  const own = fs.readdirSync(path.join(FIXTURES, name));
  const version = (file: string) => file.slice(0, 4);
  for (const f of fs.readdirSync(path.join(FIXTURES, "basic"))) {
    if (!own.some((o) => version(o) === version(f))) fs.copyFileSync(path.join(FIXTURES, "basic", f), path.join(dir, f));
  }
  for (const f of own) fs.copyFileSync(path.join(FIXTURES, name, f), path.join(dir, f));
  return dir;
}

const scenarios = new Map<string, string>();
/** The migrations directory of a scenario, assembled once per file. */
function fixtureDir(name: string): string {
  if (name === "basic") return path.join(FIXTURES, name);
  let dir = scenarios.get(name);
  if (!dir) scenarios.set(name, (dir = copyFixture(name)));
  return dir;
}

describe("the migration runner on TimescaleDB", () => {
  let tsdb: Engine;
  const runner = (dir = "basic") =>
    new MigrationRunner({ connection: tsdb.url, migrations: fixtureDir(dir), timescaledb: true, variables: VARS });

  beforeAll(async () => {
    tsdb = await startTimescaleEngine();
  });
  afterAll(async () => {
    await tsdb?.stop();
  });
  async function reset(): Promise<void> {
    await withClient(tsdb.url, (c) =>
      c.query("DROP SCHEMA IF EXISTS market_data, research, schema_migrations CASCADE"),
    );
  }

  test("up creates the hypertable and continuous aggregate, down to 0 removes them, up again restores them", async () => {
    await reset();
    expect(await runner().up()).toEqual({ applied: ["0001_schemas.sql", "0002_bars.sql", "0003_daily.sql"], reverted: [] });
    const hypertables = `SELECT hypertable_schema || '.' || hypertable_name AS t FROM timescaledb_information.hypertables WHERE hypertable_name = 'bars'`;
    const caggs = `SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'market_data'`;
    const policy = `SELECT schedule_interval::text AS every FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'`;
    expect(await rows(tsdb.url, hypertables)).toEqual([{ t: "market_data.bars" }]);
    expect(await rows(tsdb.url, caggs)).toEqual([{ view_name: "bars_daily" }]);
    expect(await rows(tsdb.url, policy)).toEqual([{ every: "01:00:00" }]);
    const chunk = await rows(tsdb.url, `SELECT time_interval::text AS i FROM timescaledb_information.dimensions WHERE hypertable_name = 'bars'`);
    expect(chunk).toEqual([{ i: "30 days" }]);

    expect(await runner().down({ to: 0 })).toEqual({ applied: [], reverted: ["0003_daily.sql", "0002_bars.sql", "0001_schemas.sql"] });
    expect(await rows(tsdb.url, hypertables)).toEqual([]);
    expect(await rows(tsdb.url, caggs)).toEqual([]);
    expect(await rows(tsdb.url, "SELECT count(*)::int AS n FROM schema_migrations.applied")).toEqual([{ n: 0 }]);

    await runner().up();
    expect(await rows(tsdb.url, hypertables)).toEqual([{ t: "market_data.bars" }]);
    const status = await runner().status();
    expect(status.map((s) => [s.file, s.state])).toEqual([
      ["0001_schemas.sql", "applied"],
      ["0002_bars.sql", "applied"],
      ["0003_daily.sql", "applied"],
    ]);
    expect(status[0]?.appliedBy).toBe("postgres");
    expect(await runner().plan()).toEqual([]);
  });

  test("the history records version, name, checksum, time, duration and who applied it", async () => {
    await reset();
    await runner().up({ to: 2 });
    const history = await rows(tsdb.url, "SELECT version, name, length(checksum) AS len, applied_at IS NOT NULL AS at, duration_ms >= 0 AS ms, applied_by FROM schema_migrations.applied ORDER BY version");
    expect(history).toEqual([
      { version: 1, name: "schemas", len: 64, at: true, ms: true, applied_by: "postgres" },
      { version: 2, name: "bars", len: 64, at: true, ms: true, applied_by: "postgres" },
    ]);
    const plan = await runner().plan();
    expect(plan.map((p) => [p.file, p.action])).toEqual([["0003_daily.sql", "apply"]]);
    expect(plan[0]?.sql).toContain("schedule_interval => INTERVAL '1 hour'");
    const downPlan = await runner().plan({ direction: "down", to: 0 });
    expect(downPlan.map((p) => [p.file, p.action])).toEqual([["0002_bars.sql", "revert"], ["0001_schemas.sql", "revert"]]);
  });

  test("a failing migration leaves nothing of itself behind and its error names the file and line", async () => {
    await reset();
    const err = await runner("failing").up().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^0003_broken\.sql line 6 \(up\): column "no_such_column" does not exist \[rolled back; nothing of this migration was applied\]$/,
    );
    expect(await rows(tsdb.url, "SELECT to_regclass('market_data.half_done') AS t")).toEqual([{ t: null }]);
    expect(await rows(tsdb.url, "SELECT version FROM schema_migrations.applied ORDER BY version")).toEqual([{ version: 1 }, { version: 2 }]);
  });

  test("an error without a position names the failing statement's first line, not its leading comment", async () => {
    await reset();
    const dir = copyFixture("basic");
    fs.writeFileSync(
      path.join(dir, "0003_daily.sql"),
      [
        "-- migrate:up", // 1
        "CREATE TABLE research.ok (id int);", // 2
        "", // 3
        "-- the next statement collides with 0002", // 4
        "CREATE TABLE", // 5
        "  market_data.bars (id int);", // 6
        "-- migrate:down", // 7
        "DROP TABLE research.ok;", // 8
      ].join("\n"),
    );
    const err = await new MigrationRunner({ connection: tsdb.url, migrations: dir, timescaledb: true, variables: VARS }).up().catch((e: Error) => e);
    expect((err as Error).message).toBe(
      '0003_daily.sql line 5 (up): relation "bars" already exists [rolled back; nothing of this migration was applied]',
    );
    expect(await rows(tsdb.url, "SELECT to_regclass('research.ok') AS t")).toEqual([{ t: null }]);
  });

  test("an applied migration whose file was edited stops the run, naming the file", async () => {
    await reset();
    const dir = copyFixture("basic");
    const mk = () => new MigrationRunner({ connection: tsdb.url, migrations: dir, timescaledb: true, variables: VARS });
    await mk().up({ to: 2 });
    fs.appendFileSync(path.join(dir, "0002_bars.sql"), "\n-- an innocent-looking edit\n");
    await expect(mk().up()).rejects.toThrow(/^Checksum of 0002_bars\.sql does not match the applied one; was the file edited after it ran\?/);
    expect(await rows(tsdb.url, "SELECT to_regclass('market_data.bars_daily') AS t")).toEqual([{ t: null }]);
    expect((await mk().status()).map((s) => s.state)).toEqual(["applied", "changed", "pending"]);
  });
});

describe("the migration runner on PostgreSQL 17 (vanilla mode)", () => {
  let pg: Engine;
  let n = 0;
  beforeAll(async () => {
    pg = await startPostgresServer();
  });
  afterAll(async () => {
    await pg?.stop();
  });
  const freshDb = () => pg.createDatabase(`runner_${++n}`);
  const runner = (url: string, dir = "basic", extra: { role?: string } = {}) =>
    new MigrationRunner({ connection: url, migrations: fixtureDir(dir), timescaledb: false, variables: VARS, ...extra });

  test("vanilla mode makes plain tables, indexes and a materialized view; down and up again work", async () => {
    const url = await freshDb();
    await runner(url).up();
    const objects = `SELECT c.relname, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'market_data' AND c.relkind IN ('r','m','i') ORDER BY 1`;
    expect(await rows(url, objects)).toEqual([
      { relname: "bars", kind: "r" },
      { relname: "bars_daily", kind: "m" },
      { relname: "bars_pkey", kind: "i" },
      { relname: "bars_time_idx", kind: "i" },
    ]);
    await runner(url).down({ to: 0 });
    expect(await rows(url, objects)).toEqual([]);
    await runner(url).up();
    expect(await rows(url, objects)).toHaveLength(4);
  });

  test("four runners at once apply each migration exactly once", async () => {
    const url = await freshDb();
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => runner(url).up()));
    const applied = outcomes.flatMap((o) => o.applied).sort();
    expect(applied).toEqual(["0001_schemas.sql", "0002_bars.sql", "0003_daily.sql"]);
    expect(await rows(url, "SELECT version FROM schema_migrations.applied ORDER BY version")).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
    ]);
  });

  test("with a role, every object (and the history table) is owned by that role, and applied_by is the login", async () => {
    const url = await freshDb();
    const db = new URL(url).pathname.slice(1);
    await withClient(url, async (c) => {
      await c.query(`CREATE ROLE ${db}_owner NOLOGIN`);
      await c.query(`CREATE ROLE ${db}_migrator LOGIN PASSWORD 'mig-pw' IN ROLE ${db}_owner`);
      await c.query(`GRANT CREATE ON DATABASE ${db} TO ${db}_owner`);
    });
    const asMigrator = pg.urlFor(db, `${db}_migrator`, "mig-pw");
    await runner(asMigrator, "basic", { role: `${db}_owner` }).up();
    const owners = await rows(
      url,
      `SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('market_data','research','schema_migrations')`,
    );
    expect(owners).toEqual([{ owner: `${db}_owner` }]);
    expect(await rows(url, "SELECT DISTINCT applied_by FROM schema_migrations.applied")).toEqual([{ applied_by: `${db}_migrator` }]);
  });

  test("a role name is quoted, never pasted: a hostile name is just an unknown role", async () => {
    const url = await freshDb();
    await expect(runner(url, "basic", { role: 'x"; DROP DATABASE postgres; --' }).up()).rejects.toThrow(
      /role "x"; DROP DATABASE postgres; --" does not exist/,
    );
  });

  test("a no-transaction migration runs statements that cannot run in a transaction, both ways", async () => {
    const url = await freshDb();
    await runner(url, "notx").up();
    const idx = `SELECT indexname FROM pg_indexes WHERE tablename = 'bars' AND indexname LIKE 'bars_%_idx' ORDER BY 1`;
    expect(await rows(url, idx)).toEqual([{ indexname: "bars_close_idx" }, { indexname: "bars_symbol_idx" }, { indexname: "bars_time_idx" }]);
    await runner(url, "notx").down({ to: 2 });
    expect(await rows(url, idx)).toEqual([{ indexname: "bars_time_idx" }]);
  });

  test("a no-transaction migration failing midway says which statements already ran", async () => {
    const url = await freshDb();
    const dir = copyFixture("notx");
    fs.writeFileSync(
      path.join(dir, "0003_concurrent_index.sql"),
      "-- migrate:no-transaction\n-- migrate:up\nCREATE INDEX CONCURRENTLY bars_close_idx ON market_data.bars (close);\nCREATE INDEX CONCURRENTLY bars_x_idx ON market_data.bars (nope);\n-- migrate:down\n",
    );
    const err = await new MigrationRunner({ connection: url, migrations: dir, timescaledb: false, variables: VARS }).up().catch((e: Error) => e);
    expect((err as Error).message).toBe(
      '0003_concurrent_index.sql line 4 (up): column "nope" does not exist [1 earlier statement(s) of this no-transaction migration already ran and were NOT rolled back; make them idempotent (IF NOT EXISTS) or undo them by hand, then run again]',
    );
    expect(await rows(url, "SELECT max(version) AS v FROM schema_migrations.applied")).toEqual([{ v: 2 }]);
  });

  test("files and database disagreeing (an applied version with no file) stops up, naming the version", async () => {
    const url = await freshDb();
    await runner(url).up();
    await expect(runner(url, "notx").up()).rejects.toThrow(/^Checksum of 0003_concurrent_index\.sql does not match/);
    const dir = copyFixture("basic");
    fs.rmSync(path.join(dir, "0003_daily.sql"));
    await expect(
      new MigrationRunner({ connection: url, migrations: dir, timescaledb: false, variables: VARS }).up(),
    ).rejects.toThrow(/^Version 3 \(daily\) is applied in the database but has no migration file/);
  });
});
