/**
 * Doctor's database checks against real engines: TimescaleDB, native (PostgreSQL 15, its scheduler running the
 * jobs) and the PGlite build (PostgreSQL 17.5, no background workers), with the real migrations, a compressed
 * chunk and a failing job; PostgreSQL 17 without TimescaleDB. And `tsdb doctor --url`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tsdbAsync } from "../fixtures/cli";
import { withClient } from "../../lib/db";
import { checkDatabase } from "../../lib/ops/databaseHealth";
import { type Engine, startPostgresServer, startTimescaleEngine, startTimescaleServer } from "../fixtures/engines";
import { schemaRunner } from "../fixtures/schema";

describe.each([
  // Background workers: checked where TimescaleDB is preloaded (PGlite has no background workers).
  { name: "native TimescaleDB", start: startTimescaleServer, version: /PostgreSQL 15\.\d+/, workers: ["Background workers"] },
  { name: "TimescaleDB (PGlite)", start: startTimescaleEngine, version: /PostgreSQL 17\.5/, workers: [] },
])("database checks on $name with the project's schema", ({ start, version, workers }) => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await start();
    await schemaRunner(engine.url, { timescaledb: true }).up();
    await withClient(engine.url, async (c) => {
      await c.query(`INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
                     SELECT 'AAPL', 'XNAS', 't', '1d', timestamptz '2020-01-01' + g * interval '1 day', 10, 11, 9, 10, 1 FROM generate_series(0, 99) g`);
      await c.query("SELECT compress_chunk(c) FROM show_chunks('market_data.ohlcv_bars', older_than => timestamptz '2020-02-01') c");
    });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("reports the extension, every hypertable, compressed chunks, no failed jobs, cache and connections", async () => {
    const results = await withClient(engine.url, (c) => checkDatabase(c, { expectTimescaleDb: true }));
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(results.map((r) => r.name)).toEqual(["Database", "TimescaleDB", "Hypertables", "Compression", ...workers, "Jobs", "Cache hit ratio", "Interrupted restores", "Connections"]);
    expect(byName.Database?.detail).toMatch(new RegExp(`^reachable: \\w+ on ${version.source}`));
    expect(byName.TimescaleDB?.detail).toMatch(/^extension 2\.23\./);
    expect(byName.Hypertables?.detail).toContain("market_data.ohlcv_bars (");
    expect(byName.Hypertables?.detail).toContain("market_data.ticks (0 chunks)");
    expect(byName.Compression?.detail).toMatch(/market_data\.ohlcv_bars: [1-9]\d*\/\d+ chunks compressed/);
    expect(byName.Jobs).toEqual({ name: "Jobs", status: "ok", detail: "no failed background jobs" });
    expect(byName.Connections?.detail).toMatch(/^\d+ of max_connections \d+$/);
    expect(results.every((r) => r.status !== "fail")).toBe(true);
  });

  test("a job whose last run failed is a failure naming the job and how to see its error", async () => {
    const results = await withClient(engine.url, async (c) => {
      await c.query("CREATE PROCEDURE public.tsdb_doctor_broken(job_id int, config jsonb) LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broken on purpose'; END $$");
      const id = (await c.query("SELECT add_job('public.tsdb_doctor_broken', '1 hour', scheduled => false) AS id")).rows[0].id as number;
      // Recorded as the scheduler records a failed run (PGlite has no background workers; on the native server
      // the job is unscheduled, so only this row says it failed).
      await c.query(
        `INSERT INTO _timescaledb_internal.bgw_job_stat (job_id, last_start, last_finish, next_start, last_successful_finish, last_run_success,
            total_runs, total_duration, total_duration_failures, total_successes, total_failures, total_crashes, consecutive_failures, consecutive_crashes, flags)
         VALUES ($1, now(), now(), now() + interval '1 hour', '-infinity', false, 1, interval '1 second', interval '1 second', 0, 1, 0, 1, 0, 0)
         ON CONFLICT (job_id) DO UPDATE SET last_start = now(), last_finish = now(), last_run_success = false, total_runs = 1, total_failures = 1, consecutive_failures = 1, total_successes = 0`,
        [id],
      );
      return { id, results: await checkDatabase(c, { expectTimescaleDb: true }) };
    });
    const jobs = results.results.find((r) => r.name === "Jobs");
    expect(jobs).toEqual({
      name: "Jobs",
      status: "fail",
      detail: `job ${results.id} public.tsdb_doctor_broken: 1 failure(s), last run Failed`,
      fix: "See why: `SELECT * FROM timescaledb_information.job_errors ORDER BY start_time DESC LIMIT 5;` then re-run with `CALL run_job(<job_id>);`.",
    });
  });

  test("tsdb doctor --url checks the server, its extension and health, and exits 1 for the failed job", async () => {
    // Asynchronously: this process serves the engine's socket, so a blocking spawnSync would deadlock it.
    const result = await tsdbAsync(["doctor", "--url", engine.url]);
    expect(result.stdout).toMatch(new RegExp(`ok {3}Database: reachable: \\w+ on ${version.source}`));
    expect(result.stdout).toMatch(/ok {3}TimescaleDB: extension 2\.23\./);
    expect(result.stdout).toMatch(/FAIL Jobs: job \d+ public\.tsdb_doctor_broken/);
    expect(result.stdout).not.toContain("Port 5432"); // a deployed database holds its own port
    expect(result.stdout).not.toContain("Pulumi CLI"); // a server of your own needs neither Pulumi nor Docker
    expect(result.stdout).not.toContain("Docker daemon");
    expect(result.stdout).toMatch(/^(ok {3}|WARN )pg_dump: /m);
    expect(result.code).toBe(1);
  });

  test("tsdb doctor on a deployed stack finds the database through `pulumi stack output`", async () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-doctor-bin-"));
    try {
      // The whole `database` output, as sdk/databaseOutput.ts defines it.
      const output = {
        mode: "docker", host: engine.host, port: engine.port, database: "postgres", sslmode: "disable",
        users: { migrator: engine.user, app: engine.user, readonly: engine.user },
        urls: { migrator: engine.url, app: engine.url, readonly: engine.url },
        versions: { image: "timescale/timescaledb:2.23.0-pg17", postgresMajor: 17, timescaledb: "2.23.0" },
      };
      fs.writeFileSync(path.join(bin, "output.json"), JSON.stringify(output));
      fs.writeFileSync(path.join(bin, "pulumi"), `#!/bin/sh\ncase "$1" in version) echo v3.205.0;; stack) cat ${bin}/output.json;; esac\n`, { mode: 0o755 });
      const result = await tsdbAsync(["doctor", "--stack", "dev"], { PATH: `${bin}:${process.env.PATH}` });
      expect(result.stdout).toContain("ok   Pulumi CLI: v3.205.0");
      expect(result.stdout).toMatch(/ok {3}Hypertables: .*market_data\.ohlcv_bars/);
      expect(result.stdout).not.toContain("Stack outputs");
      expect(result.stdout).not.toContain("Port 5432");
      expect(result.code).toBe(1); // the Docker daemon here, and the failed job above
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});

describe("database checks on PostgreSQL 17 without TimescaleDB", () => {
  let pg: Engine;
  beforeAll(async () => {
    pg = await startPostgresServer();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("a stack that expects TimescaleDB fails with the fix; a vanilla stack passes", async () => {
    const expecting = await withClient(pg.url, (c) => checkDatabase(c, { expectTimescaleDb: true }));
    expect(expecting.find((r) => r.name === "TimescaleDB")).toEqual({
      name: "TimescaleDB",
      status: "fail",
      detail: "not available on this server",
      fix: "Use a TimescaleDB image (tsdb:image) or set `pulumi config set tsdb:timescaledb false` for vanilla PostgreSQL.",
    });
    const vanilla = await withClient(pg.url, (c) => checkDatabase(c, { expectTimescaleDb: false }));
    expect(vanilla.map((r) => [r.name, r.status])).toEqual([
      ["Database", "ok"],
      ["TimescaleDB", "ok"],
      ["Cache hit ratio", "ok"],
      ["Interrupted restores", "ok"],
      ["Connections", "ok"],
    ]);
  });

  test("a query error in one check is that check's failure; the other checks still report", async () => {
    // A hardened server: PUBLIC may not read pg_stat_database, so the cache check's query fails for a plain role.
    await withClient(pg.url, async (c) => {
      await c.query("DROP ROLE IF EXISTS health_reader");
      await c.query("CREATE ROLE health_reader LOGIN PASSWORD 'health-pw'");
      await c.query("REVOKE SELECT ON pg_catalog.pg_stat_database FROM PUBLIC");
    });
    try {
      const results = await withClient(pg.urlFor("postgres", "health_reader", "health-pw"), (c) => checkDatabase(c, { expectTimescaleDb: false }));
      expect(results.map((r) => [r.name, r.status])).toEqual([
        ["Database", "ok"],
        ["TimescaleDB", "ok"],
        ["Cache hit ratio", "fail"],
        ["Interrupted restores", "ok"],
        ["Connections", "ok"],
      ]);
      expect(results[2]?.detail).toBe("its query failed: permission denied for view pg_stat_database");
      expect(results[2]?.fix).toMatch(/a role that can read the statistics views/);
    } finally {
      await withClient(pg.url, async (c) => {
        await c.query("GRANT SELECT ON pg_catalog.pg_stat_database TO PUBLIC");
        await c.query("DROP ROLE health_reader");
      });
    }
  });

  test("connections above 80% of max_connections are a warning with a fix", async () => {
    const results = await withClient(pg.url, (c) => checkDatabase(c, { expectTimescaleDb: false, maxConnectionShare: 0 }));
    expect(results.find((r) => r.name === "Connections")).toMatchObject({ status: "warn", detail: "1 of max_connections 200" });
  });

  test("a poor cache hit ratio is a warning once there are enough block reads to judge", async () => {
    const results = await withClient(pg.url, (c) => checkDatabase(c, { expectTimescaleDb: false, minCacheSamples: 1, minCacheHitRatio: 1.01 }));
    expect(results.find((r) => r.name === "Cache hit ratio")).toMatchObject({ status: "warn", detail: expect.stringMatching(/^\d+\.\d\d% \(target 101%\)$/) });
  });
});
