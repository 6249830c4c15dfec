/**
 * Backup and restore against a real PostgreSQL 15 server (Debian's pg_dump/pg_restore here are 15) and a
 * PostgreSQL 17 server for the version check. Vanilla mode: no TimescaleDB on these servers; the compressed
 * hypertable round trip is in backup-timescaledb.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tsdbSync } from "../fixtures/cli";
import { withClient, type ConnectionInfo } from "../../lib/db";
import { createBackup, dockerPgDump, localPgDump, readManifest, writeManifest } from "../../lib/ops/backup";
import { dockerPgRestore, localPgRestore, restoreBackup, verifyBackup } from "../../lib/ops/restore";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import { schemaRunner } from "../fixtures/schema";

const SCHEMA = `
CREATE ROLE market_owner NOLOGIN;
CREATE ROLE market_app LOGIN PASSWORD 'app-pw';
CREATE SCHEMA market_data AUTHORIZATION market_owner;
CREATE TABLE market_data.ohlcv_bars (
  symbol text NOT NULL, exchange text NOT NULL DEFAULT '', provider text NOT NULL DEFAULT '', timeframe text NOT NULL,
  time timestamptz NOT NULL, open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL, close numeric NOT NULL,
  volume numeric NOT NULL DEFAULT 0, adj_close numeric, PRIMARY KEY (symbol, exchange, provider, timeframe, time));
ALTER TABLE market_data.ohlcv_bars OWNER TO market_owner;
CREATE MATERIALIZED VIEW market_data.ohlcv_weekly AS
  SELECT date_trunc('week', time) AS bucket, symbol, exchange, provider, (array_agg(open ORDER BY time))[1] AS open,
         max(high) AS high, min(low) AS low, (array_agg(close ORDER BY time DESC))[1] AS close, sum(volume) AS volume
    FROM market_data.ohlcv_bars WHERE timeframe = '1d' GROUP BY 1, 2, 3, 4;
ALTER MATERIALIZED VIEW market_data.ohlcv_weekly OWNER TO market_owner;
CREATE TABLE market_data.instruments (symbol text PRIMARY KEY, name text NOT NULL);
ALTER TABLE market_data.instruments OWNER TO market_owner;
INSERT INTO market_data.instruments VALUES ('AAPL', 'Apple'), ('MSFT', 'Microsoft'), ('BTC-USD', 'Bitcoin');
INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close, volume, adj_close)
  SELECT s, '1d', timestamptz '2015-01-02 00:00+00' + g * interval '1 day',
         100 + g * 0.0125, 101 + g * 0.0125, 99.5 + g * 0.0125, 100.25 + g * 0.0125, 1000000 + g, CASE WHEN g % 7 = 0 THEN NULL ELSE 100.125 END
    FROM unnest(ARRAY['AAPL', 'MSFT', 'BTC-USD']) s, generate_series(0, 999) g;
INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close) VALUES
  ('AAPL', '1h', '2024-03-01 14:30+00', '187.150000001', '188', '186.9', '187.4400');
REFRESH MATERIALIZED VIEW market_data.ohlcv_weekly;
REVOKE ALL ON DATABASE market FROM PUBLIC;
GRANT CONNECT ON DATABASE market TO market_app;
`;

const ALL_BARS = "SELECT symbol, timeframe, time::text, open::text, high::text, low::text, close::text, volume::text, adj_close::text FROM market_data.ohlcv_bars ORDER BY 1, 2, 3";

describe("backup and restore on PostgreSQL 15 with the local pg_dump/pg_restore", () => {
  let pg15: Engine;
  let pg17: Engine;
  let dir: string;
  let admin: ConnectionInfo;
  let original: unknown[];

  beforeAll(async () => {
    [pg15, pg17] = await Promise.all([startPostgresServer({ major: 15 }), startPostgresServer({ major: 17 })]);
    await pg15.createDatabase("market");
    await withClient(pg15.config("market"), (c) => c.query(SCHEMA));
    original = await withClient(pg15.config("market"), async (c) => (await c.query(ALL_BARS)).rows);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-backup-test-"));
    admin = { host: pg15.host, port: pg15.port, database: "postgres", user: pg15.user, password: pg15.password, sslmode: "disable" };
  });
  afterAll(async () => {
    await Promise.all([pg15?.stop(), pg17?.stop()]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const market = (): ConnectionInfo => ({ ...admin, database: "market" });
  const backup = (backupDir: string, retain = 7, now?: Date) =>
    createBackup({ connection: market(), dump: localPgDump(market()), backupDir, retain, now });

  test("a backup writes a custom-format dump and a manifest with versions, exact row counts and the dump's sha256", async () => {
    const result = await backup(dir);
    expect(fs.readFileSync(result.dumpPath).subarray(0, 5).toString()).toBe("PGDMP");
    const manifest = readManifest(result.manifestPath);
    expect(manifest).toMatchObject({
      formatVersion: 1,
      database: "market",
      owner: "postgres",
      format: "custom",
      postgresMajor: 15,
      timescaledbVersion: null,
      // Tables only: the materialized view's rows are rebuilt by the REFRESH the dump carries.
      rowCounts: { "market_data.instruments": 3, "market_data.ohlcv_bars": 3001 },
      databaseGrants: [{ grantee: "market_app", privilege: "CONNECT" }],
      roles: ["market_app", "market_owner", "pg_database_owner", "postgres"],
    });
    expect(manifest.serverVersion).toMatch(/^15\./);
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.sizeBytes).toBe(fs.statSync(result.dumpPath).size);
    expect(fs.statSync(result.dumpPath).mode & 0o777).toBe(0o600);
  });

  test("backup, drop the data, restore: identical row counts and values, database grants back", async () => {
    const { manifestPath } = await backup(path.join(dir, "roundtrip"));
    await withClient(pg15.config("market"), (c) => c.query("DROP SCHEMA market_data CASCADE"));

    // The database still exists and now has no tables: a plain restore fills it.
    const result = await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin) });
    expect(result.rowCounts).toEqual({ "market_data.instruments": 3, "market_data.ohlcv_bars": 3001 });
    const restored = await withClient(pg15.config("market"), async (c) => (await c.query(ALL_BARS)).rows);
    expect(restored).toEqual(original);
    expect(restored).toContainEqual(expect.objectContaining({ symbol: "AAPL", timeframe: "1h", open: "187.150000001", close: "187.4400" }));

    // Over existing data it refuses unless told to recreate.
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin) })).rejects.toThrow(
      'Database "market" is not empty (schemas market_data; tables market_data.instruments, market_data.ohlcv_bars, market_data.ohlcv_weekly); a restore needs an empty database. Pass --recreate',
    );
    await withClient(pg15.config("market"), (c) => c.query("DELETE FROM market_data.ohlcv_bars WHERE symbol = 'MSFT'"));
    await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true });
    expect(await withClient(pg15.config("market"), async (c) => (await c.query(ALL_BARS)).rows)).toEqual(original);
    const acl = await withClient(pg15.config("market"), async (c) =>
      (await c.query("SELECT has_database_privilege('market_app', 'market', 'CONNECT') AS app, has_database_privilege('public', 'market', 'CONNECT') AS pub")).rows[0],
    );
    expect(acl).toEqual({ app: true, pub: false });
  });

  test("a tampered dump is caught by the manifest checksum and the database is left untouched", async () => {
    const { manifestPath, dumpPath } = await backup(path.join(dir, "tampered"));
    const bytes = fs.readFileSync(dumpPath);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 0xff;
    fs.writeFileSync(dumpPath, bytes);
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true })).rejects.toThrow(
      /has sha256 [0-9a-f]{64} but its manifest records [0-9a-f]{64}: the file was altered/,
    );
    const count = await withClient(pg15.config("market"), async (c) => (await c.query("SELECT count(*)::int AS n FROM market_data.ohlcv_bars")).rows[0].n);
    expect(count).toBe(3001);
  });

  test("a row missing after pg_restore fails the row-count verification, naming the table", async () => {
    const { manifestPath } = await backup(path.join(dir, "counts"));
    const manifest = readManifest(manifestPath);
    writeManifest(manifestPath, { ...manifest, rowCounts: { ...manifest.rowCounts, "market_data.instruments": 4 } });
    await expect(verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) })).rejects.toThrow(
      /market_data\.instruments: backup had 4, restored 3/,
    );
  });

  test("--verify restores into a scratch database, compares counts, and drops it", async () => {
    const { manifestPath } = await backup(path.join(dir, "verify"));
    const result = await verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) });
    expect(result.database).toMatch(/^market_verify_\d+$/);
    expect(result.rowCounts["market_data.ohlcv_bars"]).toBe(3001);
    const left = await withClient(pg15.config(), async (c) => (await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'market_verify_%'")).rows);
    expect(left).toEqual([]);
  });

  test("a PostgreSQL 15 dump is refused by a PostgreSQL 17 server, naming both versions", async () => {
    const { manifestPath } = await backup(path.join(dir, "mismatch"));
    const admin17: ConnectionInfo = { host: pg17.host, port: pg17.port, database: "postgres", user: pg17.user, password: pg17.password, sslmode: "disable" };
    await expect(restoreBackup({ manifestPath, admin: admin17, restore: localPgRestore(admin17) })).rejects.toThrow(
      /is from PostgreSQL 15\.\d+ \(major 15\) but the target server is PostgreSQL 17\.\d+ \(major 17\); restore refused/,
    );
  });

  test("a TimescaleDB dump is refused by a server without that TimescaleDB version, naming the versions it has", async () => {
    // This server has native TimescaleDB 2.23.0 installed (.ci/install-timescaledb), as a user's server may have
    // another version than the one the dump was made with.
    const offered = await withClient(admin, async (c) => (await c.query("SELECT string_agg(version, ', ' ORDER BY version) AS v FROM pg_available_extension_versions WHERE name = 'timescaledb'")).rows[0].v);
    expect(offered).toContain("2.23.0");
    const { manifestPath } = await backup(path.join(dir, "tsdb-mismatch"));
    writeManifest(manifestPath, { ...readManifest(manifestPath), timescaledbVersion: "2.99.0" });
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: "other" })).rejects.toThrow(
      `needs TimescaleDB 2.99.0 but the target server offers ${offered}; restore refused`,
    );
  });

  test("retention keeps the newest backupRetain backups and deletes older dumps with their manifests", async () => {
    const retained = path.join(dir, "retention");
    const times = [1, 2, 3, 4].map((d) => new Date(Date.UTC(2026, 0, d, 3)));
    let last;
    for (const t of times) last = await backup(retained, 2, t);
    expect(last?.pruned.map((p) => path.basename(p))).toEqual(["market-20260102T030000000Z.dump"]);
    expect(fs.readdirSync(retained).sort()).toEqual([
      "market-20260103T030000000Z.dump",
      "market-20260103T030000000Z.manifest.json",
      "market-20260104T030000000Z.dump",
      "market-20260104T030000000Z.manifest.json",
    ]);
  });

  test("the password reaches pg_dump through its environment only: not its arguments, not the backup files", async () => {
    // A stand-in pg_dump that records what it was given, then the real one for the files.
    const fake = path.join(dir, "fake-pg_dump.sh");
    fs.writeFileSync(fake, `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/argv.txt"\nprintf '%s' "$PGPASSWORD" > "${dir}/env.txt"\nfor a in "$@"; do case "$a" in --file=*) printf PGDMP > "\${a#--file=}";; esac; done\n`, { mode: 0o755 });
    await createBackup({ connection: market(), dump: localPgDump(market(), fake), backupDir: path.join(dir, "fake"), retain: 1 });
    expect(fs.readFileSync(path.join(dir, "argv.txt"), "utf8")).not.toContain(pg15.password);
    expect(fs.readFileSync(path.join(dir, "argv.txt"), "utf8")).toMatch(/^--format=custom$/m);
    expect(fs.readFileSync(path.join(dir, "env.txt"), "utf8")).toBe(pg15.password);
    const out = path.join(dir, "secret");
    await backup(out);
    for (const f of fs.readdirSync(out)) expect(fs.readFileSync(path.join(out, f)).includes(pg15.password)).toBe(false);
  });

  test("tsdb backup and tsdb restore --verify work end to end with a local client; the password stays in PGPASSWORD", () => {
    const out = path.join(dir, "cli");
    const run = (command: string, args: string[]) => {
      const r = tsdbSync([command, ...args], { PGPASSWORD: pg15.password });
      return { status: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const url = `postgresql://${pg15.user}@${pg15.host}:${pg15.port}`;
    const backup = run("backup", ["--url", `${url}/market?sslmode=disable`, "--dir", out, "--retain", "3"]);
    expect(backup.stderr).toBe("");
    expect(backup.status).toBe(0);
    expect(backup.stdout).toMatch(/Backup of market \(PostgreSQL 15\.\d+, TimescaleDB none\):/);
    expect(backup.stdout).toMatch(/\(2 tables, 3004 rows\)/);
    const manifest = fs.readdirSync(out).find((f) => f.endsWith(".manifest.json"));
    const verify = run("restore", ["--url", `${url}/postgres?sslmode=disable`, "--backup", path.join(out, manifest ?? "missing"), "--verify", "--local-client"]);
    expect(verify.stderr).toBe("");
    expect(verify.stdout).toMatch(/^Verified market-\d{8}T\d{9}Z\.manifest\.json \(scratch database market_verify_\d+, dropped\): sha256 ok, PostgreSQL 15 \/ TimescaleDB none ok, 2 tables and 3004 rows match the manifest\.$/m);
    expect(verify.status).toBe(0);
    const refused = run("restore", ["--url", `${url}/postgres?sslmode=disable`, "--backup", path.join(out, manifest ?? "missing"), "--local-client"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^tsdb restore: Database "market" is not empty \(schemas market_data; tables /);
  });

  test("the project's own schema (vanilla migrations, rollups, audit trail, migration history) round-trips", async () => {
    const url = await pg15.createDatabase("quant");
    await schemaRunner(url, { timescaledb: false }).up();
    await withClient(url, async (c) => {
      await c.query(`INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
                     SELECT 'SPY', 'ARCX', 'test', '1d', timestamptz '2023-01-02 00:00+00' + g * interval '1 day', 380 + g * 0.5, 382 + g * 0.5, 379 + g * 0.5, 381.25 + g * 0.5, 1e6 + g
                       FROM generate_series(0, 299) g`);
      await c.query("CALL market_data.refresh_ohlcv_rollups()");
    });
    const snapshot = (c: import("pg").Client) =>
      Promise.all([
        c.query("SELECT symbol, time::text, open::text, close::text FROM market_data.ohlcv_bars ORDER BY time").then((r) => r.rows),
        c.query("SELECT bucket::text, open::text, high::text, low::text, close::text, volume::text FROM market_data.ohlcv_weekly ORDER BY bucket").then((r) => r.rows),
        c.query("SELECT version, checksum FROM schema_migrations.applied ORDER BY version").then((r) => r.rows),
      ]);
    const before = await withClient(url, snapshot);
    const quant: ConnectionInfo = { ...admin, database: "quant" };
    const { manifestPath, manifest } = await createBackup({ connection: quant, dump: localPgDump(quant), backupDir: path.join(dir, "quant"), retain: 2 });
    expect(manifest.rowCounts["market_data.ohlcv_bars"]).toBe(300);
    expect(manifest.rowCounts).not.toHaveProperty("market_data.ohlcv_weekly");
    expect(manifest.rowCounts["schema_migrations.applied"]).toBe(before[2].length);

    await withClient(url, (c) => c.query("TRUNCATE market_data.ohlcv_bars"));
    await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true });
    expect(await withClient(url, snapshot)).toEqual(before);
    const status = await schemaRunner(url, { timescaledb: false }).status();
    expect(status.every((m) => m.state === "applied")).toBe(true);
  });

  test("docker mode: pg_dump streams out of `docker exec`, pg_restore reads the dump from its stdin", async () => {
    // A stand-in docker: logs its arguments, drops `exec [-i] [-e VAR] <container>`, runs the rest here,
    // where PGHOST/PGPORT point at the test server as the container's local socket would.
    const bin = path.join(dir, "docker-bin");
    fs.mkdirSync(bin, { recursive: true });
    const log = path.join(bin, "docker.log");
    fs.writeFileSync(
      path.join(bin, "docker"),
      `#!/bin/sh\necho "$*" >> ${log}\nshift\nwhile [ "$1" = "-i" ] || [ "$1" = "-e" ]; do [ "$1" = "-e" ] && shift; shift; done\nshift\nexec "$@"\n`,
      { mode: 0o755 },
    );
    const saved = { PATH: process.env.PATH, PGHOST: process.env.PGHOST, PGPORT: process.env.PGPORT };
    Object.assign(process.env, { PATH: `${bin}:${process.env.PATH}`, PGHOST: pg15.host, PGPORT: String(pg15.port) });
    try {
      const { manifestPath, dumpPath } = await createBackup({
        connection: market(),
        dump: dockerPgDump("tsdb-dev-timescaledb", "postgres", "market", pg15.password),
        backupDir: path.join(dir, "docker"),
        retain: 1,
      });
      expect(fs.readFileSync(dumpPath).subarray(0, 5).toString()).toBe("PGDMP");
      const result = await verifyBackup({ manifestPath, admin, restore: dockerPgRestore("tsdb-dev-timescaledb", "postgres", pg15.password) });
      expect(result.rowCounts["market_data.ohlcv_bars"]).toBe(3001);
      const calls = fs.readFileSync(log, "utf8").trim().split("\n");
      expect(calls[0]).toMatch(/^exec -e PGPASSWORD tsdb-dev-timescaledb pg_dump --format=custom --username=postgres --dbname=market --no-password --snapshot=\S+$/);
      expect(calls[1]).toMatch(/^exec -i -e PGPASSWORD tsdb-dev-timescaledb pg_restore --format=custom --username=postgres --dbname=market_verify_\d+ --no-password --exit-on-error --single-transaction$/);
      expect(calls.join("\n")).not.toContain(pg15.password);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("a database holding only the empty schemas `pulumi up` creates is not empty: restore asks for --recreate", async () => {
    const { manifestPath } = await backup(path.join(dir, "schemas-only"));
    const url = await pg15.createDatabase("fresh_stack");
    await withClient(url, (c) => c.query("CREATE SCHEMA market_data; CREATE SCHEMA audit"));
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: "fresh_stack" })).rejects.toThrow(
      'Database "fresh_stack" is not empty (schemas audit, market_data); a restore needs an empty database.',
    );
    const result = await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: "fresh_stack", recreate: true });
    expect(result.rowCounts["market_data.ohlcv_bars"]).toBe(3001);
  });
});
