/**
 * Who may own the TimescaleDB objects. Policies (columnstore, rollup refresh, retention) run as background
 * jobs under the hypertable's owner, and TimescaleDB refuses to add one when that owner cannot log in
 * (https://github.com/timescale/timescaledb/pull/1709, still open as timescale/timescaledb#8920). So the
 * `<db>_owner` role the migrations SET ROLE to needs LOGIN; without a password it still cannot sign in.
 *
 * The PGlite engine is one session shared by every connection, so a runner's SET ROLE outlives its
 * connection: the admin steps below start with RESET ROLE.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";
import { APP_SCHEMAS, MIGRATION_FILES, exec, rows, schemaRunner } from "../fixtures/schema";

describe("the schema on TimescaleDB, applied as the owner role", () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startTimescaleEngine();
    await exec(engine.url, `CREATE ROLE market_owner NOLOGIN`);
    // As in the stack, the owner owns the database (0001 and the runner's history use CREATE SCHEMA IF NOT EXISTS).
    const [current] = await rows<{ db: string }>(engine.url, `SELECT current_database() AS db`);
    await exec(engine.url, `ALTER DATABASE "${current?.db}" OWNER TO market_owner`);
    await exec(
      engine.url,
      `
       ${APP_SCHEMAS.map((s) => `CREATE SCHEMA ${s} AUTHORIZATION market_owner;`).join("\n")}
       CREATE SCHEMA schema_migrations AUTHORIZATION market_owner;`,
    );
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("a NOLOGIN owner stops the run at the first policy, naming the file, and leaves that migration out", async () => {
    const runner = schemaRunner(engine.url, { timescaledb: true, role: "market_owner" });
    await expect(runner.up()).rejects.toThrow(/0005_compression\.sql line \d+ \(up\): permission denied to start background process as role "market_owner"/);
    const status = await runner.status();
    expect(status.filter((s) => s.state === "applied").map((s) => s.file)).toEqual([
      "0001_schemas.sql",
      "0002_audit.sql",
      "0003_reference_data.sql",
      "0004_market_data.sql",
    ]);
    expect(await rows(engine.url, `SELECT count(*)::int AS n FROM timescaledb_information.jobs WHERE job_id >= 1000`)).toEqual([{ n: 0 }]);
  });

  test("an owner with LOGIN and no password gets every migration, and owns the tables and policy jobs", async () => {
    await exec(engine.url, `RESET ROLE; ALTER ROLE market_owner LOGIN PASSWORD NULL`);
    const outcome = await schemaRunner(engine.url, { timescaledb: true, role: "market_owner" }).up();
    expect(outcome.applied).toEqual(MIGRATION_FILES.filter((f) => f >= "0005"));
    expect(outcome.applied[0]).toBe("0005_compression.sql");
    const jobOwners = await rows(
      engine.url,
      `SELECT DISTINCT owner::text FROM timescaledb_information.jobs WHERE job_id >= 1000`,
    );
    expect(jobOwners).toEqual([{ owner: "market_owner" }]);
    const tableOwners = await rows(
      engine.url,
      `SELECT DISTINCT tableowner::text AS owner FROM pg_tables WHERE schemaname = ANY($1)`,
      [APP_SCHEMAS],
    );
    expect(tableOwners).toEqual([{ owner: "market_owner" }]);
  });
});
