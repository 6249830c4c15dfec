/**
 * What only the TimescaleDB extension's owner (the admin) can do, right after the extension exists: update it
 * to the version the server's image brings, and take the job API away from PUBLIC (issue 23 item 2, issue 20
 * defect 8). Called by the Pulumi hook (providers/ExtensionAdminProvider.ts), by `tsdb db roles`
 * (lib/ops/ownServerAccess.ts) and by tests, so each path does the same.
 *
 * Serialized by value into the hook: no runtime imports; `pg` reaches it as a connected client.
 */
import type { Client } from "pg";

/**
 * TimescaleDB's job API, which it creates executable by PUBLIC: any role that could connect (read-only included)
 * could schedule jobs, exhaust the background workers, and leave jobs in the catalog and in every backup. On
 * TimescaleDB 2.23 these are add_job(regproc, interval, jsonb, timestamptz, boolean, regproc, boolean, text,
 * text), alter_job(integer, ...14 arguments), delete_job(integer) and PROCEDURE run_job(integer); every
 * overload the installed version has is restricted, read from the catalog, so an update that changes a
 * signature is covered too. The policy functions (add_retention_policy, add_columnstore_policy,
 * add_continuous_aggregate_policy, remove_*) stay PUBLIC: they check that the caller owns the hypertable and
 * insert the job in C without calling add_job (test/engines/timescaledb-job-api.test.ts shows both).
 */
export const JOB_API = ["add_job", "alter_job", "delete_job", "run_job"] as const;

/** The one statement that updates the extension; it must be the first of its session (see updateExtension). */
export const UPDATE_EXTENSION_SQL = "ALTER EXTENSION timescaledb UPDATE";

/**
 * Startup options for the session that reads the versions: TimescaleDB's loader then does not load the installed
 * version's library. After an image bump that library may be gone (the official images keep old ones, a package
 * upgrade may not), and every statement of such a session would fail with "could not access file
 * $libdir/timescaledb-<old>" before the update could run.
 */
export const READ_WITHOUT_LOADING = "-c timescaledb.disable_load=on";

/** Opens a new session to the database, sending nothing but the startup packet (with `options` when given). */
export type Connect = (options?: string) => Promise<Client>;

/** The extension's installed version in the connected database and the newest the server has (its image's). */
export interface ExtensionVersions {
  /** pg_extension.extversion, or null when the extension is not created in this database. */
  installed: string | null;
  /** pg_available_extensions.default_version, or null when the server has no TimescaleDB. */
  available: string | null;
}

/** What {@link administerTimescaleDb} did. */
export interface TimescaleAdminResult {
  /** Versions before, and after the update (equal when none was needed). */
  before: ExtensionVersions;
  after: ExtensionVersions;
  /** ALTER EXTENSION timescaledb UPDATE ran. */
  updated: boolean;
  /**
   * Set when the server has a newer version but the admin may not update it (no superuser, not the extension's
   * owner: a managed service, which updates its extension itself): says so, and nothing was sent.
   */
  updateLeft?: string;
  /** How the job API stands afterwards (see {@link JobApiResult}). */
  jobApi: JobApiResult;
}

/**
 * `restricted`: PUBLIC has no EXECUTE on any routine of {@link JOB_API}, the owner role has it. `not-owner`: the
 * admin neither is a superuser nor owns the extension (a managed service's), so nothing was changed; `detail`
 * says whom to ask.
 */
export type JobApiResult = { status: "restricted"; routines: string[] } | { status: "not-owner"; detail: string };

/** Reads both versions in one query. */
export async function readExtensionVersions(client: Client): Promise<ExtensionVersions> {
  const { rows } = await client.query<ExtensionVersions>(
    `SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'timescaledb') AS installed,
            (SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb') AS available`,
  );
  return { installed: rows[0]?.installed ?? null, available: rows[0]?.available ?? null };
}

/**
 * Orders TimescaleDB versions: numeric parts compared as numbers (2.9.0 < 2.10.0), and a pre-release
 * (`2.24.0-rc1`, `2.24.0-dev`) before its release. Throws on text that is no version.
 */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.]+))?$/.exec(v.trim());
    if (!m) throw new Error(`not a TimescaleDB version: ${JSON.stringify(v)}`);
    return { parts: m[1]!.split(".").map(Number), pre: m[2] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.parts.length, y.parts.length); i++) {
    const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/**
 * Whether the extension in `database` needs ALTER EXTENSION UPDATE: true when the server has a newer version than
 * the installed one. Throws one line when it cannot be run at all: not created, no TimescaleDB on the server, or
 * a server older than the database's extension (an image downgrade, which TimescaleDB cannot load).
 */
export function updateNeeded(versions: ExtensionVersions, database: string): boolean {
  const { installed, available } = versions;
  if (installed === null) throw new Error(`the timescaledb extension is not created in database ${database}; create it first (CREATE EXTENSION timescaledb, as the admin)`);
  if (available === null) throw new Error(`the server has no TimescaleDB (pg_available_extensions lists no timescaledb), but database ${database} uses version ${installed}; run it on a TimescaleDB image`);
  const order = compareVersions(available, installed);
  if (order < 0) {
    throw new Error(`database ${database} has TimescaleDB ${installed}, newer than the server's ${available}: an extension cannot be downgraded; use an image with TimescaleDB ${installed} or newer`);
  }
  return order > 0;
}

/**
 * Runs ALTER EXTENSION timescaledb UPDATE as the first statement of the session `connect` opens (TimescaleDB's
 * docs: `psql -X`, then the update first): any earlier statement in that database loads the old version's
 * library, and the update then fails with "cannot be updated after the old version has already been loaded".
 * `connect` must send nothing itself (no `SELECT 1` probe, no psqlrc).
 */
export async function updateExtension(connect: Connect, database: string, from: string, to: string): Promise<void> {
  const client = await connect();
  try {
    await client.query(UPDATE_EXTENSION_SQL);
  } catch (err) {
    throw new Error(`updating TimescaleDB in database ${database} from ${from} to ${to} failed: ${oneLine((err as Error).message)}`, { cause: undefined });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Takes EXECUTE on the job API from PUBLIC and gives it to `ownerRole` (`<db>_owner`, which migrations act as),
 * in one transaction. A no-op, reported as `not-owner`, when the connected role can change neither (it is no
 * superuser and does not own the extension): PostgreSQL would only warn, and the caller says so.
 */
/**
 * Whether the connected role may alter the timescaledb extension (a superuser, or a member of its owner), and who
 * owns it; null when the extension is not created in this database.
 */
export async function extensionAdminRights(client: Client): Promise<{ allowed: boolean; owner: string } | null> {
  const { rows } = await client.query<{ allowed: boolean; owner: string }>(
    `SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false) OR pg_catalog.pg_has_role(current_user, e.extowner, 'USAGE') AS allowed,
            pg_catalog.pg_get_userbyid(e.extowner)::text AS owner
       FROM pg_catalog.pg_extension e WHERE e.extname = 'timescaledb'`,
  );
  return rows[0] ?? null;
}

export async function restrictJobApi(client: Client, ownerRole: string): Promise<JobApiResult> {
  const rights = await extensionAdminRights(client);
  if (rights === null) throw new Error("the timescaledb extension is not created in this database; create it first (CREATE EXTENSION timescaledb, as the admin)");
  if (!rights.allowed) {
    return { status: "not-owner", detail: `only the timescaledb extension's owner (${rights.owner}) or a superuser can take the job API (${JOB_API.join(", ")}) from PUBLIC; ask your DBA or service to run REVOKE EXECUTE on them FROM PUBLIC and GRANT it to ${ownerRole}` };
  }
  // Every overload the extension installed, schema-qualified and quoted by the server itself.
  const { rows } = await client.query<{ routine: string }>(
    `SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS routine
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
       JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'timescaledb'
      WHERE p.proname = ANY($1::text[]) AND n.oid = e.extnamespace
      ORDER BY 1`,
    [[...JOB_API]],
  );
  const owner = client.escapeIdentifier(ownerRole);
  await client.query("BEGIN");
  try {
    for (const { routine } of rows) {
      await client.query(`REVOKE EXECUTE ON ROUTINE ${routine} FROM PUBLIC`);
      await client.query(`GRANT EXECUTE ON ROUTINE ${routine} TO ${owner}`);
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw new Error(`taking TimescaleDB's job API from PUBLIC for ${ownerRole} failed: ${oneLine((err as Error).message)}`, { cause: undefined });
  }
  return { status: "restricted", routines: rows.map((r) => r.routine) };
}

/**
 * The admin's work after the extension exists, on sessions `connect` opens to the database (each closed): read
 * the versions (without loading the installed library, see READ_WITHOUT_LOADING); when the server has a newer one, update on a session of its own (first statement); then
 * restrict the job API to `ownerRole` (after the update, which may add routines with PUBLIC's default) and read
 * the versions again.
 */
export async function administerTimescaleDb(connect: Connect, database: string, ownerRole: string): Promise<TimescaleAdminResult> {
  const { before, rights } = await onSession(
    () => connect(READ_WITHOUT_LOADING),
    async (client) => ({ before: await readExtensionVersions(client), rights: await extensionAdminRights(client) }),
  );
  const needed = updateNeeded(before, database);
  const updated = needed && rights?.allowed === true;
  const updateLeft = needed && !updated
    ? `TimescaleDB ${before.available} is available but database ${database} has ${before.installed}, and only the extension's owner (${rights?.owner}) or a superuser can update it`
    : undefined;
  if (updated) await updateExtension(connect, database, before.installed!, before.available!);
  return onSession(connect, async (client) => {
    const jobApi = await restrictJobApi(client, ownerRole);
    return { before, after: await readExtensionVersions(client), updated, ...(updateLeft ? { updateLeft } : {}), jobApi };
  });
}

async function onSession<T>(connect: () => Promise<Client>, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
