/**
 * Regression guard for "the provider serializes under vitest but not from real compiled JS": compile the
 * component with tsc, serialize it in a plain `node` process (no vitest transforms, CommonJS `require`s as
 * Pulumi sees them in production), then load that string as the dynamic-provider host does and run it.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { withClient } from "../../lib/db";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";
import { loadSerializedProvider, unsecret } from "../fixtures/migrations/harness";

const run = promisify(execFile);
const ROOT = path.join(__dirname, "../..");
const FIXTURES = path.join(ROOT, "test/fixtures/migrations/basic");

/** Node script run against the compiled output: prints the dynamic resource's inputs as JSON. */
const SERIALIZE_SCRIPT = `
const pulumi = require("@pulumi/pulumi");
pulumi.runtime.setMocks({
  newResource(a) {
    if (a.type.startsWith("pulumi-nodejs:dynamic")) process.stdout.write(JSON.stringify({ type: a.type, inputs: a.inputs }) + "\\n");
    return { id: a.name + "-id", state: { ...a.inputs, appliedVersions: [], applied: [] } };
  },
  call(a) { throw new Error("unexpected call " + a.token); },
}, "tsdb", "dev", false);
const { SchemaMigrations } = require("./components/SchemaMigrations");
new SchemaMigrations("schema", JSON.parse(process.argv[2]));
`;

describe("the migrations hook serialized from tsc output in plain Node", () => {
  let tsdb: Engine;
  let outDir: string;
  beforeAll(async () => {
    outDir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-tsc-"));
    // Only the component and what it imports: other engineers' files must not break this test.
    fs.writeFileSync(
      path.join(outDir, "tsconfig.json"),
      JSON.stringify({
        extends: path.join(ROOT, "tsconfig.json"),
        compilerOptions: { outDir, rootDir: ROOT, sourceMap: false, noEmit: false },
        files: [path.join(ROOT, "components/SchemaMigrations.ts")],
        include: [],
      }),
    );
    await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(outDir, "tsconfig.json")], { cwd: ROOT });
    fs.writeFileSync(path.join(outDir, "serialize.js"), SERIALIZE_SCRIPT);
    tsdb = await startTimescaleEngine();
  });
  afterAll(async () => {
    await tsdb?.stop();
  });

  test("the serialized provider from compiled JS creates and deletes the schema", async () => {
    const connection: ConnectionInfo = { host: tsdb.host, port: tsdb.port, database: "postgres", user: tsdb.user, password: tsdb.password, sslmode: "disable" };
    const args = { connection, timescaledb: true, variables: { ohlcvChunkInterval: "30 days", caggRefreshInterval: "1 hour" }, protectData: false, migrationsDir: FIXTURES };
    const { stdout } = await run(process.execPath, [path.join(outDir, "serialize.js"), JSON.stringify(args)], {
      cwd: outDir,
      env: { ...process.env, NODE_PATH: path.join(ROOT, "node_modules") },
    });
    const line = JSON.parse(stdout.trim().split("\n")[0] ?? "{}") as { type: string; inputs: Record<string, unknown> };
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
