/**
 * Every hook's error paths as `pulumi up` meets them: each component compiled by tsc, its provider serialized by
 * @pulumi/pulumi's own closure serializer (`runtime.serializeFunction`, through `pulumi.dynamic.Resource`) in a
 * plain Node process, and the `__provider` text loaded in a FRESH Node process the way the dynamic-provider host
 * loads it (test/fixtures/dynamicProviderHost.cjs). The error that reaches the engine must be the real one.
 *
 * Regression: the closure serializer copies a module-level `Set` as a plain object with Set.prototype.has as an
 * own property and no Set inside (see the `__LOST_SOCKET_CODES` it emitted for lib/db.ts), so every SQL error in
 * the migrations hook became "Method Set.prototype.has called on incompatible receiver #<Object>".
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { withClient } from "../../lib/db";
import { type CompiledComponent, callInFreshHost, compileComponent, type HostResult, unsecret } from "../fixtures/dynamicProviders";
import { type Engine, freePort, startPostgresServer } from "../fixtures/engines";

const FIXTURES = path.join(__dirname, "../fixtures/migrations");
const VARS = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "", caggRefreshInterval: "1 hour" };
const ROOT = path.join(__dirname, "../..");

/** The basic fixtures plus extra files `{ name: sql }`. */
function basicPlus(extra: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hooks-host-"));
  for (const f of fs.readdirSync(path.join(FIXTURES, "basic"))) fs.copyFileSync(path.join(FIXTURES, "basic", f), path.join(dir, f));
  for (const [name, sql] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), sql);
  return dir;
}

function failure(result: HostResult | undefined): string {
  if (!result || result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result.error.message;
}

/** How the serializer writes a captured Set or Map: an object with the prototype's methods and no contents. */
const SERIALIZED_COLLECTION = /global\.(Set|Map|WeakSet|WeakMap)\.prototype/;
const INCOMPATIBLE = /incompatible receiver|is not a function|Cannot read properties/;

// Each test compiles nothing but serializes in a child process and runs another: slow on a loaded machine.
describe("hooks serialized by Pulumi and run in a fresh provider host show the real error", { timeout: 240_000 }, () => {
  let pg: Engine;
  let url: string;
  let conn: ConnectionInfo;
  let migrations: CompiledComponent;
  let datasets: CompiledComponent;
  let guard: CompiledComponent;

  beforeAll(async () => {
    [migrations, datasets, guard, pg] = await Promise.all([
      compileComponent("components/SchemaMigrations.ts", "SchemaMigrations", { appliedVersions: [], applied: [] }),
      compileComponent("components/MarketDataLoad.ts", "MarketDataLoad", { read: 0 }),
      compileComponent("components/SettingGuard.ts", "SettingGuard"),
      startPostgresServer(),
    ]);
    url = await pg.createDatabase("market");
    await withClient(url, async (c) => {
      await c.query("CREATE ROLE market_owner NOLOGIN");
      await c.query("CREATE ROLE market_migrator LOGIN PASSWORD 'hooks-migrator-pw' IN ROLE market_owner");
      await c.query("GRANT CREATE ON DATABASE market TO market_owner");
      // Owned by the superuser: the migrator may not replace it (the error seen on a real stack).
      await c.query("CREATE SCHEMA audit AUTHORIZATION market_owner");
      await c.query("CREATE FUNCTION audit.record_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'");
    });
    conn = { host: pg.host, port: pg.port, database: "market", user: "market_migrator", password: "hooks-migrator-pw", sslmode: "disable" };
  }, 600_000);
  afterAll(async () => {
    migrations?.dispose();
    datasets?.dispose();
    guard?.dispose();
    await pg?.stop();
  });

  async function migrationsHook(dir: string, extra: Record<string, unknown> = {}) {
    const line = await migrations.serialize("schema", { connection: conn, role: "market_owner", timescaledb: false, variables: VARS, protectData: false, migrationsDir: dir, ...extra });
    const text = String(line.inputs.__provider);
    expect(text).not.toMatch(SERIALIZED_COLLECTION);
    return { text, inputs: { ...line.inputs, connection: unsecret(line.inputs.connection) } as Record<string, unknown> };
  }

  test("migrations: a permission error in a migration is reported as itself (was: Set.prototype.has on an incompatible receiver)", async () => {
    const hook = await migrationsHook(
      basicPlus({ "0004_audit.sql": "-- migrate:up\nCREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';\n-- migrate:down\nSELECT 1;\n" }),
    );
    const [created] = await callInFreshHost(hook.text, [{ method: "create", args: [hook.inputs] }]);
    const message = failure(created);
    expect(message).not.toMatch(INCOMPATIBLE);
    expect(message).toContain("0004_audit.sql");
    expect(message).toContain("must be owner of function record_change");
    // 0001-0003 applied before it; clean up through the same host.
    const fine = await migrationsHook(path.join(FIXTURES, "basic"));
    const [, deleted] = await callInFreshHost(fine.text, [
      { method: "create", args: [fine.inputs] },
      { method: "delete", args: ["schema_migrations@market", { ...fine.inputs, stateVersion: 1 }] },
    ]);
    expect(deleted).toEqual({ ok: true, value: null });
  });

  test("migrations: a failing statement names the file and the column, in create and in update", async () => {
    const broken = basicPlus({ "0004_broken.sql": fs.readFileSync(path.join(FIXTURES, "failing/0003_broken.sql"), "utf8") });
    const hook = await migrationsHook(broken);
    const fine = await migrationsHook(path.join(FIXTURES, "basic"));
    const [created, updated, deleted] = await callInFreshHost(hook.text, [
      { method: "create", args: [hook.inputs] },
      { method: "update", args: ["schema_migrations@market", { ...fine.inputs, stateVersion: 1 }, hook.inputs] },
      { method: "delete", args: ["schema_migrations@market", { ...fine.inputs, stateVersion: 1 }] },
    ]);
    for (const r of [created, updated]) {
      expect(failure(r)).not.toMatch(INCOMPATIBLE);
      expect(failure(r)).toMatch(/0004_broken\.sql.*no_such_column/s);
    }
    expect(deleted).toEqual({ ok: true, value: null });
  });

  test("migrations: a changed applied file, a protected destroy and an unreachable server each say so", async () => {
    const fine = await migrationsHook(path.join(FIXTURES, "basic"));
    const state = { ...fine.inputs, stateVersion: 1 };
    const tampered = {
      ...fine.inputs,
      migrations: (fine.inputs.migrations as { checksum: string }[]).map((m, i) => (i === 1 ? { ...m, checksum: "0".repeat(64) } : m)),
    };
    const closed = { ...fine.inputs, connection: { ...conn, port: await freePort() } };
    const [, changed, protectedDelete, unreachable, deleted] = await callInFreshHost(fine.text, [
      { method: "create", args: [fine.inputs] },
      { method: "update", args: ["schema_migrations@market", state, tampered] },
      { method: "delete", args: ["schema_migrations@market", { ...state, protectData: true }] },
      { method: "create", args: [closed] },
      { method: "delete", args: ["schema_migrations@market", state] },
    ]);
    expect(failure(changed)).toMatch(/0002_bars\.sql/);
    expect(failure(protectedDelete)).toMatch(/tsdb:protectData/);
    expect(failure(unreachable)).toMatch(/ECONNREFUSED|connect/);
    for (const r of [changed, protectedDelete, unreachable]) expect(failure(r)).not.toMatch(INCOMPATIBLE);
    expect(deleted).toEqual({ ok: true, value: null });
  });

  test("migrations: a backend terminated mid-create is reported as a lost connection naming the migration", async () => {
    const hook = await migrationsHook(basicPlus({ "0004_slow.sql": "-- migrate:up\nSELECT pg_sleep(60);\n-- migrate:down\nSELECT 1;\n" }));
    const running = callInFreshHost(hook.text, [{ method: "create", args: [hook.inputs] }]);
    let pid = 0;
    for (let i = 0; i < 600 && pid === 0; i++) {
      const rows = await withClient(url, async (c) => (await c.query("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")).rows);
      pid = (rows[0] as { pid?: number } | undefined)?.pid ?? 0;
      if (pid === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pid).toBeGreaterThan(0);
    await withClient(url, (c) => c.query("SELECT pg_terminate_backend($1)", [pid]));
    const [created] = await running;
    expect(failure(created)).toMatch(/^connection lost during applying 0004_slow\.sql; nothing of it was committed; committed before it: applied 0001_schemas\.sql/);
    const fine = await migrationsHook(path.join(FIXTURES, "basic"));
    const [, deleted] = await callInFreshHost(fine.text, [
      { method: "create", args: [fine.inputs] },
      { method: "delete", args: ["schema_migrations@market", { ...fine.inputs, stateVersion: 1 }] },
    ]);
    expect(deleted).toEqual({ ok: true, value: null });
  });

  test("datasets: a load into a database without the schema fails naming the dataset and the loader's reason", async () => {
    const line = await datasets.serialize("sample", { connection: conn, dataset: { name: "sample", source: "data/sample/csv/ohlcv.csv" }, projectDir: ROOT });
    expect(String(line.inputs.__provider)).not.toMatch(SERIALIZED_COLLECTION);
    const [created] = await callInFreshHost(String(line.inputs.__provider), [
      { method: "create", args: [{ ...line.inputs, connection: unsecret(line.inputs.connection) }] },
    ]);
    const message = failure(created);
    expect(message).toMatch(/^Loading dataset sample \(data\/sample\/csv\/ohlcv\.csv\) failed: /);
    expect(message).toMatch(/ohlcv_bars|market_data/);
    expect(message).not.toMatch(INCOMPATIBLE);
  });

  test("setting guard: a refused change is a check failure with its reason", async () => {
    const context = { stack: "dev", mode: "docker", containerName: "tsdb-dev-timescaledb", protectData: false };
    const deployed = await guard.serialize("g", { database: "market", timescaledb: true, adminPassword: "pw", allow: [], context });
    const renamed = await guard.serialize("g", { database: "ticks", timescaledb: true, adminPassword: "pw", allow: [], context });
    expect(String(deployed.inputs.__provider)).not.toMatch(SERIALIZED_COLLECTION);
    const [checked] = await callInFreshHost(String(deployed.inputs.__provider), [
      {
        method: "check",
        args: [
          { ...deployed.inputs, watched: unsecret(deployed.inputs.watched) },
          { ...renamed.inputs, watched: unsecret(renamed.inputs.watched) },
        ],
      },
    ]);
    expect(checked?.ok).toBe(true);
    const failures = (checked as { value: { failures: { reason: string }[] } }).value.failures;
    expect(failures.map((f) => f.reason.slice(0, 44))).toEqual(['[tsdb:database] changed from "market" to "ti']);
  });
});

describe("the schema hook reports what the server runs", { timeout: 240_000 }, () => {
  let pg15: Engine;
  let migrations: CompiledComponent;
  beforeAll(async () => {
    [migrations, pg15] = await Promise.all([
      compileComponent("components/SchemaMigrations.ts", "SchemaMigrations", { appliedVersions: [], applied: [] }),
      startPostgresServer({ major: 15 }),
    ]);
  }, 600_000);
  afterAll(async () => {
    migrations?.dispose();
    await pg15?.stop();
  });

  test("versions.postgresMajor is the server's 15, not 17 (was: hard-coded), and an image bump updates the hook to read it again", async () => {
    const conn: ConnectionInfo = { host: pg15.host, port: pg15.port, database: "postgres", user: pg15.user, password: pg15.password, sslmode: "disable" };
    const args = { connection: conn, timescaledb: false, variables: VARS, protectData: false, migrationsDir: path.join(FIXTURES, "basic") };
    const line = await migrations.serialize("schema", { ...args, serverImage: "timescale/timescaledb:2.22.1-pg15" });
    const inputs = { ...line.inputs, connection: unsecret(line.inputs.connection) } as Record<string, unknown>;
    const bumped = { ...inputs, serverImage: "timescale/timescaledb:2.23.0-pg15" };
    const [created] = await callInFreshHost(String(line.inputs.__provider), [{ method: "create", args: [inputs] }]);
    expect(created?.ok).toBe(true);
    const outs = (created as { value: { outs: Record<string, unknown> } }).value.outs;
    expect(outs.server).toEqual({ postgresMajor: 15, timescaledb: null });
    const [same, diff, updated, deleted] = await callInFreshHost(String(line.inputs.__provider), [
      { method: "diff", args: ["schema_migrations@postgres", outs, inputs] },
      { method: "diff", args: ["schema_migrations@postgres", outs, bumped] },
      { method: "update", args: ["schema_migrations@postgres", outs, bumped] },
      { method: "delete", args: ["schema_migrations@postgres", outs] },
    ]);
    expect(same).toEqual({ ok: true, value: { changes: false, replaces: [], deleteBeforeReplace: false } });
    expect(diff).toEqual({ ok: true, value: { changes: true, replaces: [], deleteBeforeReplace: false } });
    expect((updated as { value: { outs: Record<string, unknown> } }).value.outs).toMatchObject({ serverImage: "timescale/timescaledb:2.23.0-pg15", server: { postgresMajor: 15 } });
    expect(deleted).toEqual({ ok: true, value: null });
  });
});
