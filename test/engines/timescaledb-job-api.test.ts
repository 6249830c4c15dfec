/**
 * Who may schedule TimescaleDB jobs (issue 23, item 2). TimescaleDB creates `add_job`, `alter_job`,
 * `delete_job` and `run_job` executable by PUBLIC, so any role that could connect (read-only included) could
 * schedule jobs: 100 a second exhausted the background workers, and the jobs persist in the catalog and in
 * backups. After the stack's access plan only the owner (and the migrator acting as it) may.
 *
 * On native TimescaleDB 2.23 (the policies really schedule jobs), through `tsdb db roles`'s library call, the
 * path of a server of your own; the Pulumi hook runs the same module (test/providers/extension-admin-*.test.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ConnectionInfo, withClient } from "../../lib/db";
import { createBackup, localPgDump } from "../../lib/ops/backup";
import { localPgRestore, restoreBackup } from "../../lib/ops/restore";
import { applyOwnServerAccess } from "../../lib/ops/ownServerAccess";
import { DEBIAN_PG15_BIN, type Engine, startTimescaleServer } from "../fixtures/engines";
import { MIGRATION_FILES, rows, schemaRunner } from "../fixtures/schema";

const PASSWORDS = { TSDB_MIGRATOR_PASSWORD: "mig-pw-1", TSDB_APP_PASSWORD: "app-pw-2", TSDB_READONLY_PASSWORD: "ro-pw-3" };
const LIMITS = { migrator: 5, app: 20, readonly: 20 };
/** The job API of TimescaleDB 2.23.0 as `\\df` shows it on the native server (the brief's list, checked there). */
const JOB_API_2_23 = [
  "add_job(regproc,interval,jsonb,timestamp with time zone,boolean,regproc,boolean,text,text)",
  "alter_job(integer,interval,interval,integer,interval,boolean,jsonb,timestamp with time zone,boolean,regproc,boolean,timestamp with time zone,text,text)",
  "delete_job(integer)",
  "run_job(integer)",
];

describe("TimescaleDB's job API after the access plan, on native TimescaleDB", () => {
  let server: Engine;
  const as = (role: "migrator" | "app" | "readonly") =>
    server.urlFor("market", `market_${role}`, PASSWORDS[`TSDB_${role.toUpperCase()}_PASSWORD` as keyof typeof PASSWORDS]);
  const addJob = "SELECT add_job('public.tsdb_noop'::regproc, '1 hour') AS id";

  beforeAll(async () => {
    server = await startTimescaleServer();
    await server.createDatabase("market");
    await withClient(server.urlFor("market"), (admin) =>
      applyOwnServerAccess(admin, { database: "market", timescaledb: true, connectionLimits: LIMITS, connectRoles: [], env: PASSWORDS }),
    );
    // A job procedure anyone may name: the test is about who may schedule it, not what it runs.
    await withClient(server.urlFor("market"), (admin) =>
      admin.query("CREATE PROCEDURE public.tsdb_noop(job_id int, config jsonb) LANGUAGE plpgsql AS 'BEGIN END'"),
    );
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  test.each(["readonly", "app"] as const)("the %s role cannot schedule, change, run or delete jobs", async (role) => {
    await expect(withClient(as(role), (c) => c.query(addJob))).rejects.toThrow(/permission denied for function add_job/);
    await expect(withClient(as(role), (c) => c.query("SELECT alter_job(1, scheduled => false)"))).rejects.toThrow(/permission denied for function alter_job/);
    await expect(withClient(as(role), (c) => c.query("SELECT delete_job(1)"))).rejects.toThrow(/permission denied for function delete_job/);
    await expect(withClient(as(role), (c) => c.query("CALL run_job(1)"))).rejects.toThrow(/permission denied for procedure run_job/);
  });

  test("PUBLIC keeps no EXECUTE on the job API, and the owner has it, by the signatures TimescaleDB 2.23 installed", async () => {
    const acl = await rows<{ sig: string; public: boolean; owner: boolean }>(
      server.urlFor("market"),
      `SELECT p.oid::regprocedure::text AS sig,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public,
              has_function_privilege('market_owner', p.oid, 'EXECUTE') AS owner
         FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ('add_job', 'alter_job', 'delete_job', 'run_job') ORDER BY 1`,
    );
    expect(acl.map((a) => a.sig)).toEqual(JOB_API_2_23);
    expect(acl.every((a) => !a.public && a.owner)).toBe(true);
  });

  test("every migration still applies as the migrator acting as the owner, and its policies' jobs belong to the owner", async () => {
    const outcome = await schemaRunner(as("migrator"), { timescaledb: true, role: "market_owner" }).up();
    expect(outcome.applied).toEqual(MIGRATION_FILES);
    expect(await rows(server.urlFor("market"), "SELECT DISTINCT owner::text FROM timescaledb_information.jobs WHERE job_id >= 1000")).toEqual([
      { owner: "market_owner" },
    ]);
  }, 180_000);

  test("the migrator acting as the owner can schedule, change, run and delete a job of its own", async () => {
    await withClient(as("migrator"), async (c) => {
      await c.query("SET ROLE market_owner");
      const id = (await c.query<{ id: number }>(addJob)).rows[0]!.id;
      await c.query("SELECT alter_job($1, scheduled => false)", [id]);
      await c.query(`CALL run_job(${Number(id)})`);
      await c.query("SELECT delete_job($1)", [id]);
    });
  });

  test("policies do not go through add_job: the owner adds and removes one with EXECUTE on the job API taken from it", async () => {
    const admin = server.urlFor("market");
    await withClient(admin, (c) => c.query("REVOKE EXECUTE ON FUNCTION add_job(regproc,interval,jsonb,timestamptz,boolean,regproc,boolean,text,text), delete_job(integer) FROM market_owner"));
    try {
      await withClient(as("migrator"), async (c) => {
        await c.query("SET ROLE market_owner");
        await c.query("SELECT remove_retention_policy('market_data.ticks')");
        await c.query("SELECT add_retention_policy('market_data.ticks', drop_after => INTERVAL '120 days')");
      });
    } finally {
      await withClient(admin, (c) => c.query("GRANT EXECUTE ON FUNCTION add_job(regproc,interval,jsonb,timestamptz,boolean,regproc,boolean,text,text), delete_job(integer) TO market_owner"));
    }
  });

  test("policy functions stay PUBLIC but check ownership themselves: the read-only role cannot add one to a hypertable it does not own", async () => {
    await expect(
      withClient(as("readonly"), (c) => c.query("SELECT add_retention_policy('market_data.ticks', drop_after => INTERVAL '1 day', if_not_exists => true)")),
    ).rejects.toThrow(/must be owner of hypertable "ticks"/);
    await expect(withClient(as("app"), (c) => c.query("SELECT remove_retention_policy('market_data.ticks')"))).rejects.toThrow(
      /must be owner of hypertable "ticks"/,
    );
  });

  test("a backup restored by tsdb restore's procedure keeps the job API the owner's: the dump carries the ACLs of the extension's routines", async () => {
    const admin: ConnectionInfo = { host: server.host, port: server.port, database: "postgres", user: server.user, password: server.password, sslmode: "disable" };
    const market = { ...admin, database: "market" };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-job-api-backup-"));
    try {
      const backup = await createBackup({ connection: market, dump: localPgDump(market, path.join(DEBIAN_PG15_BIN, "pg_dump")), backupDir: dir, retain: 3 });
      // Restore creates the extension afresh (PUBLIC may run everything again) before pg_restore replays the dump.
      await restoreBackup({ manifestPath: backup.manifestPath, admin, restore: localPgRestore(admin, path.join(DEBIAN_PG15_BIN, "pg_restore")), database: "market_restored" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const restored = (role: "app" | "readonly") =>
      server.urlFor("market_restored", `market_${role}`, PASSWORDS[`TSDB_${role.toUpperCase()}_PASSWORD` as keyof typeof PASSWORDS]);
    await withClient(server.urlFor("market_restored"), (c) => c.query("GRANT CONNECT ON DATABASE market_restored TO market_readonly, market_app"));
    await expect(withClient(restored("readonly"), (c) => c.query(addJob))).rejects.toThrow(/permission denied for function add_job/);
    await expect(withClient(restored("app"), (c) => c.query("CALL run_job(1)"))).rejects.toThrow(/permission denied for procedure run_job/);
    expect(
      await rows(server.urlFor("market_restored"), "SELECT has_function_privilege('market_owner', 'delete_job(integer)', 'EXECUTE') AS owner"),
    ).toEqual([{ owner: true }]);
  }, 300_000);
});
