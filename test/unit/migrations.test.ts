import path from "node:path";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { describe, expect, test } from "vitest";
import { type AppliedMigration, migrationsToRevert, pendingMigrations, verifyChecksums } from "../../lib/migrations/core";
import {
  loadMigrations,
  parseMigrationFile,
  readMigrationsDir,
  resolveMigration,
  validateVariables,
} from "../../lib/migrations/file";
import { failureLine, isConnectionLost } from "../../lib/db";
import { checkDownAllowed, dropsIn, formatDownPlan } from "../../lib/migrations/downPlan";
import { statusOf } from "../../lib/migrations/runner";
import { splitStatements } from "../../lib/migrations/split";

const FIXTURES = path.join(__dirname, "../fixtures/migrations");
const VARS = {
  ohlcvChunkInterval: "30 days",
  tickChunkInterval: "1 day",
  compressAfter: "90 days",
  tickRetention: "180 days",
  caggRefreshInterval: "1 hour",
};

describe("splitting SQL into statements", () => {
  test.each([
    ["plain statements", "SELECT 1;\nSELECT 2;", [["SELECT 1;", 1], ["SELECT 2;", 2]]],
    ["no final semicolon", "SELECT 1;\n\n  SELECT 2", [["SELECT 1;", 1], ["SELECT 2", 3]]],
    ["semicolon in a string", "SELECT 'a;b';", [["SELECT 'a;b';", 1]]],
    ["doubled quote", "SELECT 'it''s;';SELECT 3;", [["SELECT 'it''s;';", 1], ["SELECT 3;", 1]]],
    ["E-string with backslash-escaped quote", "SELECT E'a\\';b';", [["SELECT E'a\\';b';", 1]]],
    ["quoted identifier", 'CREATE TABLE "a;b" (x int);', [['CREATE TABLE "a;b" (x int);', 1]]],
    ["dollar-quoted body", "DO $$ BEGIN PERFORM 1; END $$;\nSELECT 2;", [["DO $$ BEGIN PERFORM 1; END $$;", 1], ["SELECT 2;", 2]]],
    ["tagged dollar quote holding $$", "SELECT $fn$ a $$ ; $fn$;", [["SELECT $fn$ a $$ ; $fn$;", 1]]],
    ["$1 is a parameter, not a quote", "PREPARE p AS SELECT $1;SELECT 2;", [["PREPARE p AS SELECT $1;", 1], ["SELECT 2;", 1]]],
    ["line comment with semicolon", "-- a; b\nSELECT 1;", [["SELECT 1;", 2]]],
    ["nested block comment", "/* a /* b; */ c; */ SELECT 1;", [["SELECT 1;", 1]]],
    ["only comments", "-- nothing\n/* here */\n", []],
    ["trailing comment after last statement", "SELECT 1;\n-- end\n", [["SELECT 1;", 1]]],
  ])("%s", (_name, script, expected) => {
    expect(splitStatements(script).map((s) => [s.sql, s.line])).toEqual(expected);
  });

  test.each([
    ["SELECT 'abc", /Unterminated string starting on line 1/],
    ["SELECT 1;\nDO $x$ BEGIN", /Unterminated dollar quote \$x\$ starting on line 2/],
    ["/* open", /Unterminated block comment/],
    ['SELECT "abc', /Unterminated quoted identifier/],
  ])("an unterminated construct is an error naming its line: %s", (script, message) => {
    expect(() => splitStatements(script)).toThrow(message);
  });
});

describe("parsing migration files", () => {
  const good = "-- about\n-- migrate:up\nCREATE TABLE t (x int);\n-- migrate:down\nDROP TABLE t;\n";

  test("version and name come from the file name; the checksum is sha256 of the whole file", () => {
    const f = parseMigrationFile("0042_add_ticks.sql", good);
    expect(f).toMatchObject({ version: 42, name: "add_ticks", file: "0042_add_ticks.sql", noTransaction: false });
    expect(f.checksum).toBe(createHash("sha256").update(good).digest("hex"));
    expect(f.up.firstLine).toBe(3);
    expect(f.down.firstLine).toBe(5);
  });

  test("editing only the down part changes the checksum", () => {
    const a = parseMigrationFile("0001_a.sql", good);
    const b = parseMigrationFile("0001_a.sql", good.replace("DROP TABLE t;", "DROP TABLE IF EXISTS t;"));
    expect(a.checksum).not.toBe(b.checksum);
  });

  test("no-transaction is read from its marker before migrate:up", () => {
    expect(parseMigrationFile("0001_a.sql", `-- migrate:no-transaction\n${good}`).noTransaction).toBe(true);
  });

  test.each([
    ["1_a.sql", good, /must look like NNNN_snake_case_name\.sql/],
    ["0001_Bad-Name.sql", good, /must look like NNNN_snake_case_name\.sql/],
    ["0000_zero.sql", good, /version 0000 is reserved/],
    ["0001_a.sql", "CREATE TABLE t (x int);", /0001_a\.sql: no "-- migrate:up" line/],
    ["0001_a.sql", "-- migrate:up\nSELECT 1;\n", /0001_a\.sql: no "-- migrate:down" line/],
    ["0001_a.sql", "-- migrate:down\n-- migrate:up\nSELECT 1;", /line 1: "-- migrate:down" comes before/],
    ["0001_a.sql", "-- migrate:up\n-- migrate:down\n", /the up part is empty/],
    ["0001_a.sql", "SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n", /line 1: SQL before "-- migrate:up" would never run/],
    ["0001_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:no-transaction\n-- migrate:down\n", /line 3: "-- migrate:no-transaction" must come before/],
    ["0001_a.sql", "-- migrate:upp\n", /line 1: unknown marker "-- migrate:upp"/],
    ["0001_a.sql", "-- migrate:up\n-- if:timescaledb\nSELECT 1;\n-- migrate:down\n", /line 2: "-- if:timescaledb" is never closed/],
    ["0001_a.sql", "-- migrate:up\nSELECT 1;\n-- end:vanilla\n-- migrate:down\n", /line 3: "-- end:vanilla" without a matching/],
    ["0001_a.sql", "-- migrate:up\n-- if:vanilla\nSELECT 1;\n-- end:timescaledb\n-- migrate:down\n", /line 4: "-- end:timescaledb" closes "-- if:vanilla" opened on line 2/],
    ["0001_a.sql", "-- migrate:up\n-- if:cloud\nSELECT 1;\n-- end:cloud\n-- migrate:down\n", /line 2: unknown condition "cloud"/],
  ])("%s is rejected with a message naming what is wrong (%#)", (file, content, message) => {
    expect(() => parseMigrationFile(file, content)).toThrow(message);
  });
});

describe("resolving a migration for a mode and settings", () => {
  const text = [
    "-- migrate:up", //                                            1
    "CREATE TABLE t (x int);", //                                  2
    "-- if:timescaledb", //                                        3
    "SELECT create_hypertable('t', by_range('x', INTERVAL {{ohlcvChunkInterval}}));", // 4
    "-- end:timescaledb", //                                       5
    "-- if:vanilla", //                                            6
    "CREATE INDEX ON t (x);", //                                   7
    "-- end:vanilla", //                                           8
    "-- if:tickRetention", //                                      9
    "SELECT add_retention_policy('t', INTERVAL {{tickRetention}});", // 10
    "-- end:tickRetention", //                                     11
    "-- migrate:down", //                                          12
    "DROP TABLE t;", //                                            13
  ].join("\n");
  const file = parseMigrationFile("0002_t.sql", text);

  test("TimescaleDB mode keeps timescaledb blocks, drops vanilla ones, and keeps file line numbers", () => {
    const r = resolveMigration(file, { timescaledb: true, variables: VARS });
    const lines = r.up.split("\n");
    expect(r.upLine).toBe(2);
    expect(lines[4 - r.upLine]).toBe("SELECT create_hypertable('t', by_range('x', INTERVAL '30 days'));");
    expect(r.up).not.toContain("CREATE INDEX");
    expect(lines[10 - r.upLine]).toBe("SELECT add_retention_policy('t', INTERVAL '180 days');");
    expect(r.down.trim()).toBe("DROP TABLE t;");
    expect(r.downLine).toBe(13);
  });

  test("vanilla mode keeps vanilla blocks only; an empty setting drops its block", () => {
    const r = resolveMigration(file, { timescaledb: false, variables: { ...VARS, tickRetention: "" } });
    expect(r.up).toContain("CREATE INDEX ON t (x);");
    expect(r.up).not.toContain("create_hypertable");
    expect(r.up).not.toContain("add_retention_policy");
    expect(r.up.split("\n")).toHaveLength(10); // lines 2..11 of the file, blanks included
  });

  test.each([
    ["{{chunk}}", VARS, /0001_v\.sql line 2: unknown variable \{\{chunk\}\}/],
    ["{{tickRetention}}", { ...VARS, tickRetention: "" }, /line 2: \{\{tickRetention\}\} has no value; use it only inside "-- if:tickRetention"/],
    ["{{compressAfter}}", { ohlcvChunkInterval: "1 day" }, /line 2: \{\{compressAfter\}\} has no value; set tsdb:compressAfter/],
  ])("placeholder %s is an error naming file and line", (placeholder, variables, message) => {
    const f = parseMigrationFile("0001_v.sql", `-- migrate:up\nSELECT INTERVAL ${placeholder};\n-- migrate:down\n`);
    expect(() => resolveMigration(f, { timescaledb: true, variables })).toThrow(message);
  });

  test.each([
    [{ compressAfter: "30 days'; DROP TABLE x; --" }, /\[tsdb:compressAfter\] must be an interval like '30 days'/],
    [{ compressAfter: "1 fortnight" }, /\[tsdb:compressAfter\] must be an interval/],
    [{ compressAfter: "" }, /\[tsdb:compressAfter\] must be an interval such as '30 days', got an empty value/],
    [{ chunk: "1 day" }, /Unknown migration variable "chunk"/],
  ])("settings are validated before they reach SQL: %j", (variables, message) => {
    expect(() => validateVariables(variables)).toThrow(message);
  });

  test.each(["1 day", "15 minutes", "7 days", "1 hour", "12 months", "500 milliseconds"])("%s is a valid interval", (v) => {
    expect(() => validateVariables({ caggRefreshInterval: v })).not.toThrow();
  });
});

describe("reading a migrations directory", () => {
  test("files come back in version order with their names", () => {
    expect(readMigrationsDir(path.join(FIXTURES, "basic")).map((f) => f.file)).toEqual([
      "0001_schemas.sql",
      "0002_bars.sql",
      "0003_daily.sql",
    ]);
  });

  test("two files with one version are an error naming both", () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "mig-dup-"));
    fs.writeFileSync(path.join(dir, "0001_a.sql"), "-- migrate:up\nSELECT 1;\n-- migrate:down\n");
    fs.writeFileSync(path.join(dir, "0001_b.sql"), "-- migrate:up\nSELECT 1;\n-- migrate:down\n");
    expect(() => readMigrationsDir(dir)).toThrow(/0001_a\.sql and 0001_b\.sql have the same version 1/);
  });

  test("a missing directory is an error naming it", () => {
    expect(() => readMigrationsDir("/nonexistent/sql")).toThrow(/Cannot read the migrations directory \/nonexistent\/sql/);
  });
});

describe("planning against a history", () => {
  const all = loadMigrations(path.join(FIXTURES, "basic"), { timescaledb: true, variables: VARS });
  const row = (version: number, checksum: string): AppliedMigration => ({
    version,
    name: "x",
    checksum,
    appliedAt: new Date(0),
    durationMs: 1,
    appliedBy: "migrator",
  });
  const [m1, m2, m3] = all as [(typeof all)[0], (typeof all)[0], (typeof all)[0]];

  test("pending migrations are the unapplied ones up to the target", () => {
    expect(pendingMigrations(all, [row(1, m1.checksum)]).map((m) => m.version)).toEqual([2, 3]);
    expect(pendingMigrations(all, [row(1, m1.checksum)], 2).map((m) => m.version)).toEqual([2]);
  });

  test("reverting goes newest first down to the target", () => {
    const history = [row(1, m1.checksum), row(2, m2.checksum), row(3, m3.checksum)];
    expect(migrationsToRevert(all, history, 1).map((m) => m.version)).toEqual([3, 2]);
    expect(migrationsToRevert(all, history, 0).map((m) => m.version)).toEqual([3, 2, 1]);
  });

  test("reverting an applied version with no file is an error naming the version", () => {
    expect(() => migrationsToRevert(all, [row(9, "x")], 0)).toThrow(/Version 9 \(x\) is applied but has no migration file/);
  });

  test("a changed applied file is a hard error naming the file", () => {
    expect(() => verifyChecksums([row(2, "0".repeat(64))], all)).toThrow(
      /^Checksum of 0002_bars\.sql does not match the applied one; was the file edited after it ran\?/,
    );
  });

  test("status marks applied, changed, pending and missing migrations", () => {
    const s = statusOf(all, [row(1, m1.checksum), row(2, "bad"), row(7, "x")]);
    expect(s.map((l) => [l.version, l.file, l.state])).toEqual([
      [1, "0001_schemas.sql", "applied"],
      [2, "0002_bars.sql", "changed"],
      [3, "0003_daily.sql", "pending"],
      [7, "0007_x.sql", "missing"],
    ]);
  });
});

describe("what a down part drops (lib/migrations/downPlan)", () => {
  test.each([
    ["one table", "DROP TABLE market_data.ohlcv_bars;", ["market_data.ohlcv_bars"], []],
    ["IF EXISTS, several, CASCADE", "drop table if exists a.b, \"Odd\".\"T;x\" cascade;", ["a.b", "Odd.T;x"], []],
    ["unqualified, mixed case", "DROP TABLE Notes;", ["notes"], []],
    ["a schema with CASCADE", "DROP SCHEMA IF EXISTS research CASCADE;", [], ["research"]],
    ["a schema without CASCADE drops no table", "DROP SCHEMA research;", [], []],
    ["views, functions and comments are not tables", "-- DROP TABLE x.y;\nDROP MATERIALIZED VIEW m.v;\nDROP FUNCTION f();", [], []],
  ])("%s", (_name, sql, tables, schemas) => {
    expect(dropsIn(sql)).toEqual({ tables, schemas });
  });

  test("every real migration that creates a table drops it in its down part", () => {
    const real = loadMigrations(path.join(__dirname, "../../sql"), { timescaledb: true, variables: VARS });
    const dropped = real.flatMap((m) => dropsIn(m.down).tables).sort();
    // Every table a migration file creates (read from the files themselves, so a new migration is covered).
    const created = fs
      .readdirSync(path.join(__dirname, "../../sql"))
      .flatMap((f) => [...fs.readFileSync(path.join(__dirname, "../../sql", f), "utf8").matchAll(/^CREATE TABLE ([a-z_]+\.[a-z_]+)/gm)].map((m) => m[1] as string))
      .sort();
    expect(created.length).toBeGreaterThanOrEqual(24);
    expect(dropped).toEqual(created);
    expect(dropped).toContain("market_data.ohlcv_bars");
  });

  const steps = [
    { file: "0004_market_data.sql", tables: [{ name: "market_data.ohlcv_bars", rows: 350_000, hypertable: true }, { name: "market_data.ticks", rows: 0, hypertable: true }] },
    { file: "0003_reference_data.sql", tables: [] },
  ];

  test("the plan reads as one line per migration with rows", () => {
    expect(formatDownPlan(steps)).toEqual([
      "revert 0004_market_data.sql: drops market_data.ohlcv_bars (hypertable, 350,000 rows), market_data.ticks (hypertable, 0 rows)",
      "revert 0003_reference_data.sql: drops no table",
    ]);
  });

  test.each([
    [{ protectData: true, force: true }, /^\[tsdb:protectData\] is true on this stack, so db down --to 2 would drop market data\..* dropping \(350,000 rows in market_data\.ohlcv_bars\); nothing was reverted\.$/],
    [{ protectData: false, force: false }, /^db down --to 2 would drop tables that hold rows \(350,000 rows in market_data\.ohlcv_bars\); nothing was reverted\. .*--force/],
  ])("the rule refuses %j", (policy, message) => {
    expect(() => checkDownAllowed(steps, { ...policy, action: "db down --to 2" })).toThrow(message);
  });

  test("the rule allows forced drops, empty tables, and nothing to revert even when protected", () => {
    expect(() => checkDownAllowed(steps, { protectData: false, force: true, action: "x" })).not.toThrow();
    expect(() => checkDownAllowed([steps[1]!], { protectData: false, force: false, action: "x" })).not.toThrow();
    expect(() => checkDownAllowed([], { protectData: true, force: false, action: "x" })).not.toThrow();
  });
});

describe("telling a lost connection from other failures (lib/db)", () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
  test.each([
    ["pg_terminate_backend", pgError("57P01", "terminating connection due to administrator command"), true],
    ["node-postgres' own", new Error("Connection terminated unexpectedly"), true],
    ["a reset socket", pgError("ECONNRESET", "read ECONNRESET"), true],
    ["pg_dump's output", new Error("pg_dump: error: server closed the connection unexpectedly"), true],
    ["wrapped by the runner", new Error("0004_x.sql line 3 (up): x", { cause: pgError("57P01", "terminating connection") }), true],
    ["a refused connect", pgError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"), false],
    ["a server starting up", pgError("57P03", "the database system is starting up"), false],
    ["a failing statement", pgError("42P01", 'relation "x" does not exist'), false],
  ])("%s", (_what, err, lost) => {
    expect(isConnectionLost(err)).toBe(lost);
  });

  test("a CLI's line names what was interrupted; other errors stay themselves, on one line", () => {
    expect(failureLine(new Error("Connection terminated unexpectedly"), "the backup", "no backup was written")).toBe(
      "connection lost during the backup; no backup was written",
    );
    expect(failureLine(new Error("bad\n  thing"), "the backup")).toBe("bad thing");
  });
});
