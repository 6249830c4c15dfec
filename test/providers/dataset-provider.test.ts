/**
 * The dataset hook executed through its serialized form: the `__provider` string Pulumi produced for
 * MarketDataLoad is loaded as the dynamic-provider host loads it, then create, diff, update and delete run
 * against real databases (TimescaleDB engine and PostgreSQL 17, both with the real migrations).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import type { DatasetSetting } from "../../lib/settings";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";
import { SECRET_SIG, loadSerializedProvider, recordMarketDataLoad, unsecret } from "../fixtures/loader/harness";
import { SAMPLE_DIR, SAMPLE_ROWS, countBars, migrate } from "../fixtures/loader/target";

const ROOT = path.resolve(__dirname, "../..");

/** A throwaway project directory whose scripts/, lib/ and node_modules are the real ones. */
function scratchProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dataset-proj-"));
  for (const entry of ["scripts", "lib", "node_modules", "package.json", "tsconfig.json"]) fs.symlinkSync(path.join(ROOT, entry), path.join(dir, entry));
  fs.mkdirSync(path.join(dir, "data"));
  fs.copyFileSync(path.join(SAMPLE_DIR, "csv/ohlcv.csv"), path.join(dir, "data/bars.csv"));
  return dir;
}

async function inputsFor(connection: ConnectionInfo, dataset: DatasetSetting, projectDir: string) {
  const recorded = await recordMarketDataLoad({ connection, dataset, projectDir });
  const component = recorded.find((r) => r.type === "tsdb:hooks:MarketDataLoad");
  const dyn = recorded.find((r) => r.type === "pulumi-nodejs:dynamic/tsdb:MarketDataLoad");
  if (!component || !dyn) throw new Error(`missing resources among ${recorded.map((r) => r.type).join(", ")}`);
  return { raw: dyn.inputs, inputs: { ...dyn.inputs, connection: unsecret(dyn.inputs.connection) } as Record<string, unknown>, provider: loadSerializedProvider(String(dyn.inputs.__provider)) };
}

describe.each([
  { name: "TimescaleDB (PGlite)", start: startTimescaleEngine, timescaledb: true },
  { name: "PostgreSQL 17", start: () => startPostgresServer(), timescaledb: false },
])("the serialized dataset hook on $name", ({ start, timescaledb }) => {
  let engine: Engine;
  let conn: ConnectionInfo;
  beforeAll(async () => {
    engine = await start();
    await migrate(engine.url, timescaledb);
    conn = { host: engine.host, port: engine.port, database: "postgres", user: engine.user, password: engine.password, sslmode: "disable" };
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("create loads, an unchanged dataset has no diff, a changed file or setting reloads, delete keeps the bars", async () => {
    const project = scratchProject();
    const dataset: DatasetSetting = { name: "bars", source: "data/bars.csv" };
    const first = await inputsFor(conn, dataset, project);
    expect(first.raw.connection).toHaveProperty(SECRET_SIG);
    expect(first.inputs.files).toEqual(["data/bars.csv"]);
    expect(first.inputs.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);

    const created = await first.provider.create(first.inputs);
    expect(created.id).toBe("dataset:bars@postgres");
    expect(created.outs).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, updated: 0, alreadyPresent: 0, rejected: 0, stateVersion: 1 });
    expect(await countBars(engine.url)).toBe(SAMPLE_ROWS);

    const state = { ...created.outs, __provider: first.inputs.__provider };
    expect(await first.provider.diff!(created.id, state, first.inputs)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    // Another password is not another dataset.
    const newPassword = { ...first.inputs, connection: { ...conn, password: "rotated" } };
    expect((await first.provider.diff!(created.id, state, newPassword)).changes).toBe(false);

    fs.appendFileSync(path.join(project, "data/bars.csv"), "2025-01-02,AAPL,XNAS,SAMPLE,1d,1,2,0.5,1.5,10\n2025-01-03,AAPL,XNAS,SAMPLE,1d,1,0.5,0.5,1.5,10\n");
    const changed = await inputsFor(conn, dataset, project);
    expect(changed.inputs.checksum).not.toBe(first.inputs.checksum);
    expect(await changed.provider.diff!(created.id, state, changed.inputs)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await changed.provider.update!(created.id, state, changed.inputs);
    expect(updated.outs).toMatchObject({ read: SAMPLE_ROWS + 2, inserted: 1, alreadyPresent: SAMPLE_ROWS, rejected: 1, rejectsFile: ".tsdb/rejects/bars.csv" });
    expect(fs.readFileSync(path.join(project, ".tsdb/rejects/bars.csv"), "utf8")).toContain("high 0.5 is below max(open 1, close 1.5)");

    const policy = await inputsFor(conn, { ...dataset, onConflict: "update" }, project);
    expect((await policy.provider.diff!(created.id, { ...updated.outs, __provider: changed.inputs.__provider }, policy.inputs)).changes).toBe(true);

    await policy.provider.delete!(created.id, updated.outs);
    expect(await countBars(engine.url)).toBe(SAMPLE_ROWS + 1);
  });

  test("a failing load names the dataset and the reason", async () => {
    const project = scratchProject();
    fs.writeFileSync(path.join(project, "data/bars.csv"), "when,what\n1,2\n");
    const { inputs, provider } = await inputsFor(conn, { name: "broken", source: "data/bars.csv", timeframe: "1d" }, project);
    await expect(provider.create(inputs)).rejects.toThrow(/^Loading dataset broken \(data\/bars.csv\) failed: tsdb data load: .*bars.csv: no column for time; expected one of ts_event/);
  });
});
