/**
 * Backups (`npm run db:backup`): a pg_dump in custom format plus a manifest JSON beside it holding the time,
 * the PostgreSQL and TimescaleDB versions, row counts per table and the dump's sha256, so a restore can refuse
 * a mismatched server and prove it got everything back. Row counts and the dump read the same snapshot.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { clientConfig, withClient } from "../postgres/client";
import type { ConnectionInfo } from "../postgres/connectionInfo";
import { clientInstallAdvice } from "./prerequisites";
import { rootCertFile } from "../postgres/tls";
import type { Queryable } from "./databaseHealth";

/** The manifest written beside each dump (`<database>-<time>.manifest.json`). */
export const backupManifestSchema = z.object({
  formatVersion: z.literal(1),
  createdAt: z.string(),
  database: z.string().min(1),
  /** Owner of the database, so a restore can recreate it with the same owner. */
  owner: z.string().min(1),
  /** Database-level privileges (not in a dump made without --create): re-granted when a restore recreates it. */
  databaseGrants: z.array(z.object({ grantee: z.string(), privilege: z.string() })),
  /** The dump's file name, in the manifest's directory: a plain name, never a path (pruning deletes it). */
  dumpFile: z.string().refine(isPlainFileName, "must be a plain file name in the backup directory (no /, \\, . or ..)"),
  format: z.enum(["custom", "plain"]),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  serverVersion: z.string(),
  postgresMajor: z.number().int(),
  timescaledbVersion: z.string().nullable(),
  /**
   * `schema.table` -> rows, for every user table whose rows the dump carries (hypertables counted as a whole).
   * Materialized views are not here: a dump holds their definition and a REFRESH, so their rows are rebuilt
   * from the tables at restore. (Manifests written before this may list them; restore ignores those.)
   */
  rowCounts: z.record(z.string(), z.number().int().nonnegative()),
  /** Roles the database's objects and grants refer to (owners, grantees): a restore checks they exist first. */
  roles: z.array(z.string()).optional(),
  /**
   * Which server and stack the dump came from (issue 23.5): pruning and choosing a backup never cross it. The
   * server is its `pg_control_system()` system identifier (the same for every address of one cluster), and the
   * address it was reached at when that cannot be read. Absent in manifests written before: such backups are
   * never pruned by a newer one (they cannot be told apart).
   */
  source: z
    .object({ systemIdentifier: z.string().nullable(), address: z.string(), stack: z.string().nullable() })
    .optional(),
  /**
   * Order of the backups in their directory: one more than the highest there when it was written. Newest means
   * highest sequence, never latest `createdAt`: a clock set wrong (a manifest "from the future") cannot make the
   * backup just taken look old (issue 23.6). Absent in manifests written before: they sort below every numbered one.
   */
  sequence: z.number().int().nonnegative().optional(),
});

/** True for a bare file name: no directory part, not `.`/`..`, so it can only name a file in the same directory. */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}

/** A validated backup manifest. */
export type BackupManifest = z.infer<typeof backupManifestSchema>;

/** Versions of the server a client is connected to. */
export interface ServerInfo {
  serverVersion: string;
  postgresMajor: number;
  /** Installed timescaledb extension version in the current database, or null. */
  timescaledbVersion: string | null;
}

/** Reads the server's version and the timescaledb extension version of the current database. */
export async function readServerInfo(db: Queryable): Promise<ServerInfo> {
  const row = (
    await db.query(
      `SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n,
              (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts`,
    )
  ).rows[0] as { v: string; n: number; ts: string | null };
  // Distribution builds append their package version ("15.18 (Debian 15.18-0+deb12u1)"): keep the release.
  return { serverVersion: row.v.split(" ")[0] ?? row.v, postgresMajor: Math.floor(Number(row.n) / 10000), timescaledbVersion: row.ts };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Exact row counts of every user table and partitioned parent, keyed `schema.table`: the relations whose rows
 * a dump carries. Materialized views are left out: pg_dump writes their definition and a REFRESH, so restore
 * rebuilds them from the restored tables, and a count taken from a stale or never-refreshed view would differ.
 * TimescaleDB's internal schemas (chunks, materialization tables) and extension-owned tables are left out:
 * a hypertable's count covers its chunks, compressed or not.
 */
export async function countRows(db: Queryable): Promise<Record<string, number>> {
  const tables = (
    await db.query(
      `SELECT n.nspname AS schema, c.relname AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg\\_temp%' AND n.nspname NOT LIKE 'pg\\_toast%'
          AND n.nspname NOT LIKE '\\_timescaledb%' AND n.nspname NOT LIKE 'timescaledb\\_%'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        ORDER BY 1, 2`,
    )
  ).rows as { schema: string; name: string }[];
  const counts: Record<string, number> = {};
  for (const t of tables) {
    const r = (await db.query(`SELECT count(*)::bigint::text AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)).rows[0] as { n: string };
    counts[`${t.schema}.${t.name}`] = Number(r.n);
  }
  return counts;
}

/** Owner and database-level grants of the current database (PUBLIC shown as `PUBLIC`). */
export async function readDatabaseAccess(db: Queryable): Promise<{ owner: string; grants: { grantee: string; privilege: string }[] }> {
  const owner = (
    (await db.query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()")).rows[0] as { owner: string }
  ).owner;
  const grants = (
    await db.query(
      `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege
         FROM pg_database d, aclexplode(d.datacl) a
        WHERE d.datname = current_database() AND a.grantee <> d.datdba
        ORDER BY 1, 2`,
    )
  ).rows as { grantee: string; privilege: string }[];
  return { owner, grants };
}

/**
 * Roles the current database's objects and grants depend on (owners, grantees, default privileges), from
 * pg_shdepend, plus the database's owner and grantees: a restore needs each of them on the target server.
 */
export async function readReferencedRoles(db: Queryable): Promise<string[]> {
  const rows = (
    await db.query(
      `SELECT r.rolname AS name
         FROM pg_shdepend s JOIN pg_roles r ON r.oid = s.refobjid
        WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('o', 'a', 'i')
          AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       UNION
       SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()
       UNION
       SELECT pg_get_userbyid(a.grantee) FROM pg_database d, aclexplode(d.datacl) a
        WHERE d.datname = current_database() AND a.grantee <> 0
       UNION -- owners pg_shdepend leaves out: the bootstrap superuser's objects are not recorded there
       SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
       UNION
       SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
       ORDER BY 1`,
    )
  ).rows as { name: string }[];
  return rows.map((r) => r.name);
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Runs a program; stdout/stdin may be files; rejects with its stderr. Passwords only ever go in `env`.
 * Resolves only once the output file is fully written (the child's exit alone does not mean that).
 */
export async function runTool(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; stdoutFile?: string; stdinFile?: string; hint?: string } = {},
): Promise<void> {
  const child = spawn(command, args, {
    env: { ...process.env, ...options.env },
    stdio: [options.stdinFile ? "pipe" : "ignore", options.stdoutFile ? "pipe" : "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const streams: Promise<void>[] = [];
  if (options.stdoutFile && child.stdout) streams.push(pipeline(child.stdout, fs.createWriteStream(options.stdoutFile, { mode: 0o600 })));
  if (options.stdinFile && child.stdin) streams.push(pipeline(fs.createReadStream(options.stdinFile), child.stdin));
  const [exited, ...piped] = await Promise.allSettled([exit, ...streams]);
  if (exited?.status === "rejected") {
    const err = exited.reason as NodeJS.ErrnoException;
    throw new Error(
      err.code === "ENOENT"
        ? `\`${command}\` is not on PATH. ${clientInstallAdvice(undefined).replace("Install the PostgreSQL client", "Install the PostgreSQL client of the server's major version or newer")}`
        : `${command} failed to start: ${err.message}`,
    );
  }
  const code = exited?.status === "fulfilled" ? exited.value : null;
  if (code !== 0) {
    // A failing child also breaks its pipes (EPIPE); its exit code and stderr say why, so report those.
    const serverMajor = /server version: (\d+)/.exec(stderr)?.[1];
    const hint = /version mismatch|aborting because of server version/.test(stderr)
      ? ` ${clientInstallAdvice(serverMajor ? Number(serverMajor) : undefined)} (A docker-mode stack runs the container's own pg_dump instead.)`
      : (options.hint ?? "");
    throw new Error(`${command} exited with code ${code}: ${stderr.trim()}${hint}`);
  }
  const broken = piped.find((p) => p.status === "rejected");
  if (broken?.status === "rejected") throw new Error(`${command}: copying its ${options.stdoutFile ? "output" : "input"} failed: ${(broken.reason as Error).message}`);
}

/** Writes a custom-format dump of the connected database to `file`, reading `snapshot` when given. */
export type DumpRunner = (request: { file: string; snapshot?: string }) => Promise<void>;

/** libpq environment for a child: the password, sslmode and CA (as a private file) travel here, never in argv. */
export function libpqEnv(info: ConnectionInfo): NodeJS.ProcessEnv {
  return {
    PGPASSWORD: info.password,
    PGSSLMODE: info.sslmode,
    PGCONNECT_TIMEOUT: "10",
    ...(info.sslrootcert ? { PGSSLROOTCERT: rootCertFile(info.sslrootcert) } : {}),
  };
}

/**
 * pg_dump on this machine against `info` (external mode, or `--url`). The dump comes out on stdout into a file
 * we create 0600: `--file` would let pg_dump create it with the umask's mode (0644), readable while it is written.
 */
export function localPgDump(info: ConnectionInfo, pgDump = "pg_dump"): DumpRunner {
  return ({ file, snapshot }) =>
    runTool(
      pgDump,
      [
        "--format=custom",
        `--host=${info.host}`,
        `--port=${info.port}`,
        `--username=${info.user}`,
        `--dbname=${info.database}`,
        "--no-password",
        ...(snapshot ? [`--snapshot=${snapshot}`] : []),
      ],
      { env: libpqEnv(info), stdoutFile: file },
    );
}

/**
 * pg_dump inside the TimescaleDB container (docker mode): the client always matches the server. `-e PGPASSWORD`
 * without a value makes docker copy it from the docker client's environment, so it never appears in argv.
 */
export function dockerPgDump(container: string, user: string, database: string, password = ""): DumpRunner {
  return ({ file, snapshot }) =>
    runTool(
      "docker",
      [
        // Inside the container the Unix socket needs no password (the image's local trust); pass one if given.
        "exec", ...(password ? ["-e", "PGPASSWORD"] : []), container,
        "pg_dump", "--format=custom", `--username=${user}`, `--dbname=${database}`, "--no-password",
        ...(snapshot ? [`--snapshot=${snapshot}`] : []),
      ],
      { env: { PGPASSWORD: password }, stdoutFile: file },
    );
}

/**
 * Creates the backup directory 0700 when it does not exist: dumps hold all the data, and their names and
 * manifests say what is in the database. An existing directory is left as it is (issue 23.4: narrowing one
 * reached through a symbolic link locked its other users out of a shared directory); the dumps and manifests
 * in it are 0600 either way.
 */
export function privateDirectory(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

function stamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(".", "");
}

/** Options of {@link createBackup}. */
export interface BackupOptions {
  /** Where row counts are read and the snapshot exported (any role that can read every table). */
  connection: ConnectionInfo;
  dump: DumpRunner;
  backupDir: string;
  /** Backups of this database kept after this one is written (`tsdb:backupRetain`), at least 1. */
  retain: number;
  /** The stack the backup is taken for (recorded in the manifest; pruning stays within it). */
  stack?: string;
  now?: Date;
}

/** Result of a backup: the files written and the backups pruned. */
export interface BackupResult {
  manifest: BackupManifest;
  dumpPath: string;
  manifestPath: string;
  pruned: string[];
}

/**
 * Dumps the database and writes its manifest, then prunes old backups. Counts and dump share one exported
 * snapshot (REPEATABLE READ + pg_dump --snapshot), so the counts describe exactly what the dump holds.
 */
export async function createBackup(options: BackupOptions): Promise<BackupResult> {
  if (!Number.isInteger(options.retain) || options.retain < 1) {
    throw new Error(`[tsdb:backupRetain] must be an integer of at least 1, got ${options.retain}.`);
  }
  privateDirectory(options.backupDir);
  const now = options.now ?? new Date();
  const base = `${options.connection.database}-${stamp(now)}`;
  const dumpPath = path.join(options.backupDir, `${base}.dump`);
  const partial = `${dumpPath}.partial`;
  const manifestPath = path.join(options.backupDir, `${base}.manifest.json`);

  const facts = await withClient(clientConfig(options.connection), async (client) => {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    try {
      const snapshot = ((await client.query("SELECT pg_export_snapshot() AS s")).rows[0] as { s: string }).s;
      const server = await readServerInfo(client);
      const access = await readDatabaseAccess(client);
      const rowCounts = await countRows(client);
      const roles = await readReferencedRoles(client);
      const systemIdentifier = await readSystemIdentifier(client);
      await options.dump({ file: partial, snapshot });
      return { server, access, rowCounts, roles, systemIdentifier };
    } finally {
      await client.query("COMMIT").catch(() => undefined);
    }
  }).catch((err: unknown) => {
    fs.rmSync(partial, { force: true });
    throw err;
  });

  fs.renameSync(partial, dumpPath);
  const manifest: BackupManifest = {
    formatVersion: 1,
    createdAt: now.toISOString(),
    database: options.connection.database,
    owner: facts.access.owner,
    databaseGrants: facts.access.grants,
    dumpFile: path.basename(dumpPath),
    format: "custom",
    sizeBytes: fs.statSync(dumpPath).size,
    sha256: await sha256File(dumpPath),
    serverVersion: facts.server.serverVersion,
    postgresMajor: facts.server.postgresMajor,
    timescaledbVersion: facts.server.timescaledbVersion,
    rowCounts: facts.rowCounts,
    roles: facts.roles,
    source: {
      systemIdentifier: facts.systemIdentifier,
      address: `${options.connection.host.includes(":") ? `[${options.connection.host}]` : options.connection.host}:${options.connection.port}`,
      stack: options.stack ?? null,
    },
    sequence: nextSequence(options.backupDir),
  };
  writeManifest(manifestPath, manifest);
  const pruned = pruneBackups(options.backupDir, { manifestPath, manifest }, options.retain);
  return { manifest, dumpPath, manifestPath, pruned };
}

/** Writes a manifest (mode 0600 like the dump: row counts and names are not for everyone). */
export function writeManifest(file: string, manifest: BackupManifest): void {
  fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
}

/** Reads and validates a manifest; errors name the file and the field at fault. */
export function readManifest(file: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`Cannot read backup manifest ${file}: ${(err as Error).message}`);
  }
  const parsed = backupManifestSchema.safeParse(value);
  if (!parsed.success) {
    throw new Error(`Backup manifest ${file} is invalid: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return parsed.data;
}

/** The server's system identifier (`pg_control_system()`), or null where the role may not call it. */
async function readSystemIdentifier(db: Queryable): Promise<string | null> {
  const row = (
    await db.query(
      `SELECT CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
                   THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END AS id`,
    )
  ).rows[0] as { id: string | null };
  return row.id;
}

/** A backup found in a directory. */
export interface FoundBackup {
  manifestPath: string;
  manifest: BackupManifest;
}

/** Every valid manifest in `backupDir` (of any database), newest first: by sequence, then time, then name. */
function allBackups(backupDir: string): FoundBackup[] {
  if (!fs.existsSync(backupDir)) return [];
  return fs
    .readdirSync(backupDir)
    .filter((f) => f.endsWith(".manifest.json"))
    .flatMap((f) => {
      const manifestPath = path.join(backupDir, f);
      try {
        return [{ manifestPath, manifest: readManifest(manifestPath) }];
      } catch {
        return [];
      }
    })
    .sort(
      (a, b) =>
        (b.manifest.sequence ?? -1) - (a.manifest.sequence ?? -1) ||
        b.manifest.createdAt.localeCompare(a.manifest.createdAt) ||
        b.manifestPath.localeCompare(a.manifestPath),
    );
}

/** One more than the highest sequence in `backupDir` (0 for the first). */
function nextSequence(backupDir: string): number {
  return allBackups(backupDir).reduce((max, b) => Math.max(max, (b.manifest.sequence ?? -1) + 1), 0);
}

/** One line naming where a backup came from: `server <id> (<address>), stack <stack>`. */
export function describeSource(manifest: BackupManifest): string {
  const s = manifest.source;
  if (!s) return "an unrecorded server (manifest written before backups recorded it)";
  return `server ${s.systemIdentifier ?? "?"} (${s.address})${s.stack ? `, stack ${s.stack}` : ""}`;
}

/** True when two backups come from the same server and stack (unrecorded sources match nothing). */
export function sameSource(a: BackupManifest, b: BackupManifest): boolean {
  if (!a.source || !b.source) return false;
  const server = a.source.systemIdentifier !== null && b.source.systemIdentifier !== null
    ? a.source.systemIdentifier === b.source.systemIdentifier
    : a.source.address === b.source.address;
  return server && a.source.stack === b.source.stack;
}

/** Manifests of `database` in `backupDir`, newest first (by sequence). Files that are not our manifests are ignored. */
export function listBackups(backupDir: string, database: string): FoundBackup[] {
  return allBackups(backupDir).filter((b) => b.manifest.database === database);
}

/**
 * Deletes all but the newest `retain` backups of the same database, server and stack as `kept`, the backup just
 * written, which is never deleted whatever the others' dates say. Returns the dumps removed.
 */
export function pruneBackups(backupDir: string, kept: FoundBackup, retain: number): string[] {
  const removed: string[] = [];
  const others = listBackups(backupDir, kept.manifest.database).filter(
    (b) => path.resolve(b.manifestPath) !== path.resolve(kept.manifestPath) && sameSource(b.manifest, kept.manifest),
  );
  for (const { manifestPath, manifest } of others.slice(retain - 1)) {
    const dump = path.join(backupDir, manifest.dumpFile);
    fs.rmSync(dump, { force: true });
    fs.rmSync(manifestPath, { force: true });
    removed.push(dump);
  }
  return removed;
}
