/**
 * Restores (`npm run db:restore`) following TimescaleDB's procedure: check the dump against its manifest
 * (sha256) and the target server against the dump's versions, create the extension at the dump's version,
 * `timescaledb_pre_restore()`, pg_restore, `timescaledb_post_restore()`, then compare row counts with the
 * manifest. `--verify` does the same into a scratch database and drops it.
 */
import * as path from "node:path";
import type { Client } from "pg";
import { clientConfig, withClient, type ConnectionInfo } from "../db";
import { requireCreatedb } from "../managed";
import { countRows, libpqEnv, readManifest, runTool, sha256File, type BackupManifest } from "./backup";
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

/** Lines describing each table whose count differs from the manifest (empty when all match). */
export function compareRowCounts(expected: Record<string, number>, actual: Record<string, number>): string[] {
  const names = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
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
        "Restore into a new database (--database <name>, or --recreate).",
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
      ["--format=custom", `--host=${admin.host}`, `--port=${admin.port}`, `--username=${admin.user}`, `--dbname=${database}`, "--no-password", "--exit-on-error", dumpPath],
      { env: libpqEnv(admin) },
    );
}

/** pg_restore inside the TimescaleDB container (docker mode), reading the dump on stdin. */
export function dockerPgRestore(container: string, user: string, password = ""): RestoreRunner {
  return ({ dumpPath, database }) =>
    runTool(
      "docker",
      ["exec", "-i", ...(password ? ["-e", "PGPASSWORD"] : []), container, "pg_restore", "--format=custom", `--username=${user}`, `--dbname=${database}`, "--no-password", "--exit-on-error"],
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
  /** Drop and recreate the target when it already has tables (its current data is lost). */
  recreate?: boolean;
}

/** Result of a restore: what was restored where, with the verified counts. */
export interface RestoreResult {
  database: string;
  manifest: BackupManifest;
  rowCounts: Record<string, number>;
}

/** Schemas and tables that make a database non-empty (anything not owned by an extension or the system). */
async function userObjects(client: Client): Promise<{ schemas: string[]; tables: string[] }> {
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

async function createTargetDatabase(admin: Client, database: string, manifest: BackupManifest): Promise<void> {
  const owner = (await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [manifest.owner])).rowCount;
  if (!owner) {
    throw new Error(`Role "${manifest.owner}" (owner of the backed-up database) does not exist on the target; run \`pulumi up\` first so the roles exist.`);
  }
  const db = admin.escapeIdentifier(database);
  // template0: a restore must start from a database with nothing in it (PostgreSQL docs, pg_dump "Notes").
  await admin.query(`CREATE DATABASE ${db} OWNER ${admin.escapeIdentifier(manifest.owner)} TEMPLATE template0`);
  await admin.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
  for (const g of manifest.databaseGrants) {
    const grantee = g.grantee === "PUBLIC" ? "PUBLIC" : admin.escapeIdentifier(g.grantee);
    if (!/^(CONNECT|CREATE|TEMPORARY)$/.test(g.privilege)) throw new Error(`Manifest grant "${g.privilege}" on the database is not a database privilege.`);
    await admin.query(`GRANT ${g.privilege} ON DATABASE ${db} TO ${grantee}`);
  }
}

/** Restores a backup into its database (or `options.database`) and verifies checksum, versions and row counts. */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const manifest = readManifest(options.manifestPath);
  const dumpPath = path.join(path.dirname(options.manifestPath), manifest.dumpFile);
  await verifyDumpChecksum(manifest, dumpPath);
  const database = options.database ?? manifest.database;

  await withClient(clientConfig(options.admin), async (admin) => {
    checkCompatibility(manifest, await readTargetServer(admin));
    const exists = (await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database])).rowCount;
    if (!exists || options.recreate) await requireCreatedb(admin, `Restoring into database "${database}"`);
    if (exists && options.recreate) {
      await admin.query(`DROP DATABASE ${admin.escapeIdentifier(database)} WITH (FORCE)`);
    } else if (exists) {
      // Empty means nothing the dump would create again: even the bare schemas `pulumi up` makes would stop
      // pg_restore at its first CREATE SCHEMA.
      const found = await withClient(clientConfig({ ...options.admin, database }), userObjects);
      if (found.schemas.length + found.tables.length > 0) {
        const list = (names: string[]) => names.slice(0, 3).join(", ") + (names.length > 3 ? `, ... (${names.length})` : "");
        const parts = [found.schemas.length ? `schemas ${list(found.schemas)}` : "", found.tables.length ? `tables ${list(found.tables)}` : ""].filter(Boolean);
        throw new Error(
          `Database "${database}" is not empty (${parts.join("; ")}); a restore needs an empty database. ` +
            "Pass --recreate to drop and recreate it (its current data is lost), or --database <name> to restore beside it.",
        );
      }
    }
    if (!exists || options.recreate) await createTargetDatabase(admin, database, manifest);
  });

  const rowCounts = await withClient(clientConfig({ ...options.admin, database }), async (target) => {
    await restoreWithTimescaleProcedure(target, manifest.timescaledbVersion, () => options.restore({ dumpPath, database }));
    return countRows(target);
  });
  const mismatches = compareRowCounts(manifest.rowCounts, rowCounts);
  if (mismatches.length > 0) {
    throw new Error(`Restored "${database}" does not match backup ${manifest.dumpFile}:\n  ${mismatches.join("\n  ")}`);
  }
  return { database, manifest, rowCounts };
}

/** Restores into a scratch database `<db>_verify_<time>`, compares row counts, and always drops it. */
export async function verifyBackup(options: Omit<RestoreOptions, "database" | "recreate">): Promise<RestoreResult> {
  const manifest = readManifest(options.manifestPath);
  const scratch = `${manifest.database.slice(0, 40)}_verify_${Date.now()}`;
  try {
    return await restoreBackup({ ...options, database: scratch });
  } finally {
    await withClient(clientConfig(options.admin), (admin) =>
      admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(scratch)} WITH (FORCE)`),
    );
  }
}
