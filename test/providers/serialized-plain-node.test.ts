/**
 * Regression guard for "the provider serializes under vitest but not from real compiled JS": compile the
 * component with tsc, serialize it in a plain `node` process (no vitest transforms, CommonJS `require`s as
 * Pulumi sees them in production), then load that string as the dynamic-provider host does and run it.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { withClient } from "../../lib/db";
import { type CompiledComponent, compileComponent, loadSerializedProvider, unsecret } from "../fixtures/dynamicProviders";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";

const FIXTURES = path.join(__dirname, "../fixtures/migrations/basic");

describe("the migrations hook serialized from tsc output in plain Node", () => {
  let tsdb: Engine;
  let component: CompiledComponent;
  beforeAll(async () => {
    [component, tsdb] = await Promise.all([compileComponent("components/SchemaMigrations.ts", "SchemaMigrations", { appliedVersions: [], applied: [] }), startTimescaleEngine()]);
  });
  afterAll(async () => {
    component?.dispose();
    await tsdb?.stop();
  });

  test("the serialized provider from compiled JS creates and deletes the schema", async () => {
    const connection: ConnectionInfo = { host: tsdb.host, port: tsdb.port, database: "postgres", user: tsdb.user, password: tsdb.password, sslmode: "disable" };
    const args = { connection, timescaledb: true, variables: { ohlcvChunkInterval: "30 days", caggRefreshInterval: "1 hour" }, protectData: false, migrationsDir: FIXTURES };
    const line = await component.serialize("schema", args);
    expect(line.type).toBe("pulumi-nodejs:dynamic/tsdb:SchemaMigrations");
    const text = String(line.inputs.__provider);
    // Compiled code reaches pg through require, not vitest's import helpers.
    expect(text).not.toContain("__vite_ssr");
    expect(text).toContain('require("pg")');

    const provider = loadSerializedProvider(text);
    const inputs = { ...line.inputs, connection: unsecret(line.inputs.connection) };
    const created = await provider.create(inputs);
    expect(created.outs.appliedVersions).toEqual([1, 2, 3]);
    const tables = () =>
      withClient(tsdb.url, async (c) => (await c.query("SELECT hypertable_name FROM timescaledb_information.hypertables")).rows);
    expect(await tables()).toEqual([{ hypertable_name: "bars" }]);
    await provider.delete!(created.id, created.outs);
    expect(await tables()).toEqual([]);
  });
});
