/**
 * The migrations hook executed through its serialized form: the `__provider` string Pulumi produced for the
 * SchemaMigrations component is loaded as the dynamic-provider host loads it, then create, diff, update
 * and delete run against real databases.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { withClient } from "../../lib/db";
import { loadSerializedProvider, recordSchemaMigrations, unsecret } from "../fixtures/migrations/harness";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";

const FIXTURES = path.join(__dirname, "../fixtures/migrations");
const VARS = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "", caggRefreshInterval: "1 hour" };

/** What the engine would pass to the provider: the dynamic resource's inputs, secrets unwrapped. */
async function inputsFor(connection: ConnectionInfo, opts: { dir: string; timescaledb: boolean; protectData?: boolean; role?: string }) {
  const recorded = await recordSchemaMigrations({
    connection,
    role: opts.role,
    timescaledb: opts.timescaledb,
    variables: VARS,
    protectData: opts.protectData ?? false,
    migrationsDir: opts.dir,
  });
  const dyn = recorded.find((r) => r.type === "pulumi-nodejs:dynamic/tsdb:SchemaMigrations");
  if (!dyn) throw new Error(`no dynamic resource among ${recorded.map((r) => r.type).join(", ")}`);
  const inputs: Record<string, unknown> = { ...dyn.inputs, connection: unsecret(dyn.inputs.connection) };
  return { inputs, provider: loadSerializedProvider(String(dyn.inputs.__provider)) };
}

/** A copy of the basic fixtures without the files of the given versions. */
function basicWithout(...versions: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mig-prov-"));
  for (const f of fs.readdirSync(path.join(FIXTURES, "basic"))) {
    if (!versions.some((v) => f.startsWith(v))) fs.copyFileSync(path.join(FIXTURES, "basic", f), path.join(dir, f));
  }
  return dir;
}

async function q(url: string, sql: string): Promise<unknown[]> {
  return withClient(url, async (c) => (await c.query(sql)).rows);
}

describe("the serialized migrations hook on TimescaleDB", () => {
  let tsdb: Engine;
  let conn: ConnectionInfo;
  beforeAll(async () => {
    tsdb = await startTimescaleEngine();
    conn = { host: tsdb.host, port: tsdb.port, database: "postgres", user: tsdb.user, password: tsdb.password, sslmode: "disable" };
  });
  afterAll(async () => {
    await tsdb?.stop();
  });
  const hypertables = "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1";
  const caggs = "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1";
  const history = "SELECT version FROM schema_migrations.applied ORDER BY 1";

  test("create applies every migration; diff, update (remove, re-add) and delete follow the files", async () => {
    const all = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true });
    expect(all.inputs.names).toEqual(["0001_schemas.sql", "0002_bars.sql", "0003_daily.sql"]);

    const created = await all.provider.create(all.inputs);
    expect(created.id).toBe("schema_migrations@postgres");
    expect(created.outs.appliedVersions).toEqual([1, 2, 3]);
    expect(created.outs.stateVersion).toBe(1);
    expect(await q(tsdb.url, hypertables)).toEqual([{ hypertable_name: "bars" }]);
    expect(await q(tsdb.url, caggs)).toEqual([{ view_name: "bars_daily" }]);

    const state = { ...created.outs, __provider: all.inputs.__provider };
    const same = await all.provider.diff!(created.id, state, all.inputs);
    expect(same).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });

    // 0003 removed from sql/: the diff changes nothing in place; the update runs 0003's down part.
    const fewer = await inputsFor(conn, { dir: basicWithout("0003"), timescaledb: true });
    expect((await fewer.provider.check!(all.inputs, fewer.inputs)).inputs?.plan).toEqual(["revert 0003_daily.sql (drops research.notes)"]);
    expect(await fewer.provider.diff!(created.id, state, fewer.inputs)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await fewer.provider.update!(created.id, state, fewer.inputs);
    expect(updated.outs.appliedVersions).toEqual([1, 2]);
    expect(await q(tsdb.url, caggs)).toEqual([]);
    expect(await q(tsdb.url, history)).toEqual([{ version: 1 }, { version: 2 }]);

    // Back again: the update applies 0003.
    const state2 = { ...updated.outs, __provider: fewer.inputs.__provider };
    const readded = await all.provider.update!(created.id, state2, all.inputs);
    expect(readded.outs.appliedVersions).toEqual([1, 2, 3]);
    expect(await q(tsdb.url, caggs)).toEqual([{ view_name: "bars_daily" }]);

    await all.provider.delete!(created.id, { ...readded.outs, __provider: all.inputs.__provider });
    expect(await q(tsdb.url, hypertables)).toEqual([]);
    expect(await q(tsdb.url, history)).toEqual([]);
  });

  test("in a protected stack, destroy refuses, naming the setting, and drops nothing", async () => {
    const p = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true, protectData: true });
    const created = await p.provider.create(p.inputs);
    await expect(p.provider.delete!(created.id, { ...created.outs, __provider: p.inputs.__provider })).rejects.toThrow(
      "[tsdb:protectData] is true on this stack, so destroying the schema would drop market data. Run pulumi config set tsdb:protectData false && pulumi up first if you really mean it.",
    );
    // Removing a file from sql/ is refused too: its down part would drop data.
    const fewer = await inputsFor(conn, { dir: basicWithout("0003"), timescaledb: true, protectData: true });
    await expect(p.provider.update!(created.id, { ...created.outs }, fewer.inputs)).rejects.toThrow(
      /^\[tsdb:protectData\] is true on this stack, so reverting 0003_daily\.sql \(removed from sql\/\) would drop market data/,
    );
    expect(await q(tsdb.url, history)).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }]);
    // Lifting protection (an update recording protectData=false) allows the destroy.
    const open = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true, protectData: false });
    const lifted = await open.provider.update!(created.id, created.outs, open.inputs);
    await open.provider.delete!(created.id, lifted.outs);
    expect(await q(tsdb.url, hypertables)).toEqual([]);
  });

  test("state written by the v0 provider (no stateVersion, bare migrations) still diffs and deletes", async () => {
    const all = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true });
    await all.provider.create(all.inputs);
    const migrations = all.inputs.migrations as { version: number; name: string; checksum: string; up: string; down: string }[];
    // Hand-written v0 state: what an older provider version stored.
    const v0 = {
      connection: all.inputs.connection,
      timescaledb: true,
      migrations: migrations.map(({ version, name, checksum, up, down }) => ({ version, name, checksum, up, down })),
      __provider: all.inputs.__provider,
    };
    const diff = await all.provider.diff!("schema_migrations@postgres", v0, all.inputs);
    expect(diff.changes).toBe(true); // the state shape is upgraded by an update, nothing else
    expect(diff.replaces).toEqual([]);
    // The update from v0 state re-applies nothing and writes the current state shape.
    const upgraded = await all.provider.update!("schema_migrations@postgres", v0, all.inputs);
    expect(upgraded.outs).toMatchObject({ stateVersion: 1, appliedVersions: [1, 2, 3], protectData: false });
    expect(await q(tsdb.url, "SELECT count(*)::int AS n FROM schema_migrations.applied")).toEqual([{ n: 3 }]);
    await all.provider.delete!("schema_migrations@postgres", v0);
    expect(await q(tsdb.url, hypertables)).toEqual([]);
    expect(await q(tsdb.url, history)).toEqual([]);
  });

  test("a tampered applied migration stops the update, naming the file", async () => {
    const all = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true });
    const created = await all.provider.create(all.inputs);
    const edited = basicWithout();
    fs.appendFileSync(path.join(edited, "0002_bars.sql"), "\n-- edited\n");
    const next = await inputsFor(conn, { dir: edited, timescaledb: true });
    expect((await next.provider.diff!(created.id, created.outs, next.inputs)).changes).toBe(true);
    await expect(next.provider.update!(created.id, created.outs, next.inputs)).rejects.toThrow(
      /^Checksum of 0002_bars\.sql does not match the applied one/,
    );
    await all.provider.delete!(created.id, created.outs);
  });
});

describe("the serialized migrations hook on PostgreSQL 17 (vanilla, as the migrator)", () => {
  let pg: Engine;
  let conn: ConnectionInfo;
  let url: string;
  beforeAll(async () => {
    pg = await startPostgresServer();
    url = await pg.createDatabase("market");
    await withClient(url, async (c) => {
      await c.query("CREATE ROLE market_owner NOLOGIN");
      await c.query("CREATE ROLE market_migrator LOGIN PASSWORD 's3cret-migrator-pw' IN ROLE market_owner");
      await c.query("GRANT CREATE ON DATABASE market TO market_owner");
    });
    conn = { host: pg.host, port: pg.port, database: "market", user: "market_migrator", password: "s3cret-migrator-pw", sslmode: "disable" };
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("objects are owned by the role; the password sits only in the connection output, which is secret", async () => {
    const p = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: false, role: "market_owner" });
    const created = await p.provider.create(p.inputs);
    const owners = await q(url, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('market_data','research','schema_migrations')");
    expect(owners).toEqual([{ tableowner: "market_owner" }]);
    const { connection, ...rest } = created.outs as { connection: ConnectionInfo };
    expect(connection.password).toBe("s3cret-migrator-pw");
    expect(JSON.stringify(rest)).not.toContain("s3cret-migrator-pw");
    await p.provider.delete!(created.id, created.outs);
    expect(await q(url, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'market_data'")).toEqual([{ n: 0 }]);
  });

  test("a new password alone is an in-place change, another database replaces, and a mode switch replaces", async () => {
    const p = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: false, role: "market_owner" });
    const state = (await p.provider.create(p.inputs)).outs as Record<string, unknown>;
    const diff = (news: Record<string, unknown>) => p.provider.diff!("schema_migrations@market", state, news as never) as Promise<pulumi.dynamic.DiffResult>;
    expect(await diff({ ...p.inputs, connection: { ...conn, password: "rotated" } })).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(await diff({ ...p.inputs, connection: { ...conn, database: "other" } })).toEqual({ changes: true, replaces: ["connection"], deleteBeforeReplace: true });
    expect(await diff({ ...p.inputs, timescaledb: true })).toEqual({ changes: true, replaces: ["timescaledb"], deleteBeforeReplace: true });
    await p.provider.delete!("schema_migrations@market", state);
  });

  test("a backend terminated mid-create rejects with one line naming the migration, and the provider process lives on", async () => {
    const dir = basicWithout("0003");
    fs.writeFileSync(path.join(dir, "0003_slow.sql"), "-- migrate:up\nCREATE TABLE research.slow (x int);\nSELECT pg_sleep(60);\n-- migrate:down\nDROP TABLE research.slow;\n");
    const p = await inputsFor(conn, { dir, timescaledb: false, role: "market_owner" });
    const created = p.provider.create(p.inputs);
    created.catch(() => undefined); // asserted below, after the termination
    let pid = 0;
    for (let i = 0; i < 600 && pid === 0; i++) {
      const r = (await q(url, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'")) as { pid: number }[];
      pid = r[0]?.pid ?? 0;
      if (pid === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pid).toBeGreaterThan(0);
    await q(url, `SELECT pg_terminate_backend(${pid})`);
    await expect(created).rejects.toThrow(
      /^connection lost during applying 0003_slow\.sql; nothing of it was committed; committed before it: applied 0001_schemas\.sql, applied 0002_bars\.sql$/,
    );
    expect(await q(url, "SELECT version FROM schema_migrations.applied ORDER BY 1")).toEqual([{ version: 1 }, { version: 2 }]);
    expect(await q(url, "SELECT to_regclass('research.slow') AS t")).toEqual([{ t: null }]);
    // Clean up with the same files minus the slow one, which never applied.
    const rest = await inputsFor(conn, { dir: basicWithout("0003"), timescaledb: false, role: "market_owner" });
    await rest.provider.delete!("schema_migrations@market", (await rest.provider.create(rest.inputs)).outs);
  });

  test("a TimescaleDB run on a database migrated vanilla is refused in one line, naming tsdb:timescaledb", async () => {
    const vanilla = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: false, role: "market_owner" });
    const state = (await vanilla.provider.create(vanilla.inputs)).outs as Record<string, unknown>;
    const tsdbMode = await inputsFor(conn, { dir: path.join(FIXTURES, "basic"), timescaledb: true, role: "market_owner" });
    await expect(tsdbMode.provider.create(tsdbMode.inputs)).rejects.toThrow(
      "This database was migrated without TimescaleDB (vanilla PostgreSQL), but this run is for TimescaleDB; nothing was changed: pass --no-timescaledb (CLI) or set tsdb:timescaledb false (stack).",
    );
    await vanilla.provider.delete!("schema_migrations@market", state);
  });
});
