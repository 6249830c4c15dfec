/**
 * Issue 21.8: restoring a TimescaleDB dump as the database's owner without superuser rights, on native
 * (self-hosted) TimescaleDB 2.23 on PostgreSQL 15. TimescaleDB's restore procedure (`timescaledb_pre_restore()`
 * sets `timescaledb.restoring`, a superuser-only setting, and stops the background workers; the extension must be
 * created in the new database, and it is not a trusted extension) cannot run there as that owner. Managed services
 * let their owner run it; a self-hosted server does not. The restore must say so in one line before it creates
 * anything, and leave no side database behind.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { type BackupResult, createBackup, localPgDump } from "../../lib/ops/backup";
import { localPgRestore, restoreBackup, verifyBackup } from "../../lib/ops/restore";
import { withClient } from "../../lib/postgres/client";
import { resolveConnection } from "../../lib/postgres/connectionString";
import { dropDatabaseForce } from "../../lib/postgres/dropDatabase";
import { DEBIAN_PG15_BIN, type Engine, startTimescaleServer } from "../fixtures/engines";
import { exec, rows } from "../fixtures/schema";
import pg from "pg";

const PG_DUMP = path.join(DEBIAN_PG15_BIN, "pg_dump");
const PG_RESTORE = path.join(DEBIAN_PG15_BIN, "pg_restore");
const OWNER_PASSWORD = "owner-secret-pw";

describe("a non-superuser owner restoring a TimescaleDB dump on self-hosted TimescaleDB", () => {
  let engine: Engine;
  let dir: string;
  let backup: BackupResult;
  let owner: ConnectionInfo;

  beforeAll(async () => {
    engine = await startTimescaleServer();
    // Set up as a managed service sets up its admin: CREATEDB and CREATEROLE, owning the database, no superuser.
    await exec(engine.url, `CREATE ROLE tsdbadmin LOGIN CREATEDB CREATEROLE PASSWORD '${OWNER_PASSWORD}'`);
    await exec(engine.url, "CREATE DATABASE tsdb OWNER tsdbadmin");
    const superTsdb = engine.urlFor("tsdb");
    await exec(superTsdb, "CREATE EXTENSION timescaledb");
    owner = { host: engine.host, port: engine.port, database: "tsdb", user: "tsdbadmin", password: OWNER_PASSWORD, sslmode: "disable" };
    const ownerUrl = engine.urlFor("tsdb", "tsdbadmin", OWNER_PASSWORD);
    await exec(
      ownerUrl,
      `CREATE TABLE bars (time timestamptz NOT NULL, symbol text NOT NULL, close double precision);
       SELECT create_hypertable('bars', by_range('time', interval '7 days'));
       INSERT INTO bars SELECT now() - g * interval '1 day', 'AAA', g FROM generate_series(1, 60) g;
       ALTER TABLE bars SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol');
       SELECT compress_chunk(c) FROM show_chunks('bars', older_than => interval '30 days') c;`,
    );
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-restore-owner-"));
    backup = await createBackup({ connection: owner, dump: localPgDump(owner, PG_DUMP), backupDir: dir, retain: 3 });
  }, 300_000);

  afterAll(async () => {
    await engine?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const sideDatabases = async () =>
    rows<{ datname: string }>(engine.url, "SELECT datname FROM pg_database WHERE datname ~ '^tsdb_' ORDER BY 1");

  test("the owner's backup records TimescaleDB and compressed chunks", async () => {
    expect(backup.manifest).toMatchObject({ timescaledbVersion: "2.23.0", owner: "tsdbadmin" });
    expect(backup.manifest.rowCounts["public.bars"]).toBe(60);
  });

  test.each([
    ["from the maintenance database", "postgres", "tsdb_copy"],
    ["from a connection to the database it restores (no maintenance database)", "tsdb", undefined],
  ])("restore %s: one line saying a superuser or a managed service's owner is needed; no side database is left", async (_how, via, into) => {
    const admin = { ...owner, database: via };
    const attempt = restoreBackup({ manifestPath: backup.manifestPath, admin, restore: localPgRestore(admin, PG_RESTORE), database: into, recreate: true });
    const err = await attempt.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).not.toContain("\n");
    expect(err!.message).toBe(
      'Restoring a TimescaleDB dump into "' +
        (into ?? "tsdb") +
        '" runs timescaledb_pre_restore(), which sets timescaledb.restoring, a setting only a superuser may change on this server, and tsdbadmin is not a superuser; ' +
        "restore refused, nothing changed. Give --url a superuser's URL, or restore on a managed service whose owner may run timescaledb_pre_restore() (Timescale Cloud's tsdbadmin).",
    );
    expect(await sideDatabases()).toEqual([]);
    expect(await rows(engine.url, "SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'tsdb\\_restore\\_login\\_%'")).toEqual([{ n: 0 }]);
    // The original is untouched.
    expect(await rows(engine.urlFor("tsdb"), "SELECT count(*)::int AS n FROM bars")).toEqual([{ n: 60 }]);
  }, 120_000);

  test("verify as that owner is refused the same way, and leaves no scratch database", async () => {
    const admin = { ...owner, database: "postgres" };
    await expect(verifyBackup({ manifestPath: backup.manifestPath, admin, restore: localPgRestore(admin, PG_RESTORE) })).rejects.toThrow(
      /^Restoring a TimescaleDB dump into "tsdb_verify_\d{14}" runs timescaledb_pre_restore\(\).*a superuser/,
    );
    expect(await sideDatabases()).toEqual([]);
  }, 120_000);

  test("an owner granted SET on timescaledb.restoring still cannot stop the background workers: the same refusal, the staging database dropped", async () => {
    await exec(engine.url, "GRANT SET ON PARAMETER timescaledb.restoring TO tsdbadmin");
    try {
      const admin = { ...owner, database: "postgres" };
      await expect(
        restoreBackup({ manifestPath: backup.manifestPath, admin, restore: localPgRestore(admin, PG_RESTORE), database: "tsdb_copy" }),
      ).rejects.toThrow(
        /^Restoring a TimescaleDB dump into "tsdb_copy_restore_\d{14}" runs timescaledb_pre_restore\(\), which stops TimescaleDB's background workers \(must be superuser to stop background workers\), and tsdbadmin is not a superuser; restore refused, nothing changed\. Give --url a superuser's URL/,
      );
      expect(await sideDatabases()).toEqual([]);
    } finally {
      await exec(engine.url, "REVOKE SET ON PARAMETER timescaledb.restoring FROM tsdbadmin");
    }
  }, 120_000);

  test("the owner drops a database once a superuser's session in it (a TimescaleDB worker) has left; one that stays gets the server's refusal", async () => {
    // TimescaleDB's scheduler and job workers are superuser sessions; after a refused pre_restore they may still be
    // leaving the staging database when the owner drops it (lib/postgres/dropDatabase.ts says why).
    const superSession = async (database: string) => {
      const c = new pg.Client({ connectionString: engine.urlFor(database) });
      c.on("error", () => undefined);
      await c.connect();
      return c;
    };
    const exists = async (name: string) => (await rows(engine.url, "SELECT 1 FROM pg_database WHERE datname = $1", [name])).length > 0;
    const ownerUrl = engine.urlFor("postgres", "tsdbadmin", OWNER_PASSWORD);
    await exec(ownerUrl, "CREATE DATABASE tsdb_leaving");
    const leaving = await superSession("tsdb_leaving");
    await withClient(ownerUrl, async (c) => {
      await expect(c.query("DROP DATABASE tsdb_leaving WITH (FORCE)")).rejects.toThrow("must be a superuser to terminate superuser process");
      const left = new Promise((r) => setTimeout(r, 1_500)).then(() => leaving.end());
      await dropDatabaseForce(c, "tsdb_leaving");
      await left;
    });
    expect(await exists("tsdb_leaving")).toBe(false);

    await exec(ownerUrl, "CREATE DATABASE tsdb_staying");
    const staying = await superSession("tsdb_staying");
    try {
      await withClient(ownerUrl, (c) => expect(dropDatabaseForce(c, "tsdb_staying", 1_000)).rejects.toThrow("must be a superuser to terminate superuser process"));
      expect(await exists("tsdb_staying")).toBe(true);
    } finally {
      await staying.end();
      await exec(engine.url, "DROP DATABASE tsdb_staying");
    }
  }, 60_000);

  test("the same backup restored with the superuser's URL brings the compressed chunks back, also from a connection to the target", async () => {
    // Read from a URL as `tsdb restore --url` reads it: the password is non-enumerable, so every copy restore makes
    // for another database (staging, the swap helper, the scheduler's) must carry it over, or logging in fails.
    const admin = resolveConnection(engine.urlFor("postgres"), {});
    expect(Object.keys(admin)).not.toContain("password");
    const restored = await restoreBackup({ manifestPath: backup.manifestPath, admin, restore: localPgRestore(admin, PG_RESTORE), database: "copy_by_superuser" });
    expect(restored.rowCounts["public.bars"]).toBe(60);
    const url = engine.urlFor("copy_by_superuser");
    const compressed = async () => rows<{ n: number }>(url, "SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'bars' AND is_compressed");
    expect((await compressed())[0]!.n).toBeGreaterThan(0);
    const viaTarget = resolveConnection(url, {});
    await restoreBackup({ manifestPath: backup.manifestPath, admin: viaTarget, restore: localPgRestore(viaTarget, PG_RESTORE), recreate: true, database: "copy_by_superuser" });
    expect((await compressed())[0]!.n).toBeGreaterThan(0);
    expect(await rows(engine.url, "SELECT datname FROM pg_database WHERE datname ~ '_(restore|swap|verify|empty)_' ORDER BY 1")).toEqual([]);
  }, 180_000);
});
