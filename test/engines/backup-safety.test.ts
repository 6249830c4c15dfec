/**
 * Defects in backup and restore that lost data or let the wrong role in, each reproduced against Debian's
 * PostgreSQL 15 server with the local pg_dump/pg_restore 15: a restore that fails must leave the original
 * database as it was, manifests cannot point outside their directory, dumps are private from their first byte,
 * row counts compare what a dump carries, and `tsdb restore --url` / `--backup DIR` work without Docker.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient, type ConnectionInfo } from "../../lib/db";
import { createBackup, localPgDump, readManifest, writeManifest } from "../../lib/ops/backup";
import { dockerPgRestore, localPgRestore, restoreBackup, verifyBackup, type RestoreRunner } from "../../lib/ops/restore";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import { schemaRunner } from "../fixtures/schema";

const MARKET = `
CREATE SCHEMA market_data AUTHORIZATION market_owner;
CREATE TABLE market_data.ohlcv_bars (symbol text NOT NULL, time timestamptz NOT NULL, close numeric NOT NULL, PRIMARY KEY (symbol, time));
ALTER TABLE market_data.ohlcv_bars OWNER TO market_owner;
INSERT INTO market_data.ohlcv_bars SELECT s, timestamptz '2015-01-02 00:00+00' + g * interval '1 day', 100 + g * 0.25
  FROM unnest(ARRAY['AAPL', 'MSFT']) s, generate_series(0, 1499) g;
`;

describe("restore and backup safety on PostgreSQL 15", () => {
  let pg15: Engine;
  let dir: string;
  let admin: ConnectionInfo;

  beforeAll(async () => {
    pg15 = await startPostgresServer({ major: 15 });
    await withClient(pg15.config(), (c) => c.query("CREATE ROLE market_owner NOLOGIN"));
    await market("market");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-backup-safety-"));
    admin = { host: pg15.host, port: pg15.port, database: "postgres", user: pg15.user, password: pg15.password, sslmode: "disable" };
  });
  afterAll(async () => {
    await pg15?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A database with 3,000 bars; each test has its own, so one test's outcome cannot change another's. */
  const market = async (name: string) => {
    await pg15.createDatabase(name);
    await withClient(pg15.config(name), (c) => c.query(MARKET));
    return name;
  };
  const db = (database: string): ConnectionInfo => ({ ...admin, database });
  const backup = (database: string, backupDir: string, retain = 7, now?: Date) =>
    createBackup({ connection: db(database), dump: localPgDump(db(database)), backupDir, retain, now });
  const bars = async (database: string) =>
    withClient(pg15.config(database), async (c) => (await c.query("SELECT count(*)::int AS n FROM market_data.ohlcv_bars")).rows[0].n as number);
  const databases = async (pattern: string) =>
    withClient(pg15.config(), async (c) => (await c.query("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", [pattern])).rows.map((r) => r.datname as string));

  test("restore --recreate of a dump whose owner role does not exist here refuses before touching the database", async () => {
    // The case: a dump from another server, owned by a role this server lacks, restored over `market`.
    await withClient(pg15.config(), async (c) => {
      await c.query("CREATE ROLE other_owner NOLOGIN");
      await c.query("CREATE DATABASE elsewhere OWNER other_owner");
    });
    await withClient(pg15.config("elsewhere"), (c) =>
      c.query("CREATE TABLE prices (t int); ALTER TABLE prices OWNER TO other_owner; INSERT INTO prices SELECT generate_series(1, 10)"),
    );
    const { manifestPath } = await backup("elsewhere", path.join(dir, "foreign"));
    await withClient(pg15.config(), async (c) => {
      await c.query("DROP DATABASE elsewhere");
      await c.query("DROP ROLE other_owner");
    });
    const target = await market("m_owner");

    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: target, recreate: true })).rejects.toThrow(
      /^Role "other_owner" that backup elsewhere-\S+\.dump refers to \(database owner, grantees or object owners\) does not exist on the target server; restore refused, nothing changed\./,
    );
    expect(await bars(target)).toBe(3000);
    expect(await databases("m\\_owner%")).toEqual([target]);
  });

  test("a restore --recreate that fails after pg_restore started leaves the original database intact and removes the half-restored one", async () => {
    const name = await market("m_injected");
    const { manifestPath } = await backup(name, path.join(dir, "injected"));
    await withClient(pg15.config(name), (c) => c.query("DELETE FROM market_data.ohlcv_bars WHERE symbol = 'MSFT'"));
    const failing: RestoreRunner = async (request) => {
      await localPgRestore(admin)(request);
      throw new Error("injected failure after pg_restore");
    };
    await expect(restoreBackup({ manifestPath, admin, restore: failing, recreate: true })).rejects.toThrow("injected failure after pg_restore");
    expect(await bars(name)).toBe(1500);
    expect(await databases("m\\_injected%")).toEqual([name]);

    // pg_restore itself failing half-way (a dump it cannot finish) is the same: the original stays.
    const truncated: RestoreRunner = (request) => localPgRestore(admin)({ ...request, dumpPath: path.join(dir, "no-such.dump") });
    await expect(restoreBackup({ manifestPath, admin, restore: truncated, recreate: true })).rejects.toThrow(/pg_restore exited with code 1/);
    expect(await bars(name)).toBe(1500);
    expect(await databases("m\\_injected%")).toEqual([name]);
  });

  test("a restore --recreate that succeeds swaps the verified copy in and keeps the previous database renamed", async () => {
    const name = await market("m_swap");
    const { manifestPath } = await backup(name, path.join(dir, "swap"), 7, new Date(Date.UTC(2026, 0, 1)));
    await withClient(pg15.config(name), (c) => c.query("DELETE FROM market_data.ohlcv_bars WHERE symbol = 'AAPL'"));
    const result = await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true, now: new Date(Date.UTC(2026, 5, 2, 3, 4, 5)) });
    expect(result.replaced).toBe("m_swap_replaced_20260602030405");
    expect(await bars(name)).toBe(3000);
    expect(await bars("m_swap_replaced_20260602030405")).toBe(1500);
    expect(await databases("m\\_swap%")).toEqual([name, "m_swap_replaced_20260602030405"]);
  });

  test("restore --recreate honours protectData: refused without --force, before anything changes", async () => {
    const name = await market("m_protect");
    const { manifestPath } = await backup(name, path.join(dir, "protect"));
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true, protectData: true })).rejects.toThrow(
      /^\[tsdb:protectData\] is true: --recreate would replace database "m_protect" \(schemas market_data; tables market_data\.ohlcv_bars\)\. /,
    );
    expect(await bars(name)).toBe(3000);
    expect(await databases("m\\_protect%")).toEqual([name]);
  });

  test("a docker-mode restore on a machine without Docker leaves no empty database behind", async () => {
    const { manifestPath } = await backup("market", path.join(dir, "no-docker"));
    const saved = process.env.PATH;
    process.env.PATH = path.dirname(process.execPath) === "/usr/bin" ? "/nonexistent" : path.dirname(process.execPath);
    try {
      await expect(
        restoreBackup({ manifestPath, admin, restore: dockerPgRestore("tsdb-dev-timescaledb", "postgres", pg15.password), database: "docker_less" }),
      ).rejects.toThrow("`docker` is not on PATH");
    } finally {
      process.env.PATH = saved;
    }
    expect(await databases("docker\\_less%")).toEqual([]);
  });

  test("restoring the very database the admin connection uses is refused before anything changes", async () => {
    const { manifestPath } = await backup("market", path.join(dir, "self"));
    await expect(restoreBackup({ manifestPath, admin: db("market"), restore: localPgRestore(admin), recreate: true })).rejects.toThrow(
      /^The admin connection is to database "market", the one being restored/,
    );
    expect(await bars("market")).toBe(3000);
  });

  test("a manifest whose dumpFile was edited to ../../victim.txt is never pruned nor restored", async () => {
    const backupDir = path.join(dir, "a", "b", "backups");
    const victim = path.join(backupDir, "..", "..", "victim.txt");
    const first = await backup("market", backupDir, 1, new Date(Date.UTC(2026, 0, 1)));
    fs.writeFileSync(victim, "keep me");
    writeManifest(first.manifestPath, { ...readManifest(first.manifestPath), dumpFile: "../../victim.txt" } as never);

    await backup("market", backupDir, 1, new Date(Date.UTC(2026, 0, 2)));
    await backup("market", backupDir, 1, new Date(Date.UTC(2026, 0, 3)));
    expect(fs.readFileSync(victim, "utf8")).toBe("keep me");
    await expect(restoreBackup({ manifestPath: first.manifestPath, admin, restore: localPgRestore(admin), database: "from_victim" })).rejects.toThrow(
      /is invalid: dumpFile: must be a plain file name in the backup directory/,
    );
    expect(await databases("from_victim%")).toEqual([]);
  });

  test("the dump is 0600 from its first byte while pg_dump writes it, and the backup directory is 0700", async () => {
    const backupDir = path.join(dir, "modes");
    fs.mkdirSync(backupDir, { mode: 0o755 });
    fs.chmodSync(backupDir, 0o755);
    // A pg_dump that writes its first bytes, then records the mode of the half-written dump in the directory.
    const fake = path.join(dir, "observing-pg_dump.sh");
    const seen = path.join(dir, "seen-mode.txt");
    fs.writeFileSync(
      fake,
      `#!/bin/sh
out=""
for a in "$@"; do case "$a" in --file=*) out="\${a#--file=}";; esac; done
if [ -n "$out" ]; then printf PGDMP > "$out"; else printf PGDMP; fi
i=0; while [ $i -lt 50 ]; do f=$(ls "${backupDir}"/*.partial 2>/dev/null | head -n 1); [ -n "$f" ] && [ -s "$f" ] && break; sleep 0.1; i=$((i+1)); done
stat -c %a "$f" > "${seen}"
`,
      { mode: 0o755 },
    );
    await createBackup({ connection: db("market"), dump: localPgDump(db("market"), fake), backupDir, retain: 1 });
    expect(fs.readFileSync(seen, "utf8").trim()).toBe("600");
    expect(fs.statSync(backupDir).mode & 0o777).toBe(0o700);

    const fresh = path.join(dir, "fresh", "nested");
    const { dumpPath, manifestPath } = await backup("market", fresh);
    expect([fresh, dumpPath, manifestPath].map((f) => (fs.statSync(f).mode & 0o777).toString(8))).toEqual(["700", "600", "600"]);
  });

  test("a backup taken before the rollups were refreshed restores without a false row-count mismatch", async () => {
    const url = await pg15.createDatabase("quant");
    await schemaRunner(url, { timescaledb: false }).up();
    await withClient(url, (c) =>
      c.query(`INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
               SELECT 'SPY', 'ARCX', 'test', '1d', timestamptz '2023-01-02 00:00+00' + g * interval '1 day', 380, 382, 379, 381, 1e6
                 FROM generate_series(0, 299) g`),
    );
    // No refresh: the rollup views are still empty when the backup is taken.
    const { manifestPath, manifest } = await backup("quant", path.join(dir, "unrefreshed"));
    expect(manifest.rowCounts["market_data.ohlcv_bars"]).toBe(300);
    expect(Object.keys(manifest.rowCounts).filter((name) => name.startsWith("market_data.ohlcv_") && name !== "market_data.ohlcv_bars")).toEqual([]);
    const result = await verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) });
    expect(result.rowCounts["market_data.ohlcv_bars"]).toBe(300);

    // A manifest written before the fix counted the (empty) views: those entries are not compared either.
    writeManifest(manifestPath, { ...manifest, rowCounts: { ...manifest.rowCounts, "market_data.ohlcv_weekly": 0, "market_data.ohlcv_daily": 0 } });
    await expect(verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) })).resolves.toMatchObject({ rowCounts: { "market_data.ohlcv_bars": 300 } });
  });

  describe("tsdb restore", () => {
    const run = (args: string[], bin: string) =>
      spawnSync(process.execPath, ["--import", "tsx", path.resolve("cli/tsdb.ts"), "restore", ...args], {
        encoding: "utf8",
        env: { ...process.env, PGPASSWORD: pg15.password, PATH: `${bin}:${process.env.PATH}` },
        timeout: 60_000,
      });
    /** A `docker` that records being called and fails like one without a daemon. */
    const noDocker = () => {
      const bin = fs.mkdtempSync(path.join(dir, "bin-"));
      fs.writeFileSync(path.join(bin, "docker"), `#!/bin/sh\necho "$*" >> "${bin}/docker.log"\necho "Cannot connect to the Docker daemon" >&2\nexit 1\n`, { mode: 0o755 });
      return bin;
    };
    const url = () => `postgresql://${pg15.user}@${pg15.host}:${pg15.port}/postgres?sslmode=disable`;

    test("--url on the docker-mode dev stack restores with the local pg_restore, never docker exec", async () => {
      const { manifestPath } = await backup("market", path.join(dir, "cli-url"));
      const bin = noDocker();
      const result = run(["--url", url(), "--backup", manifestPath, "--database", "market_copy"], bin);
      expect(result.stderr).toBe("");
      expect(result.stdout).toMatch(/^Restored market-\S+\.manifest\.json into market_copy: sha256 ok/m);
      expect(result.status).toBe(0);
      expect(fs.existsSync(path.join(bin, "docker.log"))).toBe(false);
      expect(await bars("market_copy")).toBe(3000);
    });

    test("--recreate on a protectData stack (prod) is refused without --force, showing what it would replace", async () => {
      const { manifestPath } = await backup("market", path.join(dir, "cli-protect"));
      const result = run(["--stack", "prod", "--url", url(), "--backup", manifestPath, "--recreate"], noDocker());
      expect(result.stderr).toBe(
        'tsdb restore: [tsdb:protectData] is true: --recreate would replace database "market" (schemas market_data; tables market_data.ohlcv_bars). Take a backup first, then add --force to confirm, or restore with --database <new name>.\n',
      );
      expect(result.status).toBe(1);
      expect(await bars("market")).toBe(3000);
      expect(await databases("market\\_re%")).toEqual([]);
    });

    test("--backup DIR takes the newest manifest in that directory", async () => {
      const backupDir = path.join(dir, "cli-dir");
      await backup("market", backupDir, 7, new Date(Date.UTC(2026, 0, 1)));
      await backup("market", backupDir, 7, new Date(Date.UTC(2026, 0, 5)));
      await backup("market", backupDir, 7, new Date(Date.UTC(2026, 0, 3)));
      const result = run(["--url", url(), "--backup", backupDir, "--verify"], noDocker());
      expect(result.stderr).toBe("");
      expect(result.stdout).toMatch(/^Verified market-20260105T000000000Z\.manifest\.json \(scratch database market_verify_\d+, dropped\)/m);
      expect(result.status).toBe(0);
    });
  });
});
