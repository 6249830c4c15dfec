/**
 * The dataset hook serialized from tsc output in a plain Node process (no vitest transforms), then loaded as
 * the dynamic-provider host loads it and run against the TimescaleDB engine.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";
import { loadSerializedProvider, unsecret } from "../fixtures/loader/harness";
import { SAMPLE_ROWS, countBars, migrate } from "../fixtures/loader/target";

const run = promisify(execFile);
const ROOT = path.join(__dirname, "../..");

const SERIALIZE_SCRIPT = `
const pulumi = require("@pulumi/pulumi");
pulumi.runtime.setMocks({
  newResource(a) {
    if (a.type.startsWith("pulumi-nodejs:dynamic")) process.stdout.write(JSON.stringify({ type: a.type, inputs: a.inputs }) + "\\n");
    return { id: a.name + "-id", state: { ...a.inputs, read: 0 } };
  },
  call(a) { throw new Error("unexpected call " + a.token); },
}, "tsdb", "dev", false);
const { MarketDataLoad } = require("./components/MarketDataLoad");
new MarketDataLoad("sample", JSON.parse(process.argv[2]));
`;

describe("the dataset hook serialized from tsc output in plain Node", () => {
  let tsdb: Engine;
  let outDir: string;
  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-tsc-data-"));
    fs.writeFileSync(
      path.join(outDir, "tsconfig.json"),
      JSON.stringify({
        extends: path.join(ROOT, "tsconfig.json"),
        compilerOptions: { outDir, rootDir: ROOT, sourceMap: false, noEmit: false },
        files: [path.join(ROOT, "components/MarketDataLoad.ts")],
        include: [],
      }),
    );
    await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(outDir, "tsconfig.json")], { cwd: ROOT });
    fs.writeFileSync(path.join(outDir, "serialize.js"), SERIALIZE_SCRIPT);
    tsdb = await startTimescaleEngine();
    await migrate(tsdb.url, true);
  });
  afterAll(async () => {
    await tsdb?.stop();
  });

  test("the serialized provider from compiled JS loads the bundled sample", async () => {
    const connection: ConnectionInfo = { host: tsdb.host, port: tsdb.port, database: "postgres", user: tsdb.user, password: tsdb.password, sslmode: "disable" };
    const args = { connection, dataset: { name: "sample", source: "data/sample/csv/ohlcv.csv" }, projectDir: ROOT };
    const { stdout } = await run(process.execPath, [path.join(outDir, "serialize.js"), JSON.stringify(args)], {
      cwd: outDir,
      env: { ...process.env, NODE_PATH: path.join(ROOT, "node_modules") },
    });
    const line = JSON.parse(stdout.trim().split("\n")[0] ?? "{}") as { type: string; inputs: Record<string, unknown> };
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
