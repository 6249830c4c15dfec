/**
 * Issue 21 (items 1, 3, 4, 5, 9): the README's own-server path with `tsdb` alone, on a server set up the way
 * managed services set theirs up, independently of the code under test: native TimescaleDB (PostgreSQL 15),
 * TLS only (pg_hba `hostssl`) with a certificate from a CA the test made, a superuser that hands over a
 * CREATEROLE-only admin owning a database named `tsdb` (not the project's `market`, whose settings sit in
 * Pulumi.dev.yaml of the directory the CLI runs in), PgBouncer in transaction mode whose own auth_query user looks
 * logins up, and a streaming replica made with `pg_basebackup -R`. Every step is the CLI as a child process.
 * The tests are the steps of one setup, in order (vitest runs them sequentially).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ClientConfig } from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { clientConfig, openClient, withClient } from "../../lib/postgres/client";
import { startPostgresServer } from "../fixtures/engines";
import { type CliResult, tsdbAsync } from "../fixtures/cli";
import { type Certificates, type NativeServer, type PgBouncer, makeCertificates, provisionLikeAService, psql, startNativeServer, startPgBouncer, startReplica } from "../fixtures/servers";

const ADMIN = { admin: "tsdbadmin", adminPassword: "svc-admin-pw-1", database: "tsdb" };
const BOUNCER = { name: "pgbouncer_auth", password: "bouncer-own-pw-9" };
/** No connection settings leak in from the machine running the tests. */
const CLEAN = { DATABASE_URL: "", PGHOST: "", PGPORT: "", PGDATABASE: "", PGUSER: "", PGPASSWORD: "", PGSSLMODE: "", PGSSLROOTCERT: "", TSDB_APP_PASSWORD: "", TSDB_MIGRATOR_PASSWORD: "", TSDB_READONLY_PASSWORD: "" };

let certs: Certificates;
let server: NativeServer;
let replica: NativeServer | undefined;
let bouncer: PgBouncer | undefined;
let work: string;

const superuser = (database: string): ClientConfig => ({
  host: server.host, port: server.port, user: server.superuser, password: server.superuserPassword, database, ssl: { rejectUnauthorized: false },
});
const sql = (database: string, text: string, params: unknown[] = []) => withClient(superuser(database), (c) => c.query(text, params));
const adminUrl = () => `postgresql://${ADMIN.admin}@127.0.0.1:${server.port}/tsdb?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.caFile)}`;
const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => tsdbAsync(args, { ...CLEAN, ...env });
const asAdmin = { PGPASSWORD: ADMIN.adminPassword };
const asSuperuser = () => ({ PGPASSWORD: server.superuserPassword });

/** A .env as sh would read it (lib/ops/envFile.ts writes unquoted portable values only). */
function readEnv(file: string): Record<string, string> {
  return Object.fromEntries(
    fs.readFileSync(file, "utf8").split("\n").filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

beforeAll(async () => {
  certs = makeCertificates();
  server = await startNativeServer({ major: 15, tls: certs, timescaledb: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-own-service-"));
  // What the service's operator does, as the superuser: the admin and its database, the extension in it (not
  // trusted: only a superuser creates it), the pooler's own lookup user and function, and two more databases.
  await provisionLikeAService(server, ADMIN);
  const pg = (await import("pg")).default;
  const boot = new pg.Client({ host: server.host, port: server.port, user: server.superuser, password: server.superuserPassword, database: "postgres" });
  await boot.connect();
  try {
    await boot.query(`CREATE ROLE ${BOUNCER.name} LOGIN PASSWORD '${BOUNCER.password}'`);
    await boot.query("CREATE DATABASE fresh");
    await boot.query(`CREATE DATABASE plainsvc OWNER ${ADMIN.admin}`);
    await boot.query("CREATE DATABASE trial");
  } finally {
    await boot.end();
  }
  const inTsdb = new pg.Client({ host: server.host, port: server.port, user: server.superuser, password: server.superuserPassword, database: "tsdb" });
  await inTsdb.connect();
  try {
    await inTsdb.query("CREATE EXTENSION timescaledb");
    await inTsdb.query(`CREATE FUNCTION public.pgbouncer_get_auth(p_usename text) RETURNS TABLE(usename name, passwd text)
      LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT usename, passwd FROM pg_shadow WHERE usename = p_usename $$`);
    await inTsdb.query("REVOKE ALL ON FUNCTION public.pgbouncer_get_auth(text) FROM PUBLIC");
    await inTsdb.query(`GRANT EXECUTE ON FUNCTION public.pgbouncer_get_auth(text) TO ${BOUNCER.name}`);
  } finally {
    await inTsdb.end();
  }
  // TLS only for clients, as the services run: every TCP line for the databases becomes hostssl. Replication
  // stays as initdb wrote it: the replica's pg_basebackup and walreceiver run as the postgres OS user, whose libpq
  // cannot read root's ~/.postgresql and so falls back to plain text.
  const hba = path.join(server.dataDir, "pg_hba.conf");
  fs.writeFileSync(hba, fs.readFileSync(hba, "utf8").replace(/^host(\s+all\s)/gm, "hostssl$1"));
  await sql("postgres", "SELECT pg_reload_conf()");
  await new Promise((r) => setTimeout(r, 300));
}, 180_000);

afterAll(async () => {
  await bouncer?.stop();
  await replica?.stop();
  await server?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

describe("connections as libpq reads them (item 1)", () => {
  test("the server refuses plain text: psql's default (sslmode prefer) gets in over TLS, and so does tsdb with a URL without sslmode", async () => {
    expect(() => psql(`postgresql://postgres:${server.superuserPassword}@127.0.0.1:${server.port}/fresh?sslmode=disable`, "SELECT 1")).toThrow(/no encryption/);
    expect(psql(`postgresql://postgres:${server.superuserPassword}@127.0.0.1:${server.port}/fresh`, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).toBe("t");
    const status = await cli(["db", "status", "--url", `postgresql://postgres@127.0.0.1:${server.port}/fresh`], asSuperuser());
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/0 applied, \d+ pending/);
  });

  test("sslmode allow (plain text first) gets in over TLS when the server wants it; disable does not", async () => {
    const url = (mode: string) => `postgresql://postgres:${server.superuserPassword}@127.0.0.1:${server.port}/fresh?sslmode=${mode}`;
    const { rows } = await withClient(url("allow"), (c) => c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"));
    expect(rows).toEqual([{ ssl: true }]);
    await expect(withClient(url("disable"), (c) => c.query("SELECT 1"))).rejects.toThrow(/no pg_hba\.conf entry .* no encryption/);
  });

  test("libpq key=value pairs, and the PG* variables alone (no --url, no DATABASE_URL), connect like a URL", async () => {
    const kv = await cli(["db", "status", "--url", `host=127.0.0.1 port=${server.port} dbname=fresh user=postgres sslmode=require`], asSuperuser());
    expect([kv.code, kv.stderr]).toEqual([0, ""]);
    const env = await cli(["db", "status"], { ...asSuperuser(), PGHOST: "127.0.0.1", PGPORT: String(server.port), PGDATABASE: "fresh", PGUSER: "postgres" });
    expect([env.code, env.stderr]).toEqual([0, ""]);
  });

  test.each([
    [["db", "status"]],
    [["doctor"]],
    [["backup"]],
    [["env", "--role", "app"]],
  ])("%j --url notaurl is bad usage: exit 2, one line naming --url, then the usage line", async (command) => {
    const r = await cli([...command, "--url", "notaurl"]);
    expect(r.code).toBe(2);
    const [first, second, rest] = r.stderr.split("\n");
    expect(first).toBe(`tsdb ${command[0]}${command[0] === "db" ? " status" : ""}: --url: the connection is not a postgresql://user@host:port/database URL or libpq key=value pairs (host=... port=... dbname=... user=...)`);
    expect(second).toMatch(/^Usage: tsdb /);
    expect(rest).toBe("");
  });

  test("tsdb backup reads DATABASE_URL (no Pulumi CLI asked for)", async () => {
    const dir = path.join(work, "backups");
    const r = await cli(["backup", "--dir", dir, "--json"], { ...asSuperuser(), DATABASE_URL: `postgresql://postgres@127.0.0.1:${server.port}/fresh`, PATH: `/usr/lib/postgresql/15/bin:${process.env.PATH}` });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).manifest.database).toBe("fresh");
  });
});

describe("sslmode prefer on a server without TLS (libpq's default, item 1)", () => {
  test("a URL without sslmode falls back to plain text, in the CLI and in the migrations hook's client", async () => {
    const plain = await startPostgresServer({ major: 17 });
    try {
      const url = plain.url.replace("?sslmode=disable", "");
      const { rows } = await withClient(url, (c) => c.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"));
      expect(rows).toEqual([{ ssl: false }]);
      const pg = (await import("pg")).default;
      const hookClient = await openClient(pg, clientConfig({ host: plain.host, port: plain.port, database: "postgres", user: "postgres", password: plain.password, sslmode: "prefer" }));
      await hookClient.end();
      const status = await cli(["db", "status", "--url", url]);
      expect([status.code, status.stderr]).toEqual([0, ""]);
      const required = await cli(["db", "status", "--url", `${url}?sslmode=require`]);
      expect(required.code).toBe(1);
      expect(required.stderr).toMatch(/does not accept TLS connections, but the sslmode asks for TLS; enable ssl on the server or put sslmode=prefer \(or disable\) in the URL\./);
    } finally {
      await plain.stop();
    }
  });
});

describe("doctor --url on the own-server path reads right (item 9)", () => {
  test("a database just created: doctor reports what db up will do, db up does it, doctor then agrees", async () => {
    const url = `postgresql://postgres@127.0.0.1:${server.port}/fresh`;
    const before = await cli(["doctor", "--url", url], asSuperuser());
    expect(before.stdout).toMatch(/^ok {3}TimescaleDB: not created yet \(server has 2\.23\.\d+\): `tsdb db up` creates it$/m);
    expect(before.stdout).toMatch(/^ok {3}Migrations: 0 of (\d+) applied; `tsdb db up` will apply \1 \(0001_schemas\.sql, /m);
    expect(before.stdout).not.toMatch(/pulumi|tsdb:[a-z]/i);
    expect(before.code).toBe(0);

    const up = await cli(["db", "up", "--url", url], asSuperuser());
    expect([up.code, up.stderr]).toEqual([0, ""]);
    const after = await cli(["doctor", "--url", url], asSuperuser());
    expect(after.stdout).toMatch(/^ok {3}TimescaleDB: extension 2\.23\.\d+$/m);
    expect(after.stdout).toMatch(/^ok {3}Migrations: all \d+ applied$/m);
    expect(after.code).toBe(0);
  });

  test("a missing database: doctor says to create it, with the command, not to check the firewall", async () => {
    const r = await cli(["doctor", "--url", `postgresql://postgres@127.0.0.1:${server.port}/nosuch`], asSuperuser());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL Database: database "nosuch" does not exist: the database must exist before `tsdb db up`/m);
    expect(r.stdout).toContain(`Create it: \`createdb -h 127.0.0.1 -p ${server.port} -U <admin> nosuch\``);
    expect(r.stdout).not.toMatch(/firewall/);
  });

  test("an admin that is not a superuser, extension not created: doctor says who must create it, or --no-timescaledb; never a Pulumi setting", async () => {
    const r = await cli(["doctor", "--url", `postgresql://${ADMIN.admin}@127.0.0.1:${server.port}/plainsvc`], asAdmin);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL TimescaleDB: not created yet \(server has 2\.23\.\d+\), and tsdbadmin cannot create it \(CREATE EXTENSION timescaledb needs a superuser\)/m);
    expect(r.stdout).toContain("pass --no-timescaledb to doctor and db up");
    expect(r.stdout).not.toMatch(/pulumi|tsdb:[a-z]/i);
    const plain = await cli(["doctor", "--url", `postgresql://${ADMIN.admin}@127.0.0.1:${server.port}/plainsvc`, "--no-timescaledb"], asAdmin);
    expect(plain.stdout).toMatch(/^ok {3}TimescaleDB: not used \(--no-timescaledb\)$/m);
  });
});

describe("the stack's roles without Pulumi, on a database named tsdb (items 3, 4, 5)", () => {
  const roleEnv = (role: string) => path.join(work, `.env.${role}`);

  test("db roles as the CREATEROLE admin: the four roles, grants and default privileges; PUBLIC loses CONNECT, pg_monitor keeps it; no password printed", async () => {
    const r = await cli(["db", "roles", "--url", adminUrl()], { ...asAdmin, TSDB_READONLY_PASSWORD: "ro-from-env-7" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Roles of tsdb: created tsdb_owner, tsdb_migrator, tsdb_app, tsdb_readonly.");
    expect(r.stdout).toContain("CONNECT on tsdb: tsdb_owner, tsdb_migrator, tsdb_app, tsdb_readonly, pg_monitor (PUBLIC has none).");
    expect(r.stdout).toContain("Password of tsdb_readonly: from the environment.");
    expect(r.stdout).toContain("Password of tsdb_app: generated, not shown.");
    expect(r.stdout).not.toContain("ro-from-env-7");
    // The service's superuser created the extension: this admin cannot take the job API from PUBLIC, and says so.
    expect(r.stdout).toContain(
      "WARN TimescaleDB jobs: any role may still schedule them: only the timescaledb extension's owner (postgres) or a superuser can take the job API (add_job, alter_job, delete_job, run_job) from PUBLIC; ask your DBA or service to run REVOKE EXECUTE on them FROM PUBLIC and GRANT it to tsdb_owner.",
    );
    const { rows } = await sql("tsdb", `SELECT r.rolname, r.rolcanlogin AS login, has_database_privilege(r.rolname, 'tsdb', 'CONNECT') AS connect,
        pg_has_role('tsdb_migrator', r.oid, 'MEMBER') AS migrator_member
       FROM pg_roles r WHERE r.rolname IN ('tsdb_owner', 'tsdb_migrator', 'tsdb_app', 'tsdb_readonly', 'pg_monitor', '${BOUNCER.name}') ORDER BY 1`);
    expect(rows).toEqual([
      { rolname: "pg_monitor", login: false, connect: true, migrator_member: false },
      { rolname: BOUNCER.name, login: true, connect: false, migrator_member: false },
      { rolname: "tsdb_app", login: true, connect: true, migrator_member: false },
      { rolname: "tsdb_migrator", login: true, connect: true, migrator_member: true },
      // TimescaleDB's jobs run as the owner, which therefore has LOGIN (and no password).
      { rolname: "tsdb_owner", login: true, connect: true, migrator_member: true },
      { rolname: "tsdb_readonly", login: true, connect: true, migrator_member: false },
    ]);
    // The password from the environment is the role's.
    await withClient({ host: "127.0.0.1", port: server.port, database: "tsdb", user: "tsdb_readonly", password: "ro-from-env-7", ssl: { rejectUnauthorized: false } }, (c) => c.query("SELECT 1"));
    const again = await cli(["db", "roles", "--url", adminUrl()], asAdmin);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("Roles of tsdb: none created; already there: tsdb_owner, tsdb_migrator, tsdb_app, tsdb_readonly.");
  });

  test("a trial as the superuser: db roles creates the extension and the roles, db up then makes trial_owner own everything", async () => {
    const url = `postgresql://postgres@127.0.0.1:${server.port}/trial`;
    const roles = await cli(["db", "roles", "--url", url], asSuperuser());
    expect([roles.code, roles.stderr]).toEqual([0, ""]);
    expect(roles.stdout).toContain("Created the timescaledb extension in trial.");
    expect(roles.stdout).toContain("TimescaleDB jobs (add_job, alter_job, delete_job, run_job): trial_owner only (PUBLIC has none).");
    const doctor = await cli(["doctor", "--url", url], asSuperuser());
    expect(doctor.stdout).toMatch(/^ok {3}TimescaleDB: extension 2\.23\.\d+$/m);
    const up = await cli(["db", "up", "--url", url], asSuperuser());
    expect([up.code, up.stderr]).toEqual([0, ""]);
    const owners = await sql("trial", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('market_data', 'audit', 'schema_migrations')");
    expect(owners.rows).toEqual([{ tableowner: "trial_owner" }]);
    const hypertables = await sql("trial", "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_name = 'ohlcv_bars'");
    expect(hypertables.rows).toHaveLength(1);
  });

  test("a pooler whose auth_query user lost CONNECT: doctor says the login cannot get through and names --connect-role; granting it fixes the pooler", async () => {
    bouncer = await startPgBouncer({
      server, database: "tsdb", users: [BOUNCER], tls: certs,
      authQuery: { user: BOUNCER.name, query: "SELECT usename, passwd FROM public.pgbouncer_get_auth($1)" },
    });
    const app = await cli(["env", "--url", adminUrl(), "--role", "app", "--out", roleEnv("app")], asAdmin);
    expect([app.code, app.stderr]).toEqual([0, ""]);
    const appEnv = readEnv(roleEnv("app"));
    const doctorArgs = ["doctor", "--url", appEnv.DATABASE_URL!, "--pooler", `127.0.0.1:${bouncer.port}`];
    const denied = await cli(doctorArgs, appEnv);
    expect(denied.stdout).toMatch(/^FAIL Pooler: tsdb_app cannot authenticate through 127\.0\.0\.1:\d+: /m);
    expect(denied.stdout).toContain("tsdb db roles --connect-role <auth user>");

    const granted = await cli(["db", "roles", "--url", adminUrl(), "--connect-role", BOUNCER.name], asAdmin);
    expect(granted.stdout).toContain(`CONNECT on tsdb: tsdb_owner, tsdb_migrator, tsdb_app, tsdb_readonly, pg_monitor, ${BOUNCER.name} (PUBLIC has none).`);
    await new Promise((r) => setTimeout(r, 1500)); // PgBouncer's server_login_retry (1 s in the fixture)
    const through = await cli(doctorArgs, appEnv);
    expect(through.stdout).toMatch(/^ok {3}Pooler: tsdb_app gets through 127\.0\.0\.1:\d+$/m);
  }, 120_000);

  test("db up as the migrator from its .env, in a directory whose Pulumi.dev.yaml says market: tsdb_owner owns every object", async () => {
    const mig = await cli(["env", "--url", adminUrl(), "--role", "migrator", "--out", roleEnv("migrator")], asAdmin);
    expect(mig.code).toBe(0);
    expect(mig.stdout).toContain(`Wrote ${roleEnv("migrator")} (mode 0600) for tsdb_migrator: DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, PGSSLROOTCERT.`);
    const env = readEnv(roleEnv("migrator"));
    expect(mig.stdout).not.toContain(env.PGPASSWORD!);
    expect(env).toMatchObject({ PGUSER: "tsdb_migrator", PGDATABASE: "tsdb", PGSSLMODE: "verify-full", PGSSLROOTCERT: certs.caFile });
    expect(env.DATABASE_URL).not.toContain("sslrootcert");

    const two = await cli(["db", "up", "--to", "2"], env);
    expect([two.code, two.stderr]).toEqual([0, ""]);
    const audit = await sql("tsdb", "SELECT tableowner FROM pg_tables WHERE schemaname = 'audit' AND tablename = 'change_log'");
    expect(audit.rows).toEqual([{ tableowner: "tsdb_owner" }]);
    const all = await cli(["db", "up"], env);
    expect([all.code, all.stderr]).toEqual([0, ""]);
    const owners = await sql("tsdb", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('market_data', 'reference_data', 'trading', 'research', 'audit', 'schema_migrations')");
    expect(owners.rows).toEqual([{ tableowner: "tsdb_owner" }]);

    const otherStack = await cli(["db", "status", "--stack", "dev"], env);
    expect(otherStack.code).toBe(2);
    expect(otherStack.stderr.split("\n")[0]).toBe("tsdb db status: --stack dev is for database market, but the connection is to tsdb; leave out --stack for a server of your own (the database and roles then come from the connection)");
  });

  test("the .env's PGSSLROOTCERT is the CA for tsdb itself; a wrong CA and a wrong host name say what to put in the URL", async () => {
    const env = readEnv(roleEnv("migrator"));
    const ok = await cli(["db", "status"], env);
    expect([ok.code, ok.stderr]).toEqual([0, ""]);
    const wrongCa = await cli(["db", "status"], { ...env, PGSSLROOTCERT: certs.otherCaFile });
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/^tsdb db status: TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by the CA in sslrootcert \(\w+\); put sslrootcert=\/path\/to\/ca\.crt in the URL \(or set PGSSLROOTCERT\)/);
    const wrongHost = await cli(["db", "status"], { ...env, DATABASE_URL: env.DATABASE_URL!.replace("@127.0.0.1:", "@127.0.0.2:") });
    expect(wrongHost.code).toBe(1);
    expect(wrongHost.stderr).toMatch(/^tsdb db status: TLS: the certificate of 127\.0\.0\.2:\d+ does not name the host connected to .*put sslmode=verify-ca in the URL\./);
    expect(`${wrongCa.stderr}${wrongHost.stderr}`).not.toContain(env.PGPASSWORD!);
  });

  test("app and readonly from tsdb env have the stack's privileges on what the migrator created", async () => {
    const ro = await cli(["env", "--url", adminUrl(), "--role", "readonly", "--out", roleEnv("readonly")], { ...asAdmin, TSDB_READONLY_PASSWORD: "ro-from-env-7" });
    expect(ro.code).toBe(0);
    const connect = (file: string): ClientConfig => {
      const e = readEnv(file);
      return { host: e.PGHOST, port: Number(e.PGPORT), database: e.PGDATABASE, user: e.PGUSER, password: e.PGPASSWORD, ssl: { ca: fs.readFileSync(e.PGSSLROOTCERT!, "utf8") } };
    };
    await withClient(connect(roleEnv("app")), async (c) => {
      await c.query("SELECT count(*) FROM market_data.ohlcv_bars");
      await expect(c.query("CREATE TABLE market_data.not_yours (x int)")).rejects.toThrow(/permission denied for schema market_data/);
    });
    await withClient(connect(roleEnv("readonly")), async (c) => {
      await c.query("SELECT count(*) FROM market_data.ohlcv_bars");
      await expect(c.query("DELETE FROM market_data.ohlcv_bars")).rejects.toThrow(/permission denied for table ohlcv_bars/);
    });
    const { rows } = await sql("tsdb", "SELECT has_table_privilege('tsdb_app', 'market_data.ohlcv_bars', 'INSERT') AS app, has_table_privilege('tsdb_readonly', 'market_data.ohlcv_bars', 'INSERT') AS ro");
    expect(rows).toEqual([{ app: true, ro: false }]);
  });

  test("--role replica: the read-only role on a replica made with pg_basebackup -R", async () => {
    replica = await startReplica(server, certs);
    const r = await cli(["env", "--url", adminUrl(), "--role", "replica", "--replica", `127.0.0.1:${replica.port}`, "--out", roleEnv("replica")], { ...asAdmin, TSDB_READONLY_PASSWORD: "ro-from-env-7" });
    expect([r.code, r.stderr]).toEqual([0, ""]);
    const env = readEnv(roleEnv("replica"));
    expect(env).toMatchObject({ PGUSER: "tsdb_readonly", PGPORT: String(replica.port), PGPASSWORD: "ro-from-env-7" });
    const { rows } = await withClient({ host: env.PGHOST, port: Number(env.PGPORT), database: "tsdb", user: env.PGUSER, password: env.PGPASSWORD, ssl: { ca: certs.caPem } }, (c) => c.query("SELECT pg_is_in_recovery() AS standby"));
    expect(rows).toEqual([{ standby: true }]);
  });
});
