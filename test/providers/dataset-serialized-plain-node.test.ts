/**
 * The dataset hook serialized from tsc output in a plain Node process (no vitest transforms), then loaded as
 * the dynamic-provider host loads it and run against the TimescaleDB engine.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { type CompiledComponent, compileComponent, loadSerializedProvider, unsecret } from "../fixtures/dynamicProviders";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";
import { SAMPLE_ROWS, countBars, migrate } from "../fixtures/loader/target";

const ROOT = path.join(__dirname, "../..");

describe("the dataset hook serialized from tsc output in plain Node", () => {
  let tsdb: Engine;
  let component: CompiledComponent;
  beforeAll(async () => {
    [component, tsdb] = await Promise.all([compileComponent("components/MarketDataLoad.ts", "MarketDataLoad", { read: 0 }), startTimescaleEngine()]);
    await migrate(tsdb.url, true);
  });
  afterAll(async () => {
    component?.dispose();
    await tsdb?.stop();
  });

  test("the serialized provider from compiled JS loads the bundled sample", async () => {
    const connection: ConnectionInfo = { host: tsdb.host, port: tsdb.port, database: "postgres", user: tsdb.user, password: tsdb.password, sslmode: "disable" };
    const args = { connection, dataset: { name: "sample", source: "data/sample/csv/ohlcv.csv" }, projectDir: ROOT };
    const line = await component.serialize("sample", args);
    expect(line.type).toBe("pulumi-nodejs:dynamic/tsdb:MarketDataLoad");
    const text = String(line.inputs.__provider);
    expect(text).not.toContain("__vite_ssr");
    expect(text).toContain('require("node:child_process")');

    const provider = loadSerializedProvider(text);
    const created = await provider.create({ ...line.inputs, connection: unsecret(line.inputs.connection) });
    expect(created.outs).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, rejected: 0 });
    expect(await countBars(tsdb.url)).toBe(SAMPLE_ROWS);
  });
});
