import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";

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
