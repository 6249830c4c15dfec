/**
 * An external stack on servers set up like managed services: the database exists already and
 * belongs to an admin that has CREATEROLE and nothing more, TLS is checked against a CA the test generated
 * (verify-full), PgBouncer in transaction mode fronts the app, and a streaming replica serves the read-only
 * role. The access plan as the provider issues it for a non-superuser admin, then the serialized migrations
 * and dataset hooks, run against them for real; the URLs the stack exports are used from Node and psql.
 * Within a describe the tests are the steps of one deployment, in order (vitest runs them sequentially).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MarketDataLoad } from "../../components/MarketDataLoad";
import { SchemaMigrations } from "../../components/SchemaMigrations";
import { accessPlan, renderAccessSql } from "../../lib/access";
import { type ConnectionInfo, withClient } from "../../lib/db";
import { adminPrivilegeProblems, databaseUrls } from "../../lib/postgres/managed";
import { createBackup, localPgDump } from "../../lib/ops/backup";
import { localPgRestore, restoreBackup } from "../../lib/ops/restore";
import { loadSerializedProvider, unsecret } from "../fixtures/dynamicProviders";
import { tsdbAsync, tsdbInProcess } from "../fixtures/cli";
import { SAMPLE_DIR, SAMPLE_ROWS, countBars } from "../fixtures/loader/target";
import { TEST_VARIABLES } from "../fixtures/schema";
import {
  type Certificates,
  type NativeServer,
  type PgBouncer,
  makeCertificates,
  provisionLikeAService,
  psql,
  startNativeServer,
  startPgBouncer,
  startReplica,
} from "../fixtures/servers";

const ROOT = path.resolve(__dirname, "../..");
const DB = "market";
const ACCOUNT = { admin: "tsdbadmin", adminPassword: "svc-admin-pw-1", database: DB };
const PASSWORDS = { migrator: "mig-pw-1", app: "app-pw-2", readonly: "ro-pw-3" };
const PLAN = accessPlan({
  database: DB,
  migratorConnectionLimit: 5,
  appConnectionLimit: 50,
  readonlyConnectionLimit: 20,
  timescaledb: false,
  existingDatabase: true,
});

// One set of mocks for the file: the hooks are recorded as the program would declare them.
const recorded: { type: string; name: string; inputs: Record<string, unknown> }[] = [];
let hookCounter = 0;
beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (a) => {
        recorded.push({ type: a.type, name: a.name, inputs: a.inputs as Record<string, unknown> });
        return { id: `${a.name}-id`, state: { ...a.inputs, appliedVersions: [], applied: [], read: 0 } };
      },
      call: (a) => {
        throw new Error(`unexpected call ${a.token}`);
      },
    },
    "tsdb",
    "dev",
    false,
  );
});

/** The serialized hook `type` a component registered, loaded as Pulumi's dynamic-provider host loads it. */
function hook(name: string, type: string) {
  const dyn = recorded.find((r) => r.type === `pulumi-nodejs:dynamic/${type}` && r.name.startsWith(name));
  if (!dyn) throw new Error(`no ${type} among ${recorded.map((r) => r.type).join(", ")}`);
  return { inputs: { ...dyn.inputs, connection: unsecret<ConnectionInfo>(dyn.inputs.connection) }, provider: loadSerializedProvider(String(dyn.inputs.__provider)) };
}

async function migrationsHook(connection: ConnectionInfo) {
  const name = `schema${++hookCounter}`;
  const c = new SchemaMigrations(name, { connection, role: PLAN.owner, timescaledb: false, variables: { ...TEST_VARIABLES }, protectData: false });
  await new Promise<void>((resolve) => c.appliedVersions.apply(() => resolve()));
  return hook(name, "tsdb:SchemaMigrations");
}

/** A throwaway project whose scripts/, lib/ and node_modules are the real ones, with the sample CSV. */
function scratchProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "managed-proj-"));
  for (const entry of ["scripts", "lib", "node_modules", "package.json", "tsconfig.json"]) fs.symlinkSync(path.join(ROOT, entry), path.join(dir, entry));
  fs.mkdirSync(path.join(dir, "data"));
  fs.copyFileSync(path.join(SAMPLE_DIR, "csv/ohlcv.csv"), path.join(dir, "data/bars.csv"));
  return dir;
}

async function datasetHook(connection: ConnectionInfo) {
  const name = `data${++hookCounter}`;
  const c = new MarketDataLoad(name, { connection, dataset: { name: "bars", source: "data/bars.csv" }, projectDir: scratchProject() });
  await new Promise<void>((resolve) => c.read.apply(() => resolve()));
  return hook(name, "tsdb:MarketDataLoad");
}

/** Connection settings as a stack on the service would hold them: verify-full against the test's CA. */
function connectionTo(server: NativeServer, certs: Certificates, user: string, password: string, host = server.host): ConnectionInfo {
  return { host, port: server.port, database: DB, user, password, sslmode: "verify-full", sslrootcert: certs.caPem };
}

/** Applies the access plan as the service's admin, statement by statement, as the provider would. */
async function applyAccessAsAdmin(server: NativeServer, certs: Certificates): Promise<void> {
  const sql = renderAccessSql(PLAN, PASSWORDS, { adminIsSuperuser: false });
  await withClient(connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword), async (c) => {
    for (const statement of [...sql.cluster, ...sql.database]) await c.query(statement);
  });
}

/** Runs `tsdb db <args>` in-process; returns the exit code and what it wrote. */
async function db(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await tsdbInProcess(["db", ...args]);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** Runs `tsdb data <args>` as a child process, as a user would. */
async function dataCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const r = await tsdbAsync(["data", ...args], { DATABASE_URL: "" });
  return { code: r.code, stderr: r.stderr };
}

const one = async <T>(info: ConnectionInfo | string, sql: string): Promise<T> => withClient(info, async (c) => (await c.query(sql)).rows[0] as T);

describe("a managed-like PostgreSQL 17: existing database, CREATEROLE-only admin, verify-full TLS, PgBouncer", () => {
  let certs: Certificates;
  let server: NativeServer;
  let bouncer: PgBouncer;
  const as = (role: keyof typeof PASSWORDS, host?: string) => connectionTo(server, certs, `${DB}_${role}`, PASSWORDS[role], host);

  beforeAll(async () => {
    certs = makeCertificates();
    server = await startNativeServer({ major: 17, tls: certs });
    await provisionLikeAService(server, ACCOUNT);
  }, 120_000);
  afterAll(async () => {
    await bouncer?.stop();
    await server?.stop();
  });

  test("the admin really is what a service gives: CREATEROLE, not superuser, no CREATEDB; the database is its own", async () => {
    const admin = connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword);
    expect(
      await one(admin, `SELECT rolsuper, rolcreatedb, rolcreaterole, (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS db_owner, current_setting('server_version_num')::int / 10000 AS major, ssl FROM pg_roles, pg_stat_ssl WHERE rolname = current_user AND pid = pg_backend_pid()`),
    ).toEqual({ rolsuper: false, rolcreatedb: false, rolcreaterole: true, db_owner: ACCOUNT.admin, major: 17, ssl: true });
  });

  test("the container's plan cannot run there: it creates the database, which needs CREATEDB", async () => {
    const containerPlan = renderAccessSql({ ...PLAN, existingDatabase: false }, PASSWORDS);
    expect(containerPlan.cluster).toContain(`CREATE DATABASE "${DB}" OWNER "${DB}_owner"`);
    await expect(
      withClient(connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword), (c) => c.query(`CREATE DATABASE "other" OWNER "${ACCOUNT.admin}"`)),
    ).rejects.toThrow(/permission denied to create database/);
  });

  test("the access plan for an existing database applies as the CREATEROLE admin, which keeps no membership afterwards", async () => {
    await applyAccessAsAdmin(server, certs);
    const roles = await withClient(connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword), async (c) =>
      (
        await c.query(
          `SELECT r.rolname, m.admin_option, m.set_option, m.inherit_option
             FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
            WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY 1`,
        )
      ).rows,
    );
    // PostgreSQL 16+: ADMIN on the roles it created, but not a member (it cannot act as them).
    expect(roles).toEqual(
      ["market_app", "market_migrator", "market_owner", "market_readonly"].map((rolname) => ({ rolname, admin_option: true, set_option: false, inherit_option: false })),
    );
    expect(
      await one(connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword), `SELECT has_database_privilege('market_owner', 'market', 'CREATE') AS owner_create, (SELECT count(*)::int FROM pg_namespace WHERE pg_get_userbyid(nspowner) = 'market_owner') AS owned_schemas`),
    ).toEqual({ owner_create: true, owned_schemas: 5 });
  });

  test("the serialized migrations hook applies sql/ over verify-full TLS as the migrator, objects owned by the owner", async () => {
    const { inputs, provider } = await migrationsHook(as("migrator"));
    const created = await provider.create(inputs);
    expect((created.outs.appliedVersions as number[]).length).toBeGreaterThan(3);
    expect(await one(as("app"), "SELECT tableowner FROM pg_tables WHERE schemaname = 'market_data' AND tablename = 'ohlcv_bars'")).toEqual({ tableowner: "market_owner" });
  });

  test("the serialized dataset hook loads over verify-full TLS with the CA from the connection", async () => {
    const { inputs, provider } = await datasetHook(as("app"));
    const created = await provider.create(inputs);
    expect(created.outs).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, rejected: 0 });
    expect(await countBars(as("readonly"))).toBe(SAMPLE_ROWS);
  });

  test("a CA that did not sign the server's certificate fails in one line saying so", async () => {
    const wrongCa = { ...as("app"), sslrootcert: certs.otherCaPem };
    const error = await withClient(wrongCa, (c) => c.query("SELECT 1")).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/^TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by the CA in tsdb:sslRootCert \([A-Z_]+\); set tsdb:sslRootCert/);
    expect(error?.message).not.toContain("\n");
  });

  test("verify-full without a CA checks against the public CAs, which did not sign a private CA's certificate", async () => {
    const noCa = { ...as("app"), sslrootcert: undefined };
    await expect(withClient(noCa, (c) => c.query("SELECT 1"))).rejects.toThrow(
      /^TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by a public CA \(no tsdb:sslRootCert is set\) \([A-Z_]+\); set tsdb:sslRootCert to the CA that issued the server's certificate\.$/,
    );
  });

  test("a host name the certificate does not list fails in one line saying so; verify-ca accepts it", async () => {
    const otherName = as("app", "127.0.0.2");
    const error = await withClient(otherName, (c) => c.query("SELECT 1")).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/^TLS: the certificate of 127\.0\.0\.2:\d+ does not name the host connected to \(.*127\.0\.0\.2.*\); connect by a name the certificate lists, or use sslmode verify-ca\.$/);
    expect(await one({ ...otherName, sslmode: "verify-ca" }, "SELECT 1 AS ok")).toEqual({ ok: 1 });
  });

  test("the migrations hook with a wrong CA fails with the same line and applies nothing", async () => {
    const { inputs, provider } = await migrationsHook({ ...as("migrator"), sslrootcert: certs.otherCaPem });
    await expect(provider.create(inputs)).rejects.toThrow(/^TLS: the certificate of .* is not signed by the CA in tsdb:sslRootCert/);
  });

  test("the CLIs verify the server with the CA from the URL; a wrong CA or host name exits 1 with one line", async () => {
    const urls = databaseUrls({ migrator: as("migrator"), app: as("app"), readonly: as("readonly"), sslrootcertFile: certs.caFile });
    const ok = await db(["status", "--url", urls.migrator, "--no-timescaledb"]);
    expect([ok.code, ok.err]).toEqual([0, ""]);
    expect(ok.out).toMatch(/applied/);

    const wrongCa = urls.migrator.replace(encodeURIComponent(certs.caFile), encodeURIComponent(certs.otherCaFile));
    const refused = await db(["status", "--url", wrongCa, "--no-timescaledb"]);
    expect(refused.code).toBe(1);
    // A URL's CA: the advice names what to put in the URL, not a stack setting.
    expect(refused.err).toMatch(/^tsdb db status: TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by the CA in sslrootcert \([A-Z_]+\); put sslrootcert=\/path\/to\/ca\.crt in the URL \(or set PGSSLROOTCERT\) naming the CA that issued the server's certificate\.\n$/);

    const wrongHost = await dataCli(["validate", "--url", urls.readonly.replace("@127.0.0.1:", "@127.0.0.2:")]);
    expect(wrongHost.code).toBe(1);
    expect(wrongHost.stderr).toMatch(/^tsdb data validate: TLS: the certificate of 127\.0\.0\.2:\d+ does not name the host connected to \(.*\); connect by a name the certificate lists, or put sslmode=verify-ca in the URL\.\n$/);
  });

  test("what the CREATEROLE-only admin lacks is named with the privilege and why; an existing database without TimescaleDB needs nothing more", async () => {
    const admin = connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword);
    const check = (needs: { existingDatabase: boolean; timescaledb: boolean }) => withClient(admin, (c) => adminPrivilegeProblems(c, { database: DB, ...needs }));
    expect(await check({ existingDatabase: true, timescaledb: false })).toEqual([]);
    expect(await check({ existingDatabase: false, timescaledb: true })).toEqual([
      "tsdbadmin lacks CREATEDB, which creating database market needs; managed services give one database: set tsdb:existingDatabase true and tsdb:database to its name (e.g. tsdb).",
      "tsdbadmin is not a superuser, which CREATE EXTENSION timescaledb needs (it is not a trusted extension); have the service or your DBA install it in market, or set tsdb:timescaledb false.",
    ]);
  });

  test("tsdb doctor --admin-url reports those lines before pulumi up", async () => {
    const adminUrl = databaseUrls({
      migrator: connectionTo(server, certs, ACCOUNT.admin, ACCOUNT.adminPassword),
      app: as("app"),
      readonly: as("readonly"),
      sslrootcertFile: certs.caFile,
    }).migrator;
    const result = await tsdbAsync(["doctor", "--stack", "dev", "--url", adminUrl, "--admin-url", adminUrl]);
    expect(result.code).toBe(1);
    // The dev stack creates its database and the extension: both need more than this admin has.
    expect(result.stdout).toContain("tsdbadmin lacks CREATEDB, which creating database market needs");
    expect(result.stdout).toContain("tsdbadmin is not a superuser, which CREATE EXTENSION timescaledb needs");
  }, 60_000);

  describe("behind PgBouncer in transaction mode", () => {
    beforeAll(async () => {
      bouncer = await startPgBouncer({
        server,
        database: DB,
        users: (["migrator", "app", "readonly"] as const).map((role) => ({ name: `${DB}_${role}`, password: PASSWORDS[role] })),
        tls: certs,
      });
    }, 60_000);

    const urls = () =>
      databaseUrls({
        migrator: as("migrator"),
        app: as("app"),
        readonly: as("readonly"),
        pooler: { host: bouncer.host, port: bouncer.port },
        sslrootcertFile: certs.caFile,
      });

    test("the exported app and read-only URLs go through the pooler; the migrator's stays direct", () => {
      const u = urls();
      expect([new URL(u.app).port, new URL(u.readonly).port, new URL(u.migrator).port]).toEqual([String(bouncer.port), String(bouncer.port), String(server.port)]);
      expect(new URL(u.app).searchParams.get("sslmode")).toBe("verify-full");
      expect(new URL(u.app).searchParams.get("sslrootcert")).toBe(certs.caFile);
    });

    test("the app URL works from Node and from psql, through the pooler, over verify-full TLS", async () => {
      const u = urls();
      const viaNode = await withClient(u.app, async (c) => {
        await c.query("INSERT INTO market_data.ohlcv_bars (time, symbol, exchange, provider, timeframe, open, high, low, close, volume) VALUES ('2030-01-02', 'POOL', 'XNAS', 'SAMPLE', '1d', 1, 2, 0.5, 1.5, 10)");
        return (await c.query("SELECT count(*)::int AS n FROM market_data.ohlcv_bars WHERE symbol = 'POOL'")).rows[0];
      });
      expect(viaNode).toEqual({ n: 1 });
      expect(psql(u.readonly, "SELECT count(*) FROM market_data.ohlcv_bars")).toBe(String(SAMPLE_ROWS + 1));
      expect(psql(u.migrator, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).toBe("t");
    });

    test("migrations pointed at the pooler are refused in one line instead of running without their lock", async () => {
      const { inputs, provider } = await migrationsHook({ ...as("migrator"), port: bouncer.port });
      const error = await provider.create(inputs).then(() => undefined, (e: Error) => e);
      expect(error?.message).toBe(
        `Migrations need a direct connection to PostgreSQL, but 127.0.0.1:${bouncer.port} is a connection pooler (the server session answering is not the one announced at login): session advisory locks and SET ROLE do not survive transaction pooling. Point them at the server itself (tsdb:externalHost/externalPort) and give the pooler as tsdb:poolerHost/poolerPort.`,
      );
    });

    test("tsdb db up through the pooler is refused the same way, in one line, exit 1", async () => {
      const viaPooler = urls().migrator.replace(`:${server.port}/`, `:${bouncer.port}/`);
      const result = await db(["up", "--url", viaPooler, "--no-timescaledb", "--role", PLAN.owner]);
      expect([result.code, result.out]).toEqual([1, ""]);
      expect(result.err).toBe(
        `tsdb db up: Migrations need a direct connection to PostgreSQL, but 127.0.0.1:${bouncer.port} is a connection pooler (the server session answering is not the one announced at login): session advisory locks and SET ROLE do not survive transaction pooling. Point them at the server itself (tsdb:externalHost/externalPort) and give the pooler as tsdb:poolerHost/poolerPort.\n`,
      );
    });
  });
});

describe("the whole managed stack on PostgreSQL 15: existing database, CREATEROLE admin, verify-full, PgBouncer, streaming replica", () => {
  let certs: Certificates;
  let primary: NativeServer;
  let replica: NativeServer;
  let bouncer: PgBouncer;
  const as = (role: keyof typeof PASSWORDS) => connectionTo(primary, certs, `${DB}_${role}`, PASSWORDS[role]);
  const urls = () =>
    databaseUrls({
      migrator: as("migrator"),
      app: as("app"),
      readonly: as("readonly"),
      pooler: { host: bouncer.host, port: bouncer.port },
      replica: { host: replica.host, port: replica.port },
      sslrootcertFile: certs.caFile,
    });

  beforeAll(async () => {
    certs = makeCertificates();
    primary = await startNativeServer({ major: 15, tls: certs });
    await provisionLikeAService(primary, ACCOUNT);
    replica = await startReplica(primary, certs);
    bouncer = await startPgBouncer({
      server: primary,
      database: DB,
      users: (["app", "readonly"] as const).map((role) => ({ name: `${DB}_${role}`, password: PASSWORDS[role] })),
      tls: certs,
    });
  }, 120_000);
  afterAll(async () => {
    await bouncer?.stop();
    await replica?.stop();
    await primary?.stop();
  });

  test("the access plan and both serialized hooks apply on the primary as the service's admin, over verify-full", async () => {
    await applyAccessAsAdmin(primary, certs);
    const migrations = await migrationsHook(as("migrator"));
    await migrations.provider.create(migrations.inputs);
    const dataset = await datasetHook(as("app"));
    expect((await dataset.provider.create(dataset.inputs)).outs).toMatchObject({ inserted: SAMPLE_ROWS, rejected: 0 });
  });

  test("the app URL writes through the pooler; the replica URL reads it, from Node and psql, and refuses writes", async () => {
    const u = urls();
    expect([new URL(u.app).port, new URL(u.readonly).port, new URL(u.migrator).port, new URL(u.replica!).port]).toEqual(
      [bouncer.port, bouncer.port, primary.port, replica.port].map(String),
    );
    await withClient(u.app, (c) =>
      c.query("INSERT INTO market_data.ohlcv_bars (time, symbol, exchange, provider, timeframe, open, high, low, close, volume) VALUES ('2030-01-02', 'REPL', 'XNAS', 'SAMPLE', '1d', 1, 2, 0.5, 1.5, 10)"),
    );
    // Streaming replication is asynchronous: wait (bounded) until the replica has replayed the insert.
    const replayed = "SELECT to_regclass('market_data.ohlcv_bars') IS NOT NULL AND (SELECT count(*) FROM market_data.ohlcv_bars WHERE symbol = 'REPL') > 0 AS ok";
    const deadline = Date.now() + 20_000;
    while ((await withClient(u.replica!, (c) => c.query(replayed)).catch(() => ({ rows: [{ ok: false }] }))).rows[0].ok !== true) {
      if (Date.now() > deadline) throw new Error("the replica did not replay the primary's insert within 20 s");
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await one(u.replica!, "SELECT count(*)::int AS n FROM market_data.ohlcv_bars")).toEqual({ n: SAMPLE_ROWS + 1 });
    expect(psql(u.replica!, "SELECT pg_is_in_recovery()")).toBe("t");
    expect(psql(u.replica!, "SELECT count(*) FROM market_data.ohlcv_bars WHERE symbol = 'REPL'")).toBe("1");
    expect(psql(u.readonly, "SELECT count(*) FROM market_data.ohlcv_bars WHERE symbol = 'REPL'")).toBe("1");
    await expect(withClient(u.replica!, (c) => c.query("SELECT 1 FROM market_data.ohlcv_bars FOR UPDATE"))).rejects.toThrow(/read-only transaction|recovery/);
  });

  test("tsdb restore with the service's admin says it needs CREATEDB and why, before touching anything", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "managed-backup-"));
    const { manifestPath } = await createBackup({ connection: as("migrator"), dump: localPgDump(as("migrator")), backupDir: dir, retain: 1 });
    // A restore connects to the maintenance database: it replaces the database it restores.
    const admin = { ...connectionTo(primary, certs, ACCOUNT.admin, ACCOUNT.adminPassword), database: "postgres" };
    const before = await one<{ n: number }>(as("readonly"), "SELECT count(*)::int AS n FROM market_data.ohlcv_bars");
    await expect(restoreBackup({ manifestPath, admin, restore: localPgRestore(admin), recreate: true })).rejects.toThrow(
      'Restoring into database "market" needs CREATEDB (it creates the database anew), which tsdbadmin lacks, as on managed services; restore there with the service\'s own backups (point-in-time recovery), or give --url an admin with CREATEDB.',
    );
    expect(await one(as("readonly"), "SELECT count(*)::int AS n FROM market_data.ohlcv_bars")).toEqual(before);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
