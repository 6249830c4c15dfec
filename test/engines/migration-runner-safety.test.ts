/**
 * `npm run db` where data is at stake, on PostgreSQL 17 with the stack's
 * roles and grants, run as the migrator the way people and CI run it:
 * - down shows what it drops with row counts, refuses on a protectData stack, and needs --force for rows;
 * - the migration lock cannot be held by a role that may not migrate, and a wait for a real migrator gives up
 *   after the timeout naming it;
 * - the database remembers its mode (TimescaleDB or vanilla), and a mismatch is one line saying what to pass;
 * - a connection dropped mid-migration is one line naming the migration, exit 1, and nothing of it committed.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { MIGRATION_LOCK_KEY } from "../../lib/migrations/core";
import { MigrationRunner } from "../../lib/migrations/runner";
import { ROOT, type StackLogins, projectWithStack, runCli, stackDatabase, startCli, until } from "../fixtures/cli";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import { TEST_VARIABLES, WEEK_OF_DAILY_BARS, insertBars, rows } from "../fixtures/schema";

const SQL = path.join(ROOT, "sql");
const FILES = fs.readdirSync(SQL).filter((f) => f.endsWith(".sql")).sort();

const applied = async (url: string) =>
  (await rows<{ version: number }>(url, `SELECT version FROM schema_migrations.applied ORDER BY version`)).map((r) => r.version);

describe("tsdb db down: what it drops, protectData and --force", () => {
  let server: Engine;
  let db: StackLogins;
  beforeAll(async () => {
    server = await startPostgresServer();
    db = await stackDatabase(server, "downs");
    expect((await runCli("db", ["up", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    await insertBars(db.app, "SPY", "1d", WEEK_OF_DAILY_BARS);
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("down --to 3 on a stack with protectData true refuses, naming tsdb:protectData and the rows, and drops nothing", async () => {
    const project = projectWithStack("guarded", { protectData: true, timescaledb: false });
    const r = await runCli("db", ["down", "--to", "3", "--stack", "guarded", "--dir", SQL, "--url", db.migrator], { cwd: project });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsdb db down: \[tsdb:protectData\] is true on this stack, so db down --to 3 \(stack guarded\) would drop market data\./);
    expect(r.stderr).toContain("5 rows in market_data.ohlcv_bars");
    expect(r.stderr).toContain("nothing was reverted");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(await applied(db.admin)).toHaveLength(FILES.length);
    expect(await rows(db.admin, `SELECT count(*)::int AS n FROM market_data.ohlcv_bars`)).toEqual([{ n: 5 }]);
  });

  test("plan --down shows the tables each revert drops with their rows, before the SQL", async () => {
    const r = await runCli("db", ["plan", "--down", "--to", "3", "--no-timescaledb", "--url", db.migrator]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^revert 0010_audit_hardening\.sql: drops no table$/m);
    expect(r.stdout).toContain("market_data.ohlcv_bars (5 rows)");
    expect(r.stdout.indexOf("market_data.ohlcv_bars (5 rows)")).toBeLessThan(r.stdout.indexOf("-- revert "));
  });

  test("down first prints every table it would drop with its rows, and refuses tables holding rows without --force", async () => {
    const r = await runCli("db", ["down", "--to", "3", "--no-timescaledb", "--url", db.migrator]);
    expect(r.code).toBe(1);
    const plan = r.stdout.trim().split("\n");
    expect(plan).toContain(
      "revert 0004_market_data.sql: drops market_data.exchange_rate_history (0 rows), market_data.global_market_indices (0 rows), " +
        "market_data.factor_scores (0 rows), market_data.ticks (0 rows), market_data.ohlcv_bars (5 rows)",
    );
    expect(plan).toContain("revert 0005_compression.sql: drops no table");
    // Newest first; 0011 drops its (empty) precedence table.
    expect(plan[0]).toMatch(new RegExp(`^revert ${FILES[FILES.length - 1]}: `));
    expect(plan).toContain("revert 0011_reading_bars.sql: drops market_data.provider_precedence (0 rows)");
    expect(r.stderr).toBe(
      "tsdb db down: db down --to 3 (stack dev) would drop tables that hold rows (5 rows in market_data.ohlcv_bars); nothing was reverted. " +
        "Back up first (tsdb backup), then pass --force to drop them.\n",
    );
    expect(await applied(db.admin)).toHaveLength(FILES.length);
  });

  test("with --force the same down drops them and says what it reverted", async () => {
    const r = await runCli("db", ["down", "--to", "3", "--force", "--no-timescaledb", "--url", db.migrator]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toContain("market_data.ohlcv_bars (5 rows)");
    expect(r.stdout).toContain("reverted 0004_market_data.sql");
    expect(await applied(db.admin)).toEqual([1, 2, 3]);
    expect(await rows(db.admin, `SELECT to_regclass('market_data.ohlcv_bars') AS t`)).toEqual([{ t: null }]);
  });

  test("dropping only empty tables needs no --force", async () => {
    expect((await runCli("db", ["up", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    const r = await runCli("db", ["down", "--to", "8", "--no-timescaledb", "--url", db.migrator]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("research.strategies (0 rows)");
  });
});

describe("the database remembers its mode", () => {
  let server: Engine;
  beforeAll(async () => {
    server = await startPostgresServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("up, down and plan without --no-timescaledb on a vanilla database are one line saying to pass it, and change nothing", async () => {
    const db = await stackDatabase(server, "vanilla_mode");
    expect((await runCli("db", ["up", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    const expected =
      "This database was migrated without TimescaleDB (vanilla PostgreSQL), but this run is for TimescaleDB; nothing was changed: " +
      "pass --no-timescaledb (CLI) or set tsdb:timescaledb false (stack).\n";
    for (const command of [["down", "--to", "3", "--force"], ["up"], ["plan"]]) {
      const r = await runCli("db", [...command, "--url", db.migrator]);
      expect(r.code, command.join(" ")).toBe(1);
      expect(r.stderr).toBe(`tsdb db ${command[0]}: ${expected}`);
    }
    expect(await applied(db.admin)).toHaveLength(FILES.length);
  });

  test("the first up on a server without the timescaledb extension says to pass --no-timescaledb", async () => {
    const db = await stackDatabase(server, "first_up");
    const r = await runCli("db", ["up", "--url", db.migrator]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "tsdb db up: This server has no timescaledb extension, so TimescaleDB mode cannot work; nothing was changed: " +
        "pass --no-timescaledb (CLI) or set tsdb:timescaledb false (stack) for plain PostgreSQL, or use a TimescaleDB server.\n",
    );
    expect(await applied(db.admin)).toEqual([]);
    // The failed first run bound nothing: the right flag works at once.
    expect((await runCli("db", ["up", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    expect(await rows(db.admin, `SELECT timescaledb, recorded_by FROM schema_migrations.database_mode`)).toEqual([
      { timescaledb: false, recorded_by: "market_migrator" },
    ]);
  });

  test("a database migrated before the mode was recorded is recognised (no timescaledb extension = vanilla)", async () => {
    const db = await stackDatabase(server, "legacy_mode");
    expect((await runCli("db", ["up", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    await withClient(db.admin, (c) => c.query(`DROP TABLE schema_migrations.database_mode`));
    const r = await runCli("db", ["down", "--to", "0", "--force", "--url", db.migrator]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsdb db down: This database was migrated without TimescaleDB .* pass --no-timescaledb/);
    expect(await applied(db.admin)).toHaveLength(FILES.length);
  });
});

describe("the migration lock", () => {
  let server: Engine;
  beforeAll(async () => {
    server = await startPostgresServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("a read-only login holding what it can hold does not block up", async () => {
    const db = await stackDatabase(server, "ro_lock");
    expect((await runCli("db", ["up", "--to", "3", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    await withClient(db.readonly, async (ro) => {
      // The advisory key every runner used to wait for, forever.
      await ro.query(`SELECT pg_advisory_lock($1::bigint)`, [MIGRATION_LOCK_KEY.toString()]);
      await ro.query(`BEGIN`);
      await expect(ro.query(`LOCK TABLE schema_migrations.applied IN EXCLUSIVE MODE`)).rejects.toThrow(/permission denied for schema schema_migrations/);
      await ro.query(`ROLLBACK`);
      await ro.query(`BEGIN`);
      await ro.query(`SELECT count(*) FROM reference_data.tickers`); // an open read transaction stays allowed
      const r = await runCli("db", ["up", "--lock-timeout", "5", "--no-timescaledb", "--url", db.migrator]);
      await ro.query(`COMMIT`);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    });
    expect(await applied(db.admin)).toHaveLength(FILES.length);
  }, 60_000);

  test("a second migrator waits for the first, then gives up after the timeout with one line naming it", async () => {
    const db = await stackDatabase(server, "busy_lock");
    expect((await runCli("db", ["up", "--to", "3", "--no-timescaledb", "--url", db.migrator])).code).toBe(0);
    const holder = `${db.migrator}&application_name=first-migrator`;
    await withClient(holder, async (first) => {
      await first.query(`BEGIN`);
      await first.query(`LOCK TABLE schema_migrations.applied IN EXCLUSIVE MODE`);
      const pid = (await first.query(`SELECT pg_backend_pid() AS pid`)).rows[0].pid;
      const started = Date.now();
      const r = await runCli("db", ["up", "--lock-timeout", "2", "--no-timescaledb", "--url", db.migrator]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      await first.query(`ROLLBACK`);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `tsdb db up: waited 2 s for the migration lock (schema_migrations.applied) held by pid ${pid}, user market_migrator, application "first-migrator"; ` +
          `gave up, nothing more was applied or reverted. Run again when that session is done (or end it: SELECT pg_terminate_backend(<pid>)).\n`,
      );
    });
    expect(await applied(db.admin)).toEqual([1, 2, 3]);
  }, 60_000);

  test("four migrators at once apply each migration exactly once", async () => {
    const db = await stackDatabase(server, "four_at_once");
    const runner = () => new MigrationRunner({ connection: db.migrator, migrations: SQL, timescaledb: false, variables: { ...TEST_VARIABLES }, role: "market_owner" });
    const outcomes = await Promise.all([1, 2, 3, 4].map(() => runner().up()));
    expect(outcomes.flatMap((o) => o.applied).sort()).toEqual(FILES);
    expect(await applied(db.admin)).toHaveLength(FILES.length);
  }, 60_000);
});

describe("a connection dropped under db up", () => {
  let server: Engine;
  beforeAll(async () => {
    server = await startPostgresServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("a terminated backend mid-migration is one line naming the migration, exit 1, and nothing of it is committed", async () => {
    const db = await stackDatabase(server, "terminated");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mig-slow-"));
    for (const f of FILES.slice(0, 3)) fs.copyFileSync(path.join(SQL, f), path.join(dir, f));
    fs.writeFileSync(
      path.join(dir, "0004_slow.sql"),
      "-- migrate:up\nCREATE TABLE research.slow (x int);\nSELECT pg_sleep(60);\n-- migrate:down\nDROP TABLE research.slow;\n",
    );
    const cli = startCli("db", ["up", "--no-timescaledb", "--dir", dir, "--url", db.migrator]);
    let pid = 0;
    await until("the slow migration to run", async () => {
      const r = await rows<{ pid: number }>(db.admin, `SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND datname = 'terminated'`);
      pid = r[0]?.pid ?? 0;
      return pid > 0;
    });
    await rows(db.admin, `SELECT pg_terminate_backend($1)`, [pid]);
    const r = await cli.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "tsdb db up: connection lost during applying 0004_slow.sql; nothing of it was committed; committed before it: " +
        `${FILES.slice(0, 3).map((f) => `applied ${f}`).join(", ")}\n`,
    );
    expect(await applied(db.admin)).toEqual([1, 2, 3]);
    expect(await rows(db.admin, `SELECT to_regclass('research.slow') AS t`)).toEqual([{ t: null }]);
  }, 60_000);
});
