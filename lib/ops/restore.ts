/**
 * Restores (`npm run db:restore`). Every check runs before anything is touched: the dump against its manifest
 * (sha256), the target server against the dump's versions, the roles the dump refers to, the target's state
 * and `protectData`. Then the dump goes into a NEW database `<db>_restore_<time>` following TimescaleDB's
 * procedure (extension at the dump's version, `timescaledb_pre_restore()`, pg_restore,
 * `timescaledb_post_restore()`), its row counts are compared with the manifest, and only then is it renamed
 * to the target name. Until that swap the original database is untouched; any failure drops the new one.
 * `--verify` does the same into a scratch database and drops it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { clientConfig, withClient, type ConnectionInfo } from "../db";
import { requireCreatedb } from "../managed";
import { countRows, libpqEnv, listBackups, readManifest, runTool, sha256File, type BackupManifest } from "./backup";
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
  await db.query("SELECT public.timescaledb_pre_restore()");
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

/** Loads a custom-format dump into `database` on the target server. */
export type RestoreRunner = (request: { dumpPath: string; database: string }) => Promise<void>;

/** pg_restore on this machine, connecting as `admin`. Stops at the first error so a partial restore is reported. */
export function localPgRestore(admin: ConnectionInfo, pgRestore = "pg_restore"): RestoreRunner {
  return ({ dumpPath, database }) =>
    runTool(
      pgRestore,
      ["--format=custom", `--host=${admin.host}`, `--port=${admin.port}`, `--username=${admin.user}`, `--dbname=${database}`, "--no-password", "--exit-on-error", "--single-transaction", dumpPath],
      { env: libpqEnv(admin) },
    );
}

/** pg_restore inside the TimescaleDB container (docker mode), reading the dump on stdin. */
export function dockerPgRestore(container: string, user: string, password = ""): RestoreRunner {
  return ({ dumpPath, database }) =>
    runTool(
      "docker",
      ["exec", "-i", ...(password ? ["-e", "PGPASSWORD"] : []), container, "pg_restore", "--format=custom", `--username=${user}`, `--dbname=${database}`, "--no-password", "--exit-on-error", "--single-transaction"],
      { env: { PGPASSWORD: password }, stdinFile: dumpPath },
    );
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
}

/** Schemas and tables that make a database non-empty (anything not owned by an extension or the system). */
async function userObjects(client: Queryable): Promise<{ schemas: string[]; tables: string[] }> {
  const notExtension = (catalog: string, alias: string) =>
    `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${alias}.oid AND d.deptype = 'e')`;
  const schemas = (await client.query(`SELECT n.nspname AS name FROM pg_namespace n
      WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND ${notExtension("pg_namespace", "n")}
      ORDER BY 1`)).rows as { name: string }[];
  const tables = (await client.query(`SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND n.nspname NOT LIKE '\\_timescaledb%' AND n.nspname NOT LIKE 'timescaledb\\_%' AND ${notExtension("pg_class", "c")}
      ORDER BY 1`)).rows as { name: string }[];
  return { schemas: schemas.map((r) => r.name), tables: tables.map((r) => r.name) };
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

function describeObjects(found: { schemas: string[]; tables: string[] }): string {
  const list = (names: string[]) => names.slice(0, 3).join(", ") + (names.length > 3 ? `, ... (${names.length})` : "");
  return [found.schemas.length ? `schemas ${list(found.schemas)}` : "", found.tables.length ? `tables ${list(found.tables)}` : ""].filter(Boolean).join("; ");
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
  if (options.admin.database === database) {
    throw new Error(
      `The admin connection is to database "${database}", the one being restored; a database cannot be replaced from inside it. ` +
        "Connect to the maintenance database instead (--url postgresql://<admin>@<host>:<port>/postgres).",
    );
  }
  const now = options.now ?? new Date();
  const staging = sideDatabaseName(database, "restore", now);

  return withClient(clientConfig(options.admin), async (admin) => {
    checkCompatibility(manifest, await readTargetServer(admin));
    // Every restore creates a database (staging, or the scratch one of --verify).
    await requireCreatedb(admin, `Restoring into database "${database}"`);
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
    const found = await withClient(clientConfig({ ...options.admin, database }), userObjects);
    if (found.schemas.length + found.tables.length === 0) return { manifest, dumpPath, database, staging, target: { state: "empty" } };
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
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
    throw err;
  }
}

/** Loads the dump into the staging database and compares its row counts with the manifest. */
async function loadAndVerify(options: RestoreOptions, plan: RestorePlan): Promise<Record<string, number>> {
  const { manifest } = plan;
  const { rowCounts, rebuilt } = await withClient(clientConfig({ ...options.admin, database: plan.staging }), async (target) => {
    await restoreWithTimescaleProcedure(target, manifest.timescaledbVersion, () => options.restore({ dumpPath: plan.dumpPath, database: plan.staging }));
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

async function rename(admin: Client, from: string, to: string): Promise<void> {
  // A terminated session may take a moment to leave; RENAME refuses while any is connected.
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(from)} RENAME TO ${admin.escapeIdentifier(to)}`);
      return;
    } catch (err) {
      if (attempt >= 20 || !/is being accessed by other users/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Gives the verified staging database the target name. The database there now (if any) is renamed out of the
 * way first and kept when it had data; if the second rename fails, the first is undone.
 */
async function swapIntoPlace(admin: Client, plan: RestorePlan): Promise<void> {
  await closeSessions(admin, plan.staging);
  if (plan.target.state !== "absent") {
    const aside = plan.target.state === "data" ? plan.target.keptAs : sideDatabaseName(plan.database, "empty", new Date());
    try {
      await closeSessions(admin, plan.database);
      await rename(admin, plan.database, aside);
    } catch (err) {
      await allowSessions(admin, plan.database);
      throw err;
    }
    try {
      await rename(admin, plan.staging, plan.database);
    } catch (err) {
      await rename(admin, aside, plan.database);
      await allowSessions(admin, plan.database);
      throw err;
    }
    if (plan.target.state === "data") await allowSessions(admin, aside);
    else await admin.query(`DROP DATABASE ${admin.escapeIdentifier(aside)}`);
  } else {
    await rename(admin, plan.staging, plan.database);
  }
  await allowSessions(admin, plan.database);
}

async function dropStaging(admin: ConnectionInfo, staging: string): Promise<void> {
  await withClient(clientConfig(admin), (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(staging)} WITH (FORCE)`));
}

/**
 * Restores a backup into its database (or `options.database`): all checks first ({@link planRestore}), then
 * load and verify in a new database, then swap names. A failure before the swap drops the new database and
 * leaves the original as it was.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const plan = await planRestore(options);
  // Created only by this run: a restore racing us for the same staging name must not lose its database to our cleanup.
  await withClient(clientConfig(options.admin), (admin) => createStagingDatabase(admin, plan));
  let rowCounts: Record<string, number>;
  try {
    rowCounts = await loadAndVerify(options, plan);
    await withClient(clientConfig(options.admin), (admin) => swapIntoPlace(admin, plan));
  } catch (err) {
    await dropStaging(options.admin, plan.staging).catch(() => undefined);
    throw err;
  }
  const warnings = plan.manifest.timescaledbVersion === null ? [] : await startScheduler({ ...options.admin, database: plan.database });
  return { database: plan.database, manifest: plan.manifest, rowCounts, replaced: plan.target.state === "data" ? plan.target.keptAs : undefined, warnings };
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
  // Created only by this run (see restoreBackup): a failed CREATE leaves nothing of ours to drop.
  await withClient(clientConfig(options.admin), (admin) => createStagingDatabase(admin, direct));
  try {
    const rowCounts = await loadAndVerify(options, direct);
    return { database: scratch, manifest: plan.manifest, rowCounts };
  } finally {
    await dropStaging(options.admin, scratch);
  }
}

/**
 * The manifest `--backup` names: a manifest file, or a directory, where the newest manifest of `database` is
 * taken (or the newest of any database when the directory holds backups of one database only).
 */
export function resolveManifest(given: string, database: string): string {
  if (!fs.existsSync(given)) throw new Error(`--backup ${given} does not exist; pass a *.manifest.json file or the directory holding it.`);
  if (!fs.statSync(given).isDirectory()) return given;
  const own = listBackups(given, database)[0];
  if (own) return own.manifestPath;
  const all = fs.readdirSync(given).filter((f) => f.endsWith(".manifest.json"));
  const databases = [...new Set(all.flatMap((f) => { try { return [readManifest(path.join(given, f)).database]; } catch { return []; } }))];
  if (databases.length === 1) return (listBackups(given, databases[0] as string)[0] as { manifestPath: string }).manifestPath;
  throw new Error(
    databases.length === 0
      ? `--backup ${given} holds no valid backup manifest (*.manifest.json); make one with \`npm run db:backup\`.`
      : `--backup ${given} holds no backup of "${database}" but backups of ${databases.map((d) => `"${d}"`).join(", ")}; pass the manifest file.`,
  );
}
