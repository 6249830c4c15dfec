/**
 * Issue 23 ("Nothing lost, nobody in, round 2") in backup and restore, each reproduced on Debian's PostgreSQL 15
 * server with the local pg_dump/pg_restore 15 and a stack database made as DatabaseAccess makes it (roles
 * market_owner/_migrator/_app/_readonly, migrations run by the migrator as the owner).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient, type ConnectionInfo } from "../../lib/db";
import { createBackup, localPgDump } from "../../lib/ops/backup";
import { checkDatabase } from "../../lib/ops/databaseHealth";
import { localPgRestore, type RestoreRunner, resolveManifest, restoreBackup, sideDatabaseName, verifyBackup } from "../../lib/ops/restore";
import { stackDatabase, tsdbSync } from "../fixtures/cli";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import { schemaRunner } from "../fixtures/schema";

const BARS = `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
  SELECT 'SPY', 'ARCX', 'test', '1d', timestamptz '2023-01-02 00:00+00' + g * interval '1 day', 380, 382, 379, 381, 1e6 FROM generate_series(0, 99) g`;

/** The attack: a CHECK whose function makes the migrator SUPERUSER when whoever evaluates it is one. */
const escalatingCheck = (prelude: string) => `
SET ROLE market_owner;
CREATE FUNCTION market_data.sane_price(numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  ${prelude}
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE market_migrator SUPERUSER'; END IF;
  RETURN true;
END $$;
ALTER TABLE market_data.ohlcv_bars ADD CONSTRAINT sane_close CHECK (market_data.sane_price(close));
`;

describe("backup and restore against a hostile owner on PostgreSQL 15", () => {
  let pg15: Engine;
  let dir: string;
  let admin: ConnectionInfo;

  beforeAll(async () => {
    pg15 = await startPostgresServer({ major: 15 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-backup-hostile-"));
    admin = { host: pg15.host, port: pg15.port, database: "postgres", user: pg15.user, password: pg15.password, sslmode: "disable" };
  });
  afterAll(async () => {
    await pg15?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const db = (database: string): ConnectionInfo => ({ ...admin, database });
  /** A stack database with the real vanilla migrations applied by the migrator acting as the owner, and 100 bars. */
  const stack = async (name: string) => {
    const logins = await stackDatabase(pg15, name);
    await schemaRunner(logins.migrator, { timescaledb: false, role: "market_owner" }).up();
    await withClient(logins.migrator, (c) => c.query(`SET ROLE market_owner; ${BARS}`));
    return logins;
  };
  const backup = (database: string, backupDir: string, retain = 7, now?: Date) =>
    createBackup({ connection: db(database), dump: localPgDump(db(database)), backupDir, retain, now });
  const isSuperuser = async (role: string) =>
    withClient(pg15.config(), async (c) => (await c.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [role])).rows[0].rolsuper as boolean);
  const databases = async (pattern: string) =>
    withClient(pg15.config(), async (c) => (await c.query("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", [pattern])).rows.map((r) => r.datname as string));
  const roles = async (pattern: string) =>
    withClient(pg15.config(), async (c) => (await c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1", [pattern])).rows.map((r) => r.rolname as string));

  describe("23.1: a restore run by the admin never runs the dump's code with the admin's rights", () => {
    // The RESET variants drop the login back to its own (no) rights, so the rest of the load fails: refused, not escalated.
    test.each([
      ["the issue's CHECK constraint", "", undefined],
      ["the same CHECK after RESET ROLE (defeats pg_restore --role)", "EXECUTE 'RESET ROLE';", /permission denied for schema market_data/],
      ["the same CHECK after RESET SESSION AUTHORIZATION (defeats --use-set-session-authorization)", "EXECUTE 'RESET SESSION AUTHORIZATION';", /permission denied/],
    ])("the migrator does not become SUPERUSER through restore --verify of a dump with %s", async (_name, prelude, refused) => {
      const database = `hostile_${prelude.length}`;
      const logins = await stack(database);
      await withClient(logins.migrator, (c) => c.query(escalatingCheck(prelude)));
      expect(await isSuperuser("market_migrator")).toBe(false);
      const { manifestPath } = await backup(database, path.join(dir, database));

      const verified = verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) });
      if (refused) await expect(verified).rejects.toThrow(refused);
      else expect((await verified).rowCounts["market_data.ohlcv_bars"]).toBe(100);
      expect(await isSuperuser("market_migrator")).toBe(false);
      // The temporary logins that loaded the owner's data are gone, and so is the scratch database.
      expect(await roles("tsdb\\_restore\\_login\\_%")).toEqual([]);
      expect(await databases(`${database}\\_verify%`)).toEqual([]);
    });

    test("a restored stack database keeps its owners, grants and default privileges", async () => {
      const logins = await stack("owned");
      const { manifestPath } = await backup("owned", path.join(dir, "owned"));
      await restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: "owned_copy" });
      const facts = (url: string) =>
        withClient(url, async (c) => ({
          owners: (await c.query(`SELECT n.nspname || '.' || c.relname AS name, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE n.nspname IN ('market_data', 'audit', 'schema_migrations') ORDER BY 1`)).rows,
          defaults: (await c.query("SELECT pg_get_userbyid(defaclrole) AS role, defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1, 2")).rows,
          appCanRead: (await c.query("SELECT has_table_privilege('market_app', 'market_data.ohlcv_bars', 'SELECT') AS ok")).rows[0].ok,
        }));
      expect(await facts(pg15.urlFor("owned_copy"))).toEqual(await facts(logins.admin));
    });
  });

  describe("23.8 and 23.10: a killed restore never leaves the database nameless, and the next run names what it left", () => {
    test("the target database keeps its name through restore --recreate's swap, even while the swap is held up", async () => {
      const logins = await stack("swapped");
      const { manifestPath } = await backup("swapped", path.join(dir, "swapped"));
      // A prepared transaction in the staging database holds the swap's second rename (PostgreSQL refuses to rename a
      // database "being accessed by other users"), the moment a kill -9 left "swapped" missing before the fix.
      await withClient(pg15.config(), (c) => c.query("ALTER SYSTEM SET max_prepared_transactions = 5"));
      await pg15.restart();
      const now = new Date(Date.UTC(2026, 6, 1, 12, 0, 0));
      const staging = sideDatabaseName("swapped", "restore", now);
      const restoring = restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true, now });
      restoring.catch(() => undefined); // awaited below; a failure there is the test's
      const seen = new Set<string>();
      let held = false;
      for (let i = 0; i < 2000 && !held; i++) {
        held = await withClient(pg15.config(), async (c) => {
          const rows = (await c.query("SELECT datname FROM pg_database WHERE datname = $1 AND datallowconn", [staging])).rows;
          return rows.length === 1;
        });
        if (!held) await new Promise((r) => setTimeout(r, 20));
      }
      expect(held).toBe(true);
      await withClient(pg15.config(staging), async (c) => {
        await c.query("BEGIN");
        await c.query("PREPARE TRANSACTION 'hold_swap'");
      });
      // Watch the catalog while the swap retries, then let it go.
      const deadline = Date.now() + 8000;
      while (Date.now() < deadline) {
        const names = await withClient(pg15.config(), async (c) => (await c.query("SELECT datname FROM pg_database WHERE datname LIKE 'swapped%'")).rows.map((r) => r.datname as string));
        seen.add(names.includes("swapped") ? "present" : "missing");
        await new Promise((r) => setTimeout(r, 50));
      }
      // COMMIT PREPARED runs in the staging database, which the swap keeps closing: reopen it until we get in.
      for (let attempt = 1; ; attempt++) {
        try {
          await withClient(pg15.config(), (c) => c.query(`ALTER DATABASE ${staging} WITH ALLOW_CONNECTIONS true`));
          await withClient(pg15.config(staging), (c) => c.query("COMMIT PREPARED 'hold_swap'"));
          break;
        } catch (err) {
          if (attempt > 50) throw err;
        }
      }
      await restoring;
      expect([...seen]).toEqual(["present"]);
      expect(await databases("swapped%")).toEqual(["swapped", "swapped_replaced_20260701120000"]);
      expect(logins.admin).toContain("swapped");
    });

    test("databases and logins a killed restore left are named by doctor, and the next restore drops the scratch ones and names the closed one", async () => {
      await stack("killed");
      const { manifestPath } = await backup("killed", path.join(dir, "killed"));
      // What kill -9 leaves at each step: a scratch database of --verify, a staging database, its temporary login,
      // and (killed after closing sessions, before the swap) the target refusing connections.
      await withClient(pg15.config(), async (c) => {
        await c.query("CREATE DATABASE killed_verify_20260101000000");
        await c.query("CREATE DATABASE killed_restore_20260101000000");
        await c.query("CREATE ROLE tsdb_restore_login_0123456789ab LOGIN");
        await c.query("GRANT CONNECT ON DATABASE killed_restore_20260101000000 TO tsdb_restore_login_0123456789ab");
        await c.query("ALTER DATABASE killed WITH ALLOW_CONNECTIONS false");
      });
      const doctor = await withClient(pg15.config("postgres"), (c) => checkDatabase(c, { expectTimescaleDb: false }));
      expect(doctor.find((r) => r.name === "Interrupted restores")).toMatchObject({
        status: "fail",
        detail:
          'left by a killed restore: database "killed" refuses connections, scratch database "killed_restore_20260101000000", ' +
          'scratch database "killed_verify_20260101000000", role "tsdb_restore_login_0123456789ab"',
      });

      const result = await verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) });
      expect(result.leftovers).toEqual([
        'dropped database "killed_restore_20260101000000", left by an interrupted restore or verify',
        'dropped database "killed_verify_20260101000000", left by an interrupted restore or verify',
        'dropped role "tsdb_restore_login_0123456789ab", left by an interrupted restore',
        'database "killed" refuses connections: a restore was interrupted while swapping names. Check it, then reopen it: ALTER DATABASE "killed" WITH ALLOW_CONNECTIONS true;',
      ]);
      expect(await databases("killed%")).toEqual(["killed"]);
      expect(await roles("tsdb\\_restore\\_login\\_%")).toEqual([]);
      await withClient(pg15.config(), (c) => c.query("ALTER DATABASE killed WITH ALLOW_CONNECTIONS true"));
    });
  });

  describe("23.5-23.7: backups of different servers and databases in one directory", () => {
    const small = async (server: Engine, name: string) => {
      await server.createDatabase(name);
      await withClient(server.config(name), (c) => c.query("CREATE TABLE prices (t int); INSERT INTO prices SELECT generate_series(1, 10)"));
    };
    const on = (server: Engine, database: string): ConnectionInfo => ({ host: server.host, port: server.port, database, user: server.user, password: server.password, sslmode: "disable" });
    const backupOf = (server: Engine, database: string, backupDir: string, retain: number, options: { stack?: string; now?: Date } = {}) =>
      createBackup({ connection: on(server, database), dump: localPgDump(on(server, database)), backupDir, retain, ...options });

    test("a --retain 1 backup of one server keeps the other server's backups of the same database, and --backup DIR will not pick across servers", async () => {
      const other = await startPostgresServer({ major: 15 });
      try {
        await small(pg15, "shared_name");
        await small(other, "shared_name");
        const backupDir = path.join(dir, "two-servers");
        const theirs = [];
        for (let day = 1; day <= 3; day++) theirs.push(await backupOf(other, "shared_name", backupDir, 7, { now: new Date(Date.UTC(2026, 0, day)) }));
        const ours = await backupOf(pg15, "shared_name", backupDir, 1, { now: new Date(Date.UTC(2026, 0, 4)) });
        expect(ours.pruned).toEqual([]);
        expect(theirs.every((b) => fs.existsSync(b.dumpPath) && fs.existsSync(b.manifestPath))).toBe(true);
        expect(ours.manifest.source).toEqual({ systemIdentifier: expect.stringMatching(/^\d+$/), address: `127.0.0.1:${pg15.port}`, stack: null });
        expect(theirs[0]?.manifest.source?.systemIdentifier).not.toBe(ours.manifest.source?.systemIdentifier);

        expect(() => resolveManifest(backupDir, "shared_name")).toThrow(
          new RegExp(`^${backupDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} holds backups of "shared_name" from 2 servers \\(server \\d+ \\(127\\.0\\.0\\.1:${pg15.port}\\): newest shared_name-20260104T000000000Z\\.manifest\\.json; server \\d+ \\(127\\.0\\.0\\.1:${other.port}\\): newest shared_name-20260103T000000000Z\\.manifest\\.json\\); restore refused`),
        );
        // Backups taken for a stack are chosen by that stack.
        const prodDir = path.join(dir, "two-stacks");
        const prod = await backupOf(other, "shared_name", prodDir, 1, { stack: "prod", now: new Date(Date.UTC(2026, 0, 1)) });
        const dev = await backupOf(pg15, "shared_name", prodDir, 1, { stack: "dev", now: new Date(Date.UTC(2026, 0, 2)) });
        expect(resolveManifest(prodDir, "shared_name", "prod")).toBe(prod.manifestPath);
        expect(resolveManifest(prodDir, "shared_name", "dev")).toBe(dev.manifestPath);
      } finally {
        await other.stop();
      }
    });

    test("a manifest from the future never makes the next backup prune the dump it just wrote", async () => {
      await small(pg15, "skewed");
      const backupDir = path.join(dir, "skewed");
      const future = await backupOf(pg15, "skewed", backupDir, 7, { now: new Date(Date.UTC(2099, 0, 1)) });
      const taken = await backupOf(pg15, "skewed", backupDir, 1, { now: new Date(Date.UTC(2026, 0, 1)) });
      expect(taken.pruned).toEqual([future.dumpPath]);
      expect(fs.existsSync(taken.dumpPath) && fs.existsSync(taken.manifestPath)).toBe(true);
      expect(taken.manifest.sequence).toBe((future.manifest.sequence ?? 0) + 1);
      expect(resolveManifest(backupDir, "skewed")).toBe(taken.manifestPath);
    });

    test("restore --backup DIR --database analytics takes analytics' newest backup, not the newer one of market", async () => {
      await small(pg15, "analytics");
      const backupDir = path.join(dir, "two-databases");
      const analytics = await backupOf(pg15, "analytics", backupDir, 7, { now: new Date(Date.UTC(2026, 0, 1)) });
      await backupOf(pg15, "analytics", backupDir, 7, { now: new Date(Date.UTC(2025, 0, 1)) }).then((b) => {
        // An older-dated but later-taken backup is the newest (sequence); make it the one to find.
        analytics.manifestPath = b.manifestPath;
      });
      await small(pg15, "market");
      await backupOf(pg15, "market", backupDir, 7, { now: new Date(Date.UTC(2026, 5, 1)) });
      const result = spawnSync(
        process.execPath,
        ["--import", "tsx", path.resolve("cli/tsdb.ts"), "restore", "--url", `postgresql://${pg15.user}@${pg15.host}:${pg15.port}/postgres?sslmode=disable`, "--backup", backupDir, "--database", "analytics", "--verify"],
        { encoding: "utf8", env: { ...process.env, PGPASSWORD: pg15.password }, timeout: 60_000 },
      );
      expect(result.stderr).toBe("");
      expect(result.stdout).toContain(`Verified ${path.basename(analytics.manifestPath)} (scratch database analytics_verify_`);
      expect(result.status).toBe(0);
    });
  });

  test("backup --dir through a symbolic link to a shared directory leaves that directory's mode alone (issue 23.4)", async () => {
    const shared = path.join(dir, "shared");
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o2775);
    const link = path.join(dir, "shared-link");
    fs.symlinkSync(shared, link);
    const { dumpPath, manifestPath } = await backup("postgres", link);
    expect((fs.statSync(shared).mode & 0o7777).toString(8)).toBe("2775");
    expect([dumpPath, manifestPath].map((f) => (fs.statSync(f).mode & 0o777).toString(8))).toEqual(["600", "600"]);
  });

  test("a relative --dir and the default backup dir resolve against the working directory, not the installed package (issue 23.11)", () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-elsewhere-"));
    const run = (args: string[]) =>
      tsdbSync(["backup", "--url", `postgresql://${pg15.user}@${pg15.host}:${pg15.port}/postgres?sslmode=disable`, ...args], { PGPASSWORD: pg15.password }, { cwd });
    const given = run(["--dir", "rel/dumps"]);
    expect(given.stderr).toBe("");
    expect(fs.readdirSync(path.join(cwd, "rel", "dumps")).filter((f) => f.endsWith(".dump"))).toHaveLength(1);
    const byDefault = run([]);
    expect(byDefault.stderr).toBe("");
    expect(fs.readdirSync(path.join(cwd, "backups")).filter((f) => f.endsWith(".dump"))).toHaveLength(1);
    expect(fs.existsSync(path.resolve("rel"))).toBe(false);
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  test.each([
    ["only large objects", "SELECT lo_from_bytea(0, 'the only copy')", "1 large object", "SELECT count(*)::int AS n FROM pg_largeobject_metadata"],
    ["only a sequence", "CREATE SEQUENCE order_ids START 5000; SELECT nextval('order_ids')", "tables public.order_ids", "SELECT last_value::int AS n FROM public.order_ids"],
  ])("a database holding %s is not empty: restore refuses without --recreate and drops nothing (issue 23.9)", async (_name, fill, objects, probe) => {
    const target = `only_${objects.length}`;
    await pg15.createDatabase(target);
    await withClient(pg15.config(target), (c) => c.query(fill));
    const before = await withClient(pg15.config(target), async (c) => (await c.query(probe)).rows[0].n as number);
    const { manifestPath } = await backup("postgres", path.join(dir, `into-${target}`));
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), database: target })).rejects.toThrow(
      `Database "${target}" is not empty (${objects}); a restore needs an empty database.`,
    );
    expect(await withClient(pg15.config(target), async (c) => (await c.query(probe)).rows[0].n as number)).toBe(before);
  });

  test("a failed restore whose half-restored database cannot be dropped says so, naming it, and the next run drops it (issue 21.8)", async () => {
    await withClient(pg15.config(), (c) => c.query("ALTER SYSTEM SET max_prepared_transactions = 5"));
    await pg15.restart();
    await stack("undroppable");
    const { manifestPath } = await backup("undroppable", path.join(dir, "undroppable"));
    // pg_restore finishes, then something holds the new database (a prepared transaction: even DROP ... WITH (FORCE)
    // cannot end it, like the scheduler session of the issue) and the restore fails.
    const failing: RestoreRunner = async (request) => {
      await localPgRestore(admin)(request);
      if (request.section !== "post-data") return;
      await withClient(pg15.config(request.database), async (c) => {
        await c.query("BEGIN");
        await c.query("PREPARE TRANSACTION 'hold_staging'");
      });
      throw new Error("injected failure after pg_restore.");
    };
    const now = new Date(Date.UTC(2026, 7, 1));
    const staging = sideDatabaseName("undroppable_copy", "restore", now);
    await expect(restoreBackup({ manifestPath, admin, restore: failing, database: "undroppable_copy", now })).rejects.toThrow(
      new RegExp(`^injected failure after pg_restore\\. The half-restored database "${staging}" could not be dropped \\(.*prepared transaction.*\\); the next restore or verify drops it`),
    );
    expect(await databases("undroppable\\_copy%")).toEqual([staging]);
    await withClient(pg15.config(staging), (c) => c.query("COMMIT PREPARED 'hold_staging'"));
    const next = await verifyBackup({ manifestPath, admin, restore: localPgRestore(admin) });
    expect(next.leftovers).toContain(`dropped database "${staging}", left by an interrupted restore or verify`);
    expect(await databases("undroppable\\_copy%")).toEqual([]);
  });
});
