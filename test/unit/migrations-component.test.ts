import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { migrationChanges, migrationsProvider } from "../../providers/MigrationsProvider";
import { recordSchemaMigrations, unsecret } from "../fixtures/migrations/harness";

const FIXTURES = path.join(__dirname, "../fixtures/migrations");
const VARS = { ohlcvChunkInterval: "7 days", tickChunkInterval: "1 hour", compressAfter: "30 days", tickRetention: "", caggRefreshInterval: "15 minutes" };
const CONNECTION = { host: "127.0.0.1", port: 5432, database: "market", user: "market_migrator", password: "pw", sslmode: "disable" };

describe("the SchemaMigrations component under mocks", () => {
  test("registers the component and one dynamic resource carrying the resolved migrations in order", async () => {
    const recorded = await recordSchemaMigrations({
      connection: CONNECTION,
      role: "market_owner",
      timescaledb: true,
      variables: VARS,
      protectData: true,
      migrationsDir: path.join(FIXTURES, "basic"),
    }, "schema");
    expect(recorded.map((r) => [r.type, r.name])).toEqual([
      ["tsdb:hooks:SchemaMigrations", "schema"],
      ["pulumi-nodejs:dynamic/tsdb:SchemaMigrations", "schema-migrations"],
    ]);
    const inputs = recorded[1]?.inputs ?? {};
    expect(inputs.names).toEqual(["0001_schemas.sql", "0002_bars.sql", "0003_daily.sql"]);
    expect(inputs.role).toBe("market_owner");
    expect(inputs.protectData).toBe(true);
    expect(inputs.timescaledb).toBe(true);
    // The connection (with the password) reaches the engine as a secret, so state keeps it encrypted.
    expect(inputs.connection).toEqual({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: CONNECTION });
    expect(unsecret(inputs.connection)).toEqual(CONNECTION);
    const migrations = inputs.migrations as { version: number; file: string; checksum: string; up: string; upLine: number }[];
    expect(migrations.map((m) => m.version)).toEqual([1, 2, 3]);
    expect(migrations[2]?.up).toContain("schedule_interval => INTERVAL '15 minutes'");
    expect(migrations[1]?.up).toContain("by_range('time', INTERVAL '7 days')");
    expect(migrations[1]?.up).not.toContain("bars_time_idx");
    expect(typeof inputs.__provider).toBe("string");
    expect(String(inputs.__provider)).toContain("exports.handler");
  });

  test("vanilla mode resolves the vanilla blocks", async () => {
    const recorded = await recordSchemaMigrations({
      connection: CONNECTION,
      timescaledb: false,
      variables: VARS,
      protectData: false,
      migrationsDir: path.join(FIXTURES, "basic"),
    });
    const migrations = recorded[1]?.inputs.migrations as { up: string }[];
    expect(migrations[1]?.up).toContain("CREATE INDEX bars_time_idx");
    expect(migrations[1]?.up).not.toContain("create_hypertable");
    expect(recorded[1]?.inputs.role).toBe("");
  });

  test("a broken migration file fails the program with an error naming the file and line", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mig-bad-"));
    fs.writeFileSync(path.join(dir, "0001_bad.sql"), "-- migrate:up\nSELECT INTERVAL {{nope}};\n-- migrate:down\n");
    await expect(
      recordSchemaMigrations({ connection: CONNECTION, timescaledb: true, variables: VARS, protectData: false, migrationsDir: dir }),
    ).rejects.toThrow(/^0001_bad\.sql line 2: unknown variable \{\{nope\}\}/);
  });

  test("an invalid setting fails the program naming the setting", async () => {
    await expect(
      recordSchemaMigrations({
        connection: CONNECTION,
        timescaledb: true,
        variables: { ...VARS, compressAfter: "soon" },
        protectData: false,
        migrationsDir: path.join(FIXTURES, "basic"),
      }),
    ).rejects.toThrow(/^\[tsdb:compressAfter\] must be an interval like '30 days'/);
  });
});

describe("what a preview shows", () => {
  const m = (version: number, file: string, checksum = `c${version}`) => ({
    version,
    name: file.slice(5, -4),
    file,
    checksum,
    noTransaction: false,
    up: "SELECT 1;",
    upLine: 2,
    down: "SELECT 2;",
    downLine: 4,
  });
  const applied = [m(1, "0001_schemas.sql"), m(5, "0005_old_view.sql"), m(6, "0006_ticks.sql")];
  const state = { stateVersion: 1, connection: CONNECTION, role: "", timescaledb: true, variables: VARS, protectData: false, migrations: applied };

  test("one new migration and one removed are named as apply and revert", () => {
    const news = [m(1, "0001_schemas.sql"), m(6, "0006_ticks.sql"), m(7, "0007_factor_scores.sql")];
    expect(migrationChanges({ migrations: applied }, { migrations: news })).toEqual({
      apply: ["0007_factor_scores.sql"],
      revert: ["0005_old_view.sql"],
      changed: [],
    });
  });

  test("a revert in the preview's plan names the tables its down part drops", async () => {
    const withTable = { ...state, migrations: [...applied.slice(0, 2), { ...m(6, "0006_ticks.sql"), down: "DROP TABLE market_data.ticks;" }] };
    const checked = await migrationsProvider.check!(withTable, { ...state, migrations: applied.slice(0, 2) });
    expect(checked.inputs?.plan).toEqual(["revert 0006_ticks.sql (drops market_data.ticks)"]);
  });

  test("check adds the plan a preview prints: reverts newest first, then applies", async () => {
    const news = { ...state, migrations: [m(1, "0001_schemas.sql"), m(7, "0007_factor_scores.sql"), m(8, "0008_orders.sql")] };
    const checked = await migrationsProvider.check!(state, news);
    expect(checked.inputs?.plan).toEqual([
      "revert 0006_ticks.sql",
      "revert 0005_old_view.sql",
      "apply 0007_factor_scores.sql",
      "apply 0008_orders.sql",
    ]);
    // First deployment: no old inputs, everything is applied.
    expect((await migrationsProvider.check!({}, state)).inputs?.plan).toEqual(applied.map((x) => `apply ${x.file}`));
    // An edited applied file is flagged: the update will refuse it.
    const edited = { ...state, migrations: [m(1, "0001_schemas.sql", "edited"), m(5, "0005_old_view.sql"), m(6, "0006_ticks.sql")] };
    expect((await migrationsProvider.check!(state, edited)).inputs?.plan).toEqual(["refuse 0001_schemas.sql: changed after it was applied"]);
  });

  test("an edited applied file is reported as changed", () => {
    const news = [m(1, "0001_schemas.sql", "edited"), m(5, "0005_old_view.sql"), m(6, "0006_ticks.sql")];
    expect(migrationChanges({ migrations: applied }, { migrations: news }).changed).toEqual(["0001_schemas.sql"]);
  });

  test("diff: a new migration is an in-place update; nothing new is no change", async () => {
    const same = { ...state, names: applied.map((x) => x.file) };
    expect(await migrationsProvider.diff!("id", state, same)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    const more = { ...same, migrations: [...applied, m(7, "0007_factor_scores.sql")] };
    expect(await migrationsProvider.diff!("id", state, more)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  });

  test("diff: an unknown database name during preview does not force a replacement", async () => {
    const news = { ...state, connection: { ...CONNECTION, database: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" } };
    expect((await migrationsProvider.diff!("id", state, news)).replaces).toEqual([]);
  });
});
