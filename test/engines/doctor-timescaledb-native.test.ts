/**
 * Doctor on real PostgreSQL 15 servers with native TimescaleDB 2.23 installed: not preloaded (CREATE EXTENSION
 * fails with "must be preloaded"), preloaded with PostgreSQL's default worker settings (too few worker slots for
 * TimescaleDB's jobs), and the stack's tuned settings (startTimescaleServer). And PostgreSQL's HINT in the one
 * line an error becomes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { failureLine, withClient } from "../../lib/db";
import { checkDatabase } from "../../lib/ops/databaseHealth";
import { tsdbAsync } from "../fixtures/cli";
import { type Engine, freePort, startPostgresServer, startTimescaleServer } from "../fixtures/engines";
import { initDataDir, launchPostgres, serverBinDir } from "../fixtures/nativeServer";
import { exec, rows, schemaRunner } from "../fixtures/schema";

/**
 * PostgreSQL 15 with TimescaleDB preloaded and nothing else changed: PostgreSQL's default max_worker_processes (8)
 * and max_parallel_workers (8), TimescaleDB's default max_background_workers (16): what a user gets by adding only
 * `shared_preload_libraries = 'timescaledb'` to a stock postgresql.conf.
 */
async function startPreloadedWithDefaults(): Promise<{ url: string; stop: () => Promise<void> }> {
  const bin = await serverBinDir(15);
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-pg15-defaults-"));
  fs.chmodSync(parent, 0o755);
  const dataDir = path.join(parent, "data");
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  initDataDir({ bin, dataDir, superuser: "postgres", password });
  const port = await freePort();
  const stop = await launchPostgres(bin, port, ["-D", dataDir, "-p", String(port), "-k", dataDir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_preload_libraries=timescaledb"]);
  return {
    url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres?sslmode=disable`,
    stop: async () => {
      await stop();
      fs.rmSync(parent, { recursive: true, force: true });
    },
  };
}

const byName = (results: { name: string }[]) => Object.fromEntries(results.map((r) => [r.name, r]));

describe("doctor on PostgreSQL 15 with TimescaleDB installed but not preloaded", () => {
  let pg: Engine;
  beforeAll(async () => {
    pg = await startPostgresServer({ major: 15 });
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("CREATE EXTENSION fails there with 'must be preloaded' and a HINT, which the error's one line keeps", async () => {
    const err = await withClient(pg.url, (c) => c.query("CREATE EXTENSION timescaledb")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toBe('extension "timescaledb" must be preloaded');
    const line = failureLine(err, "db up");
    expect(line).toMatch(/^extension "timescaledb" must be preloaded \(hint: Please preload the timescaledb library via shared_preload_libraries\. .*\(Will require a database restart\.\)\)$/);
    expect(line).not.toContain("\n");
  });

  test("doctor fails the TimescaleDB check naming shared_preload_libraries and the restart", async () => {
    const results = await withClient(pg.url, (c) => checkDatabase(c, { expectTimescaleDb: true }));
    expect(byName(results).TimescaleDB).toEqual({
      name: "TimescaleDB",
      status: "fail",
      detail: "TimescaleDB 2.23.0 is installed on the server but not preloaded (shared_preload_libraries is empty), so CREATE EXTENSION fails with \"must be preloaded\"",
      fix: "Add it to shared_preload_libraries (postgresql.conf: `shared_preload_libraries = 'timescaledb'`, or `ALTER SYSTEM SET shared_preload_libraries = 'timescaledb';`), then restart PostgreSQL: that setting is read only at server start.",
    });
    expect(results.some((r) => r.name === "Background workers")).toBe(false);
  });

  test("tsdb db up there fails in one line carrying PostgreSQL's hint: which setting, and that a restart is needed", async () => {
    const result = await tsdbAsync(["db", "up", "--url", pg.url]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/must be preloaded/);
    expect(result.stderr).toMatch(/hint: Please preload the timescaledb library via shared_preload_libraries/);
    expect(result.stderr).toMatch(/Will require a database restart/);
  });
});

describe("doctor on a freshly migrated database with PostgreSQL's default worker settings", () => {
  let server: { url: string; stop: () => Promise<void> };
  beforeAll(async () => {
    server = await startPreloadedWithDefaults();
    await rows(server.url, "CREATE EXTENSION timescaledb");
    await schemaRunner(server.url, { timescaledb: true }).up();
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("the policies' first runs could not all start, and doctor says what to raise instead of reporting failed jobs", async () => {
    // The migrations add eleven policies; eight worker slots cannot run them all at once. Their first runs usually
    // overlap, but on a slow machine each may finish before the next policy is added. So every job is then made due
    // at the same moment, which they cannot all start at: with the scheduler stopped, their next start is set to now
    // in TimescaleDB's catalog (alter_job refuses the hierarchical aggregates' policies), and it starts again.
    // Stopped only between runs: a job ended by the stop would count as failed.
    for (let i = 0; i < 60; i++) {
      const running = await rows<{ n: number }>(server.url, "SELECT count(*)::int AS n FROM timescaledb_information.job_stats WHERE job_status = 'Running'");
      if (running[0]?.n === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    await exec(
      server.url,
      `SELECT _timescaledb_functions.stop_background_workers();
       UPDATE _timescaledb_internal.bgw_job_stat SET next_start = now() WHERE job_id >= 1000;
       SELECT _timescaledb_functions.start_background_workers();`,
    );
    const deadline = Date.now() + 30_000;
    let notStarted = 0;
    while (notStarted === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      notStarted = (await rows<{ n: number }>(server.url, "SELECT count(*)::int AS n FROM timescaledb_information.job_errors WHERE err_message LIKE 'failed to start job%'"))[0]?.n ?? 0;
    }
    expect(notStarted).toBeGreaterThan(0);
    const results = byName(await withClient(server.url, (c) => checkDatabase(c, { expectTimescaleDb: true })));
    expect(results["Background workers"]).toEqual({
      name: "Background workers",
      status: "warn",
      detail: expect.stringMatching(
        /^max_worker_processes is 8, less than timescaledb\.max_background_workers 16 \+ max_parallel_workers 8 \+ 1 launcher = 25, so TimescaleDB's jobs can fail to start \([1-9]\d* run\(s\) could not start\)$/,
      ),
      fix: "Raise max_worker_processes to at least 25 (or lower timescaledb.max_background_workers or max_parallel_workers), then restart PostgreSQL: max_worker_processes is read only at server start. The stack's container gets them from tsdb:cpus (lib/tuning.ts).",
    });
    expect(results.Jobs).toEqual({ name: "Jobs", status: "ok", detail: expect.stringMatching(/^no failed background jobs \([1-9]\d* run\(s\) could not start: see Background workers\)$/) });
  });
});

describe("doctor on a freshly migrated database with the stack's worker settings (native TimescaleDB)", () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startTimescaleServer();
    await schemaRunner(engine.url, { timescaledb: true }).up();
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("the worker budget covers TimescaleDB's workers, and no job is reported", async () => {
    await new Promise((r) => setTimeout(r, 5000)); // the policies' first runs
    const results = byName(await withClient(engine.url, (c) => checkDatabase(c, { expectTimescaleDb: true })));
    expect(results["Background workers"]).toEqual({
      name: "Background workers",
      status: "ok",
      detail: "max_worker_processes 13 covers timescaledb.max_background_workers 8 + max_parallel_workers 2 + 1 launcher",
    });
    expect(results.Jobs).toEqual({ name: "Jobs", status: "ok", detail: "no failed background jobs" });
    expect(results.TimescaleDB).toEqual({ name: "TimescaleDB", status: "ok", detail: "extension 2.23.0" });
  });
});
