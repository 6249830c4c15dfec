/**
 * Restores (`npm run db:restore`). Every check runs before anything is touched: the dump against its manifest
 * (sha256), the target server against the dump's versions, the roles the dump refers to, the target's state
 * and `protectData`. Then the dump goes into a NEW database `<db>_restore_<time>` following TimescaleDB's
 * procedure (extension at the dump's version, `timescaledb_pre_restore()`, pg_restore,
 * `timescaledb_post_restore()`), each owner's table data loaded through a login with that owner's rights only
 * ({@link restoreAsOwners}), its row counts are compared with the manifest, and only then is it renamed to the
 * target name, in one transaction. Until that swap the original database is untouched; any failure drops the new
 * one, and what a killed run left is found by the next ({@link findInterruptedRestores}).
 * `--verify` does the same into a scratch database and drops it.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { withTransaction } from "../db";
import { clientConfig, withClient } from "../postgres/client";
import { type ConnectionInfo, connectionWith } from "../postgres/connectionInfo";
import { dropDatabaseForce } from "../postgres/dropDatabase";
import { requireCreatedb } from "../postgres/managed";
import { countRows, describeSource, libpqEnv, listBackups, readManifest, runTool, sha256File, type BackupManifest, type FoundBackup } from "./backup";
import type { Queryable } from "./databaseHealth";

/** Throws when the dump file's sha256 differs from the manifest's: it was altered, truncated or swapped. */
export async function verifyDumpChecksum(manifest: BackupManifest, dumpPath: string): Promise<void> {
  const actual = await sha256File(dumpPath);
  if (actual !== manifest.sha256) {
    throw new Error(
      `Dump ${path.basename(dumpPath)} has sha256 ${actual} but its manifest records ${manifest.sha256}: ` +
        "the file was altered, truncated or replaced; restore refused. Use another backup.",
    );
  }
}

/** What the target server offers, for {@link checkCompatibility}. */
export interface TargetServer {
  serverVersion: string;
  postgresMajor: number;
  /** timescaledb versions the server can create (`pg_available_extension_versions`). */
  timescaledbAvailable: string[];
}

/** Reads the target server's version and installable timescaledb versions. */
export async function readTargetServer(db: Queryable): Promise<TargetServer> {
  const row = (
    await db.query(
      `SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n,
              ARRAY(SELECT version FROM pg_available_extension_versions WHERE name = 'timescaledb' ORDER BY 1) AS ts`,
    )
  ).rows[0] as { v: string; n: number; ts: string[] };
  // Distribution builds append their package version ("15.18 (Debian 15.18-0+deb12u1)"): keep the release.
  return { serverVersion: row.v.split(" ")[0] ?? row.v, postgresMajor: Math.floor(Number(row.n) / 10000), timescaledbAvailable: row.ts ?? [] };
}

/**
 * Refuses a dump whose PostgreSQL major differs from the target's, or whose TimescaleDB version the target
 * cannot install: TimescaleDB's catalog is only valid for the same version (docs: "Migrate with pg_dump").
 */
export function checkCompatibility(manifest: BackupManifest, target: TargetServer): void {
  if (manifest.postgresMajor !== target.postgresMajor) {
    throw new Error(
      `Backup ${manifest.dumpFile} is from PostgreSQL ${manifest.serverVersion} (major ${manifest.postgresMajor}) but the target ` +
        `server is PostgreSQL ${target.serverVersion} (major ${target.postgresMajor}); restore refused. ` +
        `Restore into a PostgreSQL ${manifest.postgresMajor} server (tsdb:image with -pg${manifest.postgresMajor}), then upgrade it.`,
    );
  }
  if (manifest.timescaledbVersion !== null && !target.timescaledbAvailable.includes(manifest.timescaledbVersion)) {
    throw new Error(
      `Backup ${manifest.dumpFile} needs TimescaleDB ${manifest.timescaledbVersion} but the target server offers ` +
        `${target.timescaledbAvailable.length ? target.timescaledbAvailable.join(", ") : "no TimescaleDB"}; restore refused. ` +
        `Use an image with TimescaleDB ${manifest.timescaledbVersion} (tsdb:image), restore, then \`ALTER EXTENSION timescaledb UPDATE\`.`,
    );
  }
}

/**
 * Lines describing each table whose count differs from the manifest (empty when all match). `rebuilt` names
 * relations whose rows a dump does not carry (materialized views, refreshed at restore): older manifests
 * counted them, and they are not compared.
 */
export function compareRowCounts(expected: Record<string, number>, actual: Record<string, number>, rebuilt: string[] = []): string[] {
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].filter((n) => !rebuilt.includes(n)).sort();
  return names.flatMap((name) => {
    const e = expected[name];
    const a = actual[name];
    if (e === a) return [];
    return [`${name}: backup had ${e ?? "no such table"}, restored ${a ?? "no such table"}`];
  });
}

/**
 * TimescaleDB's restore procedure around `load` on the target database: create the extension at the dump's
 * version, `timescaledb_pre_restore()` (stops background jobs, marks the database as restoring), load,
 * then `timescaledb_post_restore()` even when the load failed, so the database is never left restoring.
 * Without TimescaleDB it just runs `load`.
 */
export async function restoreWithTimescaleProcedure(db: Queryable, timescaledbVersion: string | null, load: () => Promise<void>): Promise<void> {
  if (timescaledbVersion === null) return load();
  const version = `'${timescaledbVersion.replace(/'/g, "''")}'`;
  await db.query(`CREATE EXTENSION IF NOT EXISTS timescaledb VERSION ${version}`);
  // IF NOT EXISTS keeps an extension already there at another version: the catalog would not match the dump.
  const installed = ((await db.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).rows[0] as { extversion: string }).extversion;
  if (installed !== timescaledbVersion) {
    throw new Error(
      `The target database already has TimescaleDB ${installed} but the dump needs ${timescaledbVersion}; restore refused. ` +
        "Restore into a new database (--database <name>).",
    );
  }
  try {
    await db.query("SELECT public.timescaledb_pre_restore()");
  } catch (err) {
    // 42501: a login allowed to SET timescaledb.restoring (GRANT SET ON PARAMETER) but not to stop the background
    // workers, which self-hosted TimescaleDB keeps to superusers ("must be superuser to stop background workers").
    if ((err as { code?: string }).code !== "42501") throw err;
    const who = ((await db.query("SELECT current_user AS u, current_database() AS d")).rows[0] as { u: string; d: string });
    throw new Error(timescaleRestoreRefusal(who.d, who.u, `which stops TimescaleDB's background workers (${(err as Error).message})`), { cause: err });
  }
  // CREATE EXTENSION seeds catalog metadata (install_timestamp, timescaledb_version) that the dump carries too
  // (the extension dumps `metadata WHERE key <> 'uuid'`), so loading it would hit metadata_pkey
  // (timescale/timescaledb#1409); the dump's rows replace them.
  await db.query("DELETE FROM _timescaledb_catalog.metadata WHERE key <> 'uuid'");
  try {
    await load();
  } finally {
    await db.query("SELECT public.timescaledb_post_restore()");
  }
}

/**
 * The one-line refusal of a TimescaleDB restore into `database` by `user`, who may not run TimescaleDB's restore
 * procedure: `what` says which part of `timescaledb_pre_restore()` it may not do.
 */
export function timescaleRestoreRefusal(database: string, user: string, what: string): string {
  return (
    `Restoring a TimescaleDB dump into "${database}" runs timescaledb_pre_restore(), ${what}, and ${user} is not a superuser; ` +
    "restore refused, nothing changed. Give --url a superuser's URL, or restore on a managed service whose owner may run timescaledb_pre_restore() (Timescale Cloud's tsdbadmin)."
  );
}

/**
 * Refuses, before anything is created, a TimescaleDB restore by a login that may not set `timescaledb.restoring`
 * (what `timescaledb_pre_restore()` does first). Self-hosted TimescaleDB defines it as a superuser-only setting;
 * managed services let their owner run the procedure. Tried with `SET LOCAL` in a transaction rolled back at
 * once, so a service's own permission rules decide, not a guess from role flags.
 */
export async function requireTimescaleRestoreRights(admin: Queryable, database: string): Promise<void> {
  const me = (await admin.query("SELECT current_user AS u, rolsuper AS super FROM pg_roles WHERE rolname = current_user")).rows[0] as { u: string; super: boolean };
  if (me.super) return;
  let refused: unknown;
  await admin.query("BEGIN");
  try {
    await admin.query("SET LOCAL timescaledb.restoring = 'on'");
  } catch (err) {
    refused = err;
  } finally {
    await admin.query("ROLLBACK");
  }
  if (refused === undefined) return;
  if ((refused as { code?: string }).code !== "42501") throw refused;
  throw new Error(timescaleRestoreRefusal(database, me.u, "which sets timescaledb.restoring, a setting only a superuser may change on this server"), { cause: refused });
}

/**
 * One pg_restore run into `database`: the whole dump, or only the TOC entries in `listFile` (and of `section`),
 * logged in as `login` (default: the admin) with `role` set. With `tocFile`, it restores nothing and writes the
 * dump's table of contents (`pg_restore --list`) there instead.
 */
export interface RestoreRequest {
  dumpPath: string;
  database: string;
  listFile?: string;
  section?: "pre-data" | "data" | "post-data";
  login?: { user: string; password: string };
  role?: string;
  tocFile?: string;
}

/** Runs pg_restore for one {@link RestoreRequest}. */
export type RestoreRunner = (request: RestoreRequest) => Promise<void>;

/** pg_restore's arguments for a request, after the connection ones. Stops at the first error so a partial restore is reported. */
function pgRestoreArgs(request: RestoreRequest, listFile = request.listFile): string[] {
  if (request.tocFile) return ["--format=custom", "--list"];
  return [
    `--dbname=${request.database}`,
    "--no-password",
    "--exit-on-error",
    "--single-transaction",
    ...(listFile ? [`--use-list=${listFile}`] : []),
    ...(request.section ? [`--section=${request.section}`] : []),
    ...(request.role ? [`--role=${request.role}`] : []),
  ];
}

/** pg_restore on this machine, connecting as `admin` (or the request's login). */
export function localPgRestore(admin: ConnectionInfo, pgRestore = "pg_restore"): RestoreRunner {
  return (request) => {
    const login = request.login ?? { user: admin.user, password: admin.password };
    return runTool(
      pgRestore,
      request.tocFile
        ? [...pgRestoreArgs(request), request.dumpPath]
        : ["--format=custom", `--host=${admin.host}`, `--port=${admin.port}`, `--username=${login.user}`, ...pgRestoreArgs(request), request.dumpPath],
      { env: { ...libpqEnv(admin), PGPASSWORD: login.password }, stdoutFile: request.tocFile },
    );
  };
}

/**
 * pg_restore inside the TimescaleDB container (docker mode), reading the dump on stdin; a list file is copied
 * into the container first (`docker cp`), since pg_restore there cannot read this machine's files.
 */
export function dockerPgRestore(container: string, user: string, password = ""): RestoreRunner {
  return async (request) => {
    const login = request.login ?? { user, password };
    let inside: string | undefined;
    if (request.listFile && !request.tocFile) {
      // The work directory's random name keeps two restores' lists apart in the container's /tmp.
      inside = `/tmp/${path.basename(path.dirname(request.listFile))}-${path.basename(request.listFile)}`;
      await runTool("docker", ["cp", request.listFile, `${container}:${inside}`]);
    }
    const head = ["exec", "-i", ...(login.password ? ["-e", "PGPASSWORD"] : []), container, "pg_restore"];
    try {
      await runTool(
        "docker",
        request.tocFile ? [...head, ...pgRestoreArgs(request)] : [...head, "--format=custom", `--username=${login.user}`, ...pgRestoreArgs(request, inside)],
        { env: { PGPASSWORD: login.password }, stdinFile: request.dumpPath, stdoutFile: request.tocFile },
      );
    } finally {
      if (inside) await runTool("docker", ["exec", container, "rm", "-f", inside]).catch(() => undefined);
    }
  };
}

/** Names of the temporary logins a restore makes to load data as an owner: found and dropped if a run was killed. */
export const RESTORE_LOGIN_PREFIX = "tsdb_restore_login_";

/**
 * TOC entries whose statements run code of the dump's objects with the rights of whoever restores them:
 * COPY into a table evaluates its CHECK constraints (a function of the table owner's choosing) on every row, and
 * a CHECK constraint dumped separately is validated when it is added. Everything else is DDL that runs no user
 * code, or that PostgreSQL itself runs as the table owner (index builds, REFRESH MATERIALIZED VIEW, foreign-key
 * checks: "security-restricted operations").
 */
const RUNS_OWNER_CODE = /^\d+; \d+ \d+ (TABLE DATA|CHECK CONSTRAINT) /;

/** The role that owns a `pg_restore --list` line: the longest known role name the line ends with. */
function ownerOfEntry(line: string, roles: string[]): string | undefined {
  return roles.filter((r) => line.endsWith(` ${r}`)).sort((a, b) => b.length - a.length)[0];
}

/**
 * Loads the dump so that nothing in it runs with more rights than its owner had (issue 23.1). `pg_restore --role`
 * or `--use-set-session-authorization` alone do not do that: a function the dump's owner wrote can `RESET ROLE` /
 * `RESET SESSION AUTHORIZATION` back to the admin who runs pg_restore. So the table data and CHECK constraints of
 * each owner that is not a superuser are loaded through a temporary login that is a member of that owner and
 * nothing else (`tsdb_restore_login_*`, dropped afterwards); the rest (schema, TimescaleDB's catalog, indexes,
 * grants) is restored by the admin as before, in pg_restore's sections: pre-data, data, the owners' entries,
 * post-data.
 */
export async function restoreAsOwners(admin: Client, adminUser: string, restore: RestoreRunner, dumpPath: string, database: string): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-restore-"));
  const logins: string[] = [];
  try {
    const tocFile = path.join(work, "toc.list");
    await restore({ dumpPath, database, tocFile });
    const entries = fs.readFileSync(tocFile, "utf8").split("\n").filter((l) => /^\d+;/.test(l));
    const roles = (await admin.query("SELECT rolname, rolsuper FROM pg_roles")).rows as { rolname: string; rolsuper: boolean }[];
    const superusers = new Set(roles.filter((r) => r.rolsuper).map((r) => r.rolname));
    const byOwner = new Map<string, string[]>();
    const adminEntries: string[] = [];
    for (const line of entries) {
      if (!RUNS_OWNER_CODE.test(line)) {
        adminEntries.push(line);
        continue;
      }
      const owner = ownerOfEntry(line, roles.map((r) => r.rolname));
      if (owner === undefined) throw new Error(`Dump entry "${line}" names an owner that is not a role on the target server; restore refused.`);
      if (superusers.has(owner) || owner === adminUser) adminEntries.push(line);
      else byOwner.set(owner, [...(byOwner.get(owner) ?? []), line]);
    }
    const adminList = path.join(work, "admin.list");
    fs.writeFileSync(adminList, `${adminEntries.join("\n")}\n`, { mode: 0o600 });

    await restore({ dumpPath, database, listFile: adminList, section: "pre-data" });
    await restore({ dumpPath, database, listFile: adminList, section: "data" });
    for (const [owner, lines] of byOwner) {
      const login = `${RESTORE_LOGIN_PREFIX}${randomBytes(6).toString("hex")}`;
      const password = randomBytes(24).toString("base64url");
      await admin.query(`CREATE ROLE ${admin.escapeIdentifier(login)} LOGIN NOINHERIT CONNECTION LIMIT 2 PASSWORD ${admin.escapeLiteral(password)} VALID UNTIL ${admin.escapeLiteral(new Date(Date.now() + 86_400_000).toISOString())}`);
      logins.push(login);
      await admin.query(`GRANT ${admin.escapeIdentifier(owner)} TO ${admin.escapeIdentifier(login)}`);
      await admin.query(`GRANT CONNECT ON DATABASE ${admin.escapeIdentifier(database)} TO ${admin.escapeIdentifier(login)}`);
      const list = path.join(work, `${login}.list`);
      fs.writeFileSync(list, `${lines.join("\n")}\n`, { mode: 0o600 });
      await restore({ dumpPath, database, listFile: list, login: { user: login, password }, role: owner });
    }
    await restore({ dumpPath, database, listFile: adminList, section: "post-data" });
  } finally {
    for (const login of logins) await dropRestoreLogin(admin, login, database).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Drops a temporary restore login, after revoking what it was granted on `database` (if that still exists). */
async function dropRestoreLogin(admin: Queryable & { escapeIdentifier(s: string): string }, login: string, database?: string): Promise<void> {
  const id = admin.escapeIdentifier(login);
  const dbs = database ? [database] : ((await admin.query("SELECT datname FROM pg_database WHERE has_database_privilege($1, oid, 'CONNECT')", [login])).rows as { datname: string }[]).map((r) => r.datname);
  for (const db of dbs) await admin.query(`REVOKE CONNECT ON DATABASE ${admin.escapeIdentifier(db)} FROM ${id}`).catch(() => undefined);
  await admin.query(`DROP ROLE IF EXISTS ${id}`);
}

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  manifestPath: string;
  /** A role that can create databases and run pg_restore (the stack's admin); its `database` is the maintenance db. */
  admin: ConnectionInfo;
  restore: RestoreRunner;
  /** Target database; default: the one the backup was taken from. */
  database?: string;
  /** Replace the target when it already has tables; its current data is kept as `<db>_replaced_<time>`. */
  recreate?: boolean;
  /** `tsdb:protectData`: refuse --recreate over a database with data unless `force`. */
  protectData?: boolean;
  force?: boolean;
  /** Time used in the names of the new and the replaced database (tests pin it). */
  now?: Date;
}

/** Result of a restore: what was restored where, with the verified counts. */
export interface RestoreResult {
  database: string;
  manifest: BackupManifest;
  rowCounts: Record<string, number>;
  /** The previous database with data, renamed and kept (after --recreate), or undefined. */
  replaced?: string;
  /** What the restore could not finish and the user must do (one line each). */
  warnings?: string[];
  /** What interrupted runs had left, one line each: dropped scratch databases and logins, closed databases. */
  leftovers: string[];
}

/**
 * Schemas, relations and large objects that make a database non-empty (anything not owned by an extension or
 * the system). Sequences and large objects count (issue 23.9: a database holding only those was taken for
 * empty and dropped at the swap).
 */
async function userObjects(client: Queryable): Promise<{ schemas: string[]; tables: string[]; largeObjects: number }> {
  const notExtension = (catalog: string, alias: string) =>
    `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${alias}.oid AND d.deptype = 'e')`;
  const schemas = (await client.query(`SELECT n.nspname AS name FROM pg_namespace n
      WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND ${notExtension("pg_namespace", "n")}
      ORDER BY 1`)).rows as { name: string }[];
  const tables = (await client.query(`SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND n.nspname NOT LIKE '\\_timescaledb%' AND n.nspname NOT LIKE 'timescaledb\\_%' AND ${notExtension("pg_class", "c")}
      ORDER BY 1`)).rows as { name: string }[];
  const largeObjects = ((await client.query("SELECT count(*)::int AS n FROM pg_largeobject_metadata")).rows[0] as { n: number }).n;
  return { schemas: schemas.map((r) => r.name), tables: tables.map((r) => r.name), largeObjects };
}

/** Materialized views of the connected database (`schema.name`): their rows are rebuilt, not restored. */
async function materializedViews(db: Queryable): Promise<string[]> {
  const rows = (await db.query("SELECT schemaname || '.' || matviewname AS name FROM pg_matviews")).rows as { name: string }[];
  return rows.map((r) => r.name);
}

/** The manifest's dump beside it; refuses a manifest whose file is missing. */
function dumpPathOf(manifestPath: string, manifest: BackupManifest): string {
  const dumpPath = path.join(path.dirname(manifestPath), manifest.dumpFile);
  if (!fs.existsSync(dumpPath)) {
    throw new Error(`Backup manifest ${manifestPath} names dump ${manifest.dumpFile}, which is not in ${path.dirname(manifestPath)}; restore refused.`);
  }
  return dumpPath;
}

/** Roles the dump refers to (owner, grantees, object owners) that the target server does not have. */
async function missingRoles(admin: Queryable, manifest: BackupManifest): Promise<string[]> {
  const wanted = [...new Set([manifest.owner, ...manifest.databaseGrants.map((g) => g.grantee).filter((g) => g !== "PUBLIC"), ...(manifest.roles ?? [])])];
  const present = (await admin.query("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [wanted])).rows as { rolname: string }[];
  return wanted.filter((r) => !present.some((p) => p.rolname === r)).sort();
}

function checkDatabaseGrants(manifest: BackupManifest): void {
  for (const g of manifest.databaseGrants) {
    if (!/^(CONNECT|CREATE|TEMPORARY)$/.test(g.privilege)) {
      throw new Error(`Backup manifest grant "${g.privilege}" on the database is not a database privilege (CONNECT, CREATE, TEMPORARY); restore refused.`);
    }
  }
}

/** PostgreSQL's identifier limit (NAMEDATALEN - 1 bytes). */
const MAX_NAME_BYTES = 63;

/** `<database>_<label>_<time>`, shortened so it stays within PostgreSQL's 63-byte names. */
export function sideDatabaseName(database: string, label: string, now: Date): string {
  const suffix = `_${label}_${now.toISOString().replace(/\D/g, "").slice(0, 14)}`;
  let base = database;
  while (Buffer.byteLength(base + suffix) > MAX_NAME_BYTES) base = base.slice(0, -1);
  return base + suffix;
}

/** What {@link planRestore} found: where the dump goes and what happens to the database there now. */
export interface RestorePlan {
  manifest: BackupManifest;
  dumpPath: string;
  /** The name the restored database gets. */
  database: string;
  /** The new database the dump is loaded into before it takes the target name. */
  staging: string;
  /** What the target name holds now: nothing, an empty database (dropped at the swap), or data (kept renamed). */
  target: { state: "absent" } | { state: "empty" } | { state: "data"; keptAs: string; objects: string };
}

function describeObjects(found: { schemas: string[]; tables: string[]; largeObjects: number }): string {
  const list = (names: string[]) => names.slice(0, 3).join(", ") + (names.length > 3 ? `, ... (${names.length})` : "");
  return [
    found.schemas.length ? `schemas ${list(found.schemas)}` : "",
    found.tables.length ? `tables ${list(found.tables)}` : "",
    found.largeObjects ? `${found.largeObjects} large object${found.largeObjects > 1 ? "s" : ""}` : "",
  ].filter(Boolean).join("; ");
}

/**
 * Every check of a restore, touching nothing: manifest and dump checksum, server versions, roles, the target
 * database's state, `protectData`, and names free for the new and the kept database.
 */
export async function planRestore(options: RestoreOptions): Promise<RestorePlan> {
  const manifest = readManifest(options.manifestPath);
  checkDatabaseGrants(manifest);
  const dumpPath = dumpPathOf(options.manifestPath, manifest);
  await verifyDumpChecksum(manifest, dumpPath);
  const database = options.database ?? manifest.database;
  const now = options.now ?? new Date();
  const staging = sideDatabaseName(database, "restore", now);

  return withClient(clientConfig(options.admin), async (admin) => {
    checkCompatibility(manifest, await readTargetServer(admin));
    // Every restore creates a database (staging, or the scratch one of --verify).
    await requireCreatedb(admin, `Restoring into database "${database}"`);
    if (manifest.timescaledbVersion !== null) await requireTimescaleRestoreRights(admin, database);
    const missing = await missingRoles(admin, manifest);
    if (missing.length > 0) {
      throw new Error(
        `Role${missing.length > 1 ? "s" : ""} ${missing.map((r) => `"${r}"`).join(", ")} that backup ${manifest.dumpFile} refers to ` +
          `(database owner, grantees or object owners) do${missing.length > 1 ? "" : "es"} not exist on the target server; restore refused, nothing changed. ` +
          "Create them first (`pulumi up` creates the stack's roles).",
      );
    }
    const names = async (...n: string[]) => ((await admin.query("SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", [n])).rows as { datname: string }[]).map((r) => r.datname);
    if ((await names(staging)).length > 0) throw new Error(`Database "${staging}" already exists; restore refused. Drop it or retry in a second.`);
    if ((await names(database)).length === 0) return { manifest, dumpPath, database, staging, target: { state: "absent" } };

    // Empty means nothing the dump would create again: even the bare schemas `pulumi up` makes.
    const found = await withClient(clientConfig(connectionWith(options.admin, { database })), userObjects);
    if (found.schemas.length + found.tables.length + found.largeObjects === 0) return { manifest, dumpPath, database, staging, target: { state: "empty" } };
    const objects = describeObjects(found);
    if (!options.recreate) {
      throw new Error(
        `Database "${database}" is not empty (${objects}); a restore needs an empty database. ` +
          "Pass --recreate to replace it (its current data is kept renamed), or --database <name> to restore beside it.",
      );
    }
    if (options.protectData && !options.force) {
      throw new Error(
        `[tsdb:protectData] is true: --recreate would replace database "${database}" (${objects}). ` +
          "Take a backup first, then add --force to confirm, or restore with --database <new name>.",
      );
    }
    const keptAs = sideDatabaseName(database, "replaced", now);
    if ((await names(keptAs)).length > 0) throw new Error(`Database "${keptAs}" already exists; restore refused. Drop it or retry in a second.`);
    return { manifest, dumpPath, database, staging, target: { state: "data", keptAs, objects } };
  });
}

async function createStagingDatabase(admin: Client, plan: RestorePlan): Promise<void> {
  const db = admin.escapeIdentifier(plan.staging);
  // template0: a restore must start from a database with nothing in it (PostgreSQL docs, pg_dump "Notes").
  await admin.query(`CREATE DATABASE ${db} OWNER ${admin.escapeIdentifier(plan.manifest.owner)} TEMPLATE template0`);
  try {
    await admin.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    for (const g of plan.manifest.databaseGrants) {
      const grantee = g.grantee === "PUBLIC" ? "PUBLIC" : admin.escapeIdentifier(g.grantee);
      await admin.query(`GRANT ${g.privilege} ON DATABASE ${db} TO ${grantee}`);
    }
  } catch (err) {
    await dropDatabaseForce(admin, plan.staging).catch(() => undefined);
    throw err;
  }
}

/** Loads the dump into the staging database and compares its row counts with the manifest. */
async function loadAndVerify(options: RestoreOptions, plan: RestorePlan): Promise<Record<string, number>> {
  const { manifest } = plan;
  const { rowCounts, rebuilt } = await withClient(clientConfig(connectionWith(options.admin, { database: plan.staging })), async (target) => {
    await restoreWithTimescaleProcedure(target, manifest.timescaledbVersion, () =>
      restoreAsOwners(target, options.admin.user, options.restore, plan.dumpPath, plan.staging),
    );
    return { rowCounts: await countRows(target), rebuilt: await materializedViews(target) };
  });
  const mismatches = compareRowCounts(manifest.rowCounts, rowCounts, rebuilt);
  if (mismatches.length > 0) {
    throw new Error(`Restored data does not match backup ${manifest.dumpFile}:\n  ${mismatches.join("\n  ")}`);
  }
  return rowCounts;
}

/** Closes every session of `database` and keeps new ones out (background workers reconnect otherwise). */
async function closeSessions(admin: Client, database: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} WITH ALLOW_CONNECTIONS false`);
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [database]);
}

async function allowSessions(admin: Client, database: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(database)} WITH ALLOW_CONNECTIONS true`);
}

/**
 * Gives the verified staging database the target name in ONE transaction (issue 23.8): the database there now
 * (if any) is renamed aside, the staging one takes its name, and both get connections back, or nothing happens.
 * PostgreSQL allows `ALTER DATABASE ... RENAME` and `ALLOW_CONNECTIONS` inside a transaction. Only closing the
 * sessions comes before it; a run killed there leaves databases that refuse connections, which the next restore
 * and `tsdb doctor` name ({@link findInterruptedRestores}). An empty database set aside is dropped afterwards
 * (DROP DATABASE cannot run in a transaction).
 */
async function swapIntoPlace(admin: Client, plan: RestorePlan): Promise<void> {
  const aside = plan.target.state === "data" ? plan.target.keptAs : plan.target.state === "empty" ? sideDatabaseName(plan.database, "empty", new Date()) : undefined;
  const q = (name: string) => admin.escapeIdentifier(name);
  // A terminated session may take a moment to leave; RENAME refuses while any is connected, so retry the whole swap.
  for (let attempt = 1; ; attempt++) {
    await closeSessions(admin, plan.staging);
    if (aside) await closeSessions(admin, plan.database);
    try {
      await withTransaction(admin, async () => {
        if (aside) await admin.query(`ALTER DATABASE ${q(plan.database)} RENAME TO ${q(aside)}`);
        await admin.query(`ALTER DATABASE ${q(plan.staging)} RENAME TO ${q(plan.database)}`);
        await admin.query(`ALTER DATABASE ${q(plan.database)} WITH ALLOW_CONNECTIONS true`);
        if (aside && plan.target.state === "data") await admin.query(`ALTER DATABASE ${q(aside)} WITH ALLOW_CONNECTIONS true`);
      });
      break;
    } catch (err) {
      if (attempt >= 20 || !/is being accessed by other users/.test((err as Error).message)) {
        // Nothing was renamed: give the database its connections back.
        if (aside) await allowSessions(admin, plan.database).catch(() => undefined);
        throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  if (aside && plan.target.state === "empty") await dropDatabaseForce(admin, aside);
}

/**
 * Advisory-lock class a running restore or verify holds (with `hashtext(<its staging database>)`) on the
 * admin's database for as long as it runs, so another run can tell a database left by a killed run from one a
 * running restore is still filling. The number spells "rest" in ASCII; it only has to differ from the
 * migrations' lock key.
 */
const RESTORE_LOCK_CLASS = 0x72657374;

/**
 * Side databases restore makes: staging (`_restore_`), scratch (`_verify_`), the helper of a restore run from a
 * connection to its target (`_swap_`), empty set aside (`_empty_`), kept data (`_replaced_`).
 */
const SIDE_DATABASE = /_(restore|verify|swap|empty|replaced)_\d{14}$/;

/** What killed restores left on a server, as {@link findInterruptedRestores} finds it. */
export interface InterruptedRestores {
  /** Staging, scratch and set-aside empty databases no running restore holds: safe to drop (the dump still exists). */
  scratch: string[];
  /** Databases that refuse connections (a swap interrupted after closing them), or kept data never reopened. */
  closed: string[];
  /** Temporary restore logins (`tsdb_restore_login_*`) no running restore uses. */
  logins: string[];
}

/**
 * Finds what an interrupted restore or verify left (issue 23.8, 23.10): side databases that no running restore
 * holds its advisory lock for, databases that refuse connections, and temporary logins; from any database.
 */
export async function findInterruptedRestores(db: Queryable, self: string[] = []): Promise<InterruptedRestores> {
  const all = (await db.query("SELECT datname, datallowconn FROM pg_database WHERE datname <> 'template0' ORDER BY 1")).rows as { datname: string; datallowconn: boolean }[];
  // pg_locks shows every database's locks, so this works from any database (the app's, for doctor).
  const running = async (name: string) =>
    ((await db.query(
      `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid
                        AND objid = (hashtext($2)::bigint & 4294967295)::text::oid AND objsubid = 2) AS held`,
      [RESTORE_LOCK_CLASS, name],
    )).rows[0] as { held: boolean }).held;
  const found: InterruptedRestores = { scratch: [], closed: [], logins: [] };
  // Other runs in progress (not `self`, the caller's own run): while one runs, closed databases and logins may be its own.
  const liveLocks = ((await db.query(
    `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::oid AND objsubid = 2
        AND objid <> ALL (SELECT (hashtext(n)::bigint & 4294967295)::text::oid FROM unnest($2::text[]) n)`,
    [RESTORE_LOCK_CLASS, self],
  )).rows[0] as { n: number }).n;
  for (const d of all) {
    const side = SIDE_DATABASE.exec(d.datname)?.[1];
    // A staging or scratch database is its run's lock name; an empty one set aside lives only inside a swap.
    if (side === "restore" || side === "verify" || side === "swap") {
      if (!(await running(d.datname))) found.scratch.push(d.datname);
    } else if (side === "empty") {
      if (liveLocks === 0) found.scratch.push(d.datname);
    } else if (!d.datallowconn && liveLocks === 0) {
      found.closed.push(d.datname);
    }
  }
  if (liveLocks === 0) {
    const logins = (await db.query("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1", [RESTORE_LOGIN_PREFIX])).rows as { rolname: string }[];
    found.logins = logins.map((r) => r.rolname);
  }
  return found;
}

/**
 * Drops the scratch databases and logins of interrupted runs and returns one line per thing found, naming it
 * (closed databases are named with the statement that reopens them, never changed: they may hold the only
 * copy of the data).
 */
export async function cleanUpInterruptedRestores(admin: Client, self: string[]): Promise<string[]> {
  const found = await findInterruptedRestores(admin, self);
  const lines: string[] = [];
  for (const name of found.scratch) {
    await dropDatabaseForce(admin, name);
    lines.push(`dropped database "${name}", left by an interrupted restore or verify`);
  }
  for (const login of found.logins) {
    await dropRestoreLogin(admin, login);
    lines.push(`dropped role "${login}", left by an interrupted restore`);
  }
  for (const name of found.closed) {
    lines.push(
      `database "${name}" refuses connections: a restore was interrupted while swapping names. Check it, then reopen it: ALTER DATABASE ${admin.escapeIdentifier(name)} WITH ALLOW_CONNECTIONS true;`,
    );
  }
  return lines;
}

/** Holds the run's advisory locks (one per side database it makes) on a connection of its own until `fn` settles. */
async function whileHoldingRestoreLock<T>(admin: ConnectionInfo, names: string | string[], fn: () => Promise<T>): Promise<T> {
  return withClient(clientConfig(admin), async (guard) => {
    for (const name of [names].flat()) await guard.query("SELECT pg_advisory_lock($1, hashtext($2))", [RESTORE_LOCK_CLASS, name]);
    return fn();
  });
}

/** Drops a database this run made (staging, scratch, the swap helper) on a connection of its own. */
async function dropSideDatabase(admin: ConnectionInfo, name: string): Promise<void> {
  await withClient(clientConfig(admin), (c) => dropDatabaseForce(c, name));
}

/**
 * Drops the half-restored database after `failure` and returns the error to throw: `failure` itself, or, when
 * the drop failed too (issue 21.8: a session that cannot be terminated, a prepared transaction), `failure` with
 * a sentence naming the database left behind, which the next restore drops.
 */
async function withStagingDropped(admin: ConnectionInfo, staging: string, failure: unknown): Promise<unknown> {
  try {
    await dropSideDatabase(admin, staging);
    return failure;
  } catch (dropError) {
    const message = failure instanceof Error ? failure.message : String(failure);
    return new Error(
      `${message} The half-restored database "${staging}" could not be dropped (${(dropError as Error).message}); ` +
        "the next restore or verify drops it, or drop it yourself once that is fixed.",
      { cause: failure },
    );
  }
}

/**
 * Restores a backup into its database (or `options.database`): all checks first ({@link planRestore}), then
 * load and verify in a new database, then swap names. A failure before the swap drops the new database and
 * leaves the original as it was.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const plan = await planRestore(options);
  if (options.admin.database !== plan.database) return restorePlanned(options, plan);
  // Issue 21.7: the admin can only reach the database being restored (managed services often keep `postgres` from
  // their admins). A database cannot be renamed while we are connected to it, so the run works from a helper
  // database it creates (CREATE DATABASE needs no maintenance database) and drops at the end.
  const helper = sideDatabaseName(plan.database, "swap", options.now ?? new Date());
  await withClient(clientConfig(options.admin), (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(helper)} TEMPLATE template0`));
  try {
    const via = connectionWith(options.admin, { database: helper });
    await withClient(clientConfig(via), async () => undefined).catch((err: unknown) => {
      throw new Error(
        `Restoring "${plan.database}" through a connection to it needs a second database to rename it from, and "${helper}" could not be reached ` +
          `(${(err as Error).message}); this service allows no such connection: connect to its maintenance database instead (--url postgresql://<admin>@<host>:<port>/postgres).`,
      );
    });
    return await restorePlanned({ ...options, admin: via }, plan, [helper]);
  } finally {
    // The target name now holds the restored database after a success and the original one otherwise: either reaches the helper.
    await dropSideDatabase(options.admin, helper).catch(() => undefined);
  }
}

async function restorePlanned(options: RestoreOptions, plan: RestorePlan, alsoHeld: string[] = []): Promise<RestoreResult> {
  return whileHoldingRestoreLock(options.admin, [plan.staging, ...alsoHeld], async () => {
    const leftovers = await withClient(clientConfig(options.admin), (admin) => cleanUpInterruptedRestores(admin, [plan.staging, ...alsoHeld]));
    // Created only by this run: a restore racing us for the same staging name must not lose its database to our cleanup.
    await withClient(clientConfig(options.admin), (admin) => createStagingDatabase(admin, plan));
    let rowCounts: Record<string, number>;
    try {
      rowCounts = await loadAndVerify(options, plan);
      await withClient(clientConfig(options.admin), (admin) => swapIntoPlace(admin, plan));
    } catch (err) {
      throw await withStagingDropped(options.admin, plan.staging, err);
    }
    const warnings = plan.manifest.timescaledbVersion === null ? [] : await startScheduler(connectionWith(options.admin, { database: plan.database }));
    return { database: plan.database, manifest: plan.manifest, rowCounts, replaced: plan.target.state === "data" ? plan.target.keptAs : undefined, leftovers, warnings };
  });
}

/**
 * Starts TimescaleDB's scheduler in the restored database. The swap ends every session of the new database,
 * its scheduler too, and TimescaleDB's launcher does not start it again until the server restarts: until then
 * no policy would run. Starting it needs a superuser; without one the returned warning says what to do.
 */
async function startScheduler(restored: ConnectionInfo): Promise<string[]> {
  try {
    await withClient(clientConfig(restored), (c) => c.query("SELECT _timescaledb_functions.start_background_workers()"));
    return [];
  } catch (err) {
    return [
      `TimescaleDB's background jobs of "${restored.database}" are not running (${(err as Error).message}); ` +
        `run \`SELECT _timescaledb_functions.start_background_workers();\` in it as a superuser, or restart the server.`,
    ];
  }
}

/** Restores into a scratch database, compares row counts, and always drops it; nothing else changes. */
export async function verifyBackup(options: Omit<RestoreOptions, "database" | "recreate">): Promise<RestoreResult> {
  const manifest = readManifest(options.manifestPath);
  const scratch = sideDatabaseName(manifest.database, "verify", options.now ?? new Date());
  const plan = await planRestore({ ...options, database: scratch });
  // The scratch name is new, so the plan's staging database is the scratch database itself: no swap.
  const direct: RestorePlan = { ...plan, staging: scratch };
  return whileHoldingRestoreLock(options.admin, scratch, async () => {
    const leftovers = await withClient(clientConfig(options.admin), (admin) => cleanUpInterruptedRestores(admin, [scratch]));
    // Created only by this run (see restoreBackup): a failed CREATE leaves nothing of ours to drop.
    await withClient(clientConfig(options.admin), (admin) => createStagingDatabase(admin, direct));
    let rowCounts: Record<string, number>;
    try {
      rowCounts = await loadAndVerify(options, direct);
    } catch (err) {
      throw await withStagingDropped(options.admin, scratch, err);
    }
    await dropSideDatabase(options.admin, scratch);
    return { database: scratch, manifest: plan.manifest, rowCounts, leftovers };
  });
}

/**
 * The newest backup of `database` in `dir` (by sequence, never by date), from one server (issue 23.5): backups
 * of `stack` when the directory records any, and a refusal listing the servers when backups of that database
 * from more than one are left to choose from. Backups written before sources were recorded go with any.
 */
export function chooseBackup(dir: string, database: string, stack?: string): FoundBackup | undefined {
  const own = listBackups(dir, database);
  const ofStack = stack ? own.filter((b) => b.manifest.source?.stack === stack) : [];
  const candidates = ofStack.length > 0 ? ofStack : own;
  const servers = new Map<string, FoundBackup>();
  for (const b of candidates) {
    const key = b.manifest.source ? (b.manifest.source.systemIdentifier ?? b.manifest.source.address) : undefined;
    if (key !== undefined && !servers.has(key)) servers.set(key, b);
  }
  if (servers.size > 1) {
    throw new Error(
      `${dir} holds backups of "${database}" from ${servers.size} servers (${[...servers.values()].map((b) => `${describeSource(b.manifest)}: newest ${path.basename(b.manifestPath)}`).join("; ")}); ` +
        "restore refused: pass --backup with the manifest file of the one to restore.",
    );
  }
  return candidates[0];
}

/**
 * The manifest `--backup` names: a manifest file, or a directory, where the newest manifest of `database` is
 * taken ({@link chooseBackup}; or the newest of any database when the directory holds backups of one database only).
 */
export function resolveManifest(given: string, database: string, stack?: string): string {
  if (!fs.existsSync(given)) throw new Error(`--backup ${given} does not exist; pass a *.manifest.json file or the directory holding it.`);
  if (!fs.statSync(given).isDirectory()) return given;
  const own = chooseBackup(given, database, stack);
  if (own) return own.manifestPath;
  const databases = [...new Set(listAllDatabases(given))];
  if (databases.length === 1) return (chooseBackup(given, databases[0] as string, stack) as FoundBackup).manifestPath;
  throw new Error(
    databases.length === 0
      ? `--backup ${given} holds no valid backup manifest (*.manifest.json); make one with \`npm run db:backup\`.`
      : `--backup ${given} holds no backup of "${database}" but backups of ${databases.map((d) => `"${d}"`).join(", ")}; pass the manifest file.`,
  );
}

function listAllDatabases(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith(".manifest.json")).flatMap((f) => {
    try {
      return [readManifest(path.join(dir, f)).database];
    } catch {
      return [];
    }
  });
}
