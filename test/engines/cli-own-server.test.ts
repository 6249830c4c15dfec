/**
 * The README's "Already have a server?" path, command for command, on TimescaleDB with
 * neither Docker nor the Pulumi CLI (nor the PostgreSQL client tools) on PATH: `tsdb doctor --url`,
 * `tsdb db up --url`, `tsdb data load --url`, `tsdb data validate` (DATABASE_URL). PATH holds only node's
 * directory (with Debian's node that is /usr/bin, so Debian's client tools 15 may be found: older than the
 * server, a warning).
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ROOT, tsdbAsync } from "../fixtures/cli";
import { type Engine, startTimescaleEngine } from "../fixtures/engines";

describe("a server of your own: no Docker, no Pulumi", () => {
  let engine: Engine;
  const env = { PATH: path.dirname(process.execPath), DATABASE_URL: "" };
  beforeAll(async () => {
    engine = await startTimescaleEngine();
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("doctor --url, db up --url, data load --url, data validate: each exits 0", async () => {
    const doctor = await tsdbAsync(["doctor", "--url", engine.url], env);
    expect(doctor.stdout).toMatch(/^ok {3}Database: reachable: \w+ on PostgreSQL 17\.5/m);
    expect(doctor.stdout).toMatch(/^ok {3}TimescaleDB: extension 2\.23\./m);
    expect(doctor.stdout).toMatch(/^(ok {3}|WARN )pg_dump: /m);
    expect(doctor.stdout).not.toMatch(/Pulumi|Docker|Port \d+|Disk space/);
    expect(doctor.stdout).toContain("All checks passed.");
    expect(doctor.code).toBe(0);

    const up = await tsdbAsync(["db", "up", "--url", engine.url], env);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/^applied 0001_/);

    const load = await tsdbAsync(["data", "load", "--url", engine.url, "--source", path.join(ROOT, "data/sample/csv/ohlcv.csv"), "--quiet", "--json", "--rejects", path.join(ROOT, ".tsdb/test-rejects.csv")], env);
    expect(load.code).toBe(0);
    expect(JSON.parse(load.stdout)).toMatchObject({ inserted: 5118, rejected: 0 });

    const validate = await tsdbAsync(["data", "validate", "--json"], { ...env, DATABASE_URL: engine.url });
    expect(validate.code).toBe(0);
    expect(JSON.parse(validate.stdout)).toMatchObject({ duplicateKeys: 0 });
  });
});
