/**
 * The stack's security model on a server of your own, without Pulumi (issue 21, item 3): the owner, migrator,
 * app and read-only roles, the database grants, schemas, grants and default privileges of lib/access.ts's plan,
 * applied by `tsdb db roles` through the admin connection, and passwords for `tsdb env --role`.
 *
 * The same plan and the same statements as components/DatabaseAccess.ts (renderAccessSql renders what the
 * postgresql provider issues), so a database set up here and one set up by `pulumi up` grant the same. Applying
 * again changes nothing but what drifted: existing roles get ALTER ROLE (their passwords only when given).
 * Passwords come from TSDB_<ROLE>_PASSWORD or are generated; they are never printed.
 */
import { randomBytes } from "node:crypto";
import type { Client } from "pg";
import { type AccessPlan, type RoleKey, accessPlan, renderAccessSql } from "../access";
import { type JobApiResult, restrictJobApi } from "../postgres/timescaleAdmin";

/** The login roles, by their part. */
export type LoginRole = Exclude<RoleKey, "owner">;
export const LOGIN_ROLES: readonly LoginRole[] = ["migrator", "app", "readonly"];

/** The variable a role's password may be given in (`TSDB_APP_PASSWORD`); never on the command line. */
export function passwordVariable(role: LoginRole): string {
  return `TSDB_${role.toUpperCase()}_PASSWORD`;
}

/**
 * A password of 32 letters and digits (as the stack's generated ones, components/DatabaseAccess.ts): about 190
 * bits, and portable in URLs and .env files without quoting.
 */
export function generatePassword(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let out = "";
  while (out.length < 32) {
    for (const byte of randomBytes(64)) {
      // 248 = 4 * 62: bytes above it would favour the first letters.
      if (byte < 248 && out.length < 32) out += alphabet[byte % 62];
    }
  }
  return out;
}

/** What `tsdb db roles` is asked for. */
export interface OwnServerAccessOptions {
  /** The connected database: the roles are `<database>_owner`, ... (the database must exist). */
  database: string;
  timescaledb: boolean;
  connectionLimits: Record<LoginRole, number>;
  /** Roles besides pg_monitor that keep CONNECT after REVOKE ALL ... FROM PUBLIC (see AccessPlanInput). */
  connectRoles: string[];
  /** Where TSDB_<ROLE>_PASSWORD are read. */
  env: NodeJS.ProcessEnv;
}

/** What was done, without any password. */
export interface OwnServerAccessResult {
  plan: AccessPlan;
  /** The timescaledb extension was created in this run. */
  createdExtension: boolean;
  created: string[];
  updated: string[];
  /** Login roles whose password was set in this run, and from where. */
  passwords: { role: string; from: "environment" | "generated" }[];
  /** TimescaleDB: the job API taken from PUBLIC for the owner, or why the admin could not (absent without TimescaleDB). */
  jobApi?: JobApiResult;
}

/**
 * Applies the access plan for `options.database` through `admin` (a superuser, or a CREATEROLE admin on
 * PostgreSQL 16+, which holds ADMIN OPTION on the roles it creates). New login roles get the password from
 * TSDB_<ROLE>_PASSWORD or a generated one (hand it out with `tsdb env --role`, which sets a fresh one); existing
 * ones keep theirs unless the variable is set. One transaction: a failure leaves nothing half done.
 */
export async function applyOwnServerAccess(admin: Client, options: OwnServerAccessOptions): Promise<OwnServerAccessResult> {
  const plan = accessPlan({
    database: options.database,
    existingDatabase: true,
    timescaledb: options.timescaledb,
    migratorConnectionLimit: options.connectionLimits.migrator,
    appConnectionLimit: options.connectionLimits.app,
    readonlyConnectionLimit: options.connectionLimits.readonly,
    connectRoles: options.connectRoles,
  });
  const { rows: me } = await admin.query<{ super: boolean; db: string }>(
    "SELECT rolsuper AS super, current_database() AS db FROM pg_roles WHERE rolname = current_user",
  );
  if (me[0]?.db !== options.database) throw new Error(`db roles: connected to database ${me[0]?.db}, not ${options.database}`);
  const missing = await admin.query<{ name: string }>("SELECT r FROM unnest($1::text[]) AS r WHERE r NOT IN (SELECT rolname FROM pg_roles)", [options.connectRoles]);
  if (missing.rows.length > 0) {
    const names = missing.rows.map((r) => Object.values(r)[0]).join(", ");
    throw new Error(`--connect-role names roles that do not exist: ${names}; create them first (a pooler's auth_query user, a monitoring role) or leave them out`);
  }
  // The extension, as DatabaseAccess creates it: TimescaleDB is not a trusted extension, so only a superuser can,
  // and migrations run as the owner afterwards could not.
  let createExtension = false;
  if (options.timescaledb) {
    const ext = await admin.query<{ installed: boolean; available: boolean }>(
      "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS installed, EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available",
    );
    const { installed, available } = ext.rows[0]!;
    if (!installed && !available) throw new Error(`TimescaleDB is not installed on this server; use one that has it, or pass --no-timescaledb for plain PostgreSQL`);
    if (!installed && me[0]?.super !== true) {
      throw new Error(`the timescaledb extension is not created in ${options.database}, and only a superuser can create it; have your DBA or the service run CREATE EXTENSION timescaledb there, or pass --no-timescaledb`);
    }
    createExtension = !installed;
  }
  const names = plan.roles.map((r) => r.name);
  const { rows } = await admin.query<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", [names]);
  const existing = new Set(rows.map((r) => r.rolname));
  const passwords: Partial<Record<LoginRole, string>> = {};
  const report: OwnServerAccessResult["passwords"] = [];
  for (const role of LOGIN_ROLES) {
    const name = `${options.database}_${role}`;
    const given = options.env[passwordVariable(role)];
    if (given) {
      passwords[role] = given;
      report.push({ role: name, from: "environment" });
    } else if (!existing.has(name)) {
      passwords[role] = generatePassword();
      report.push({ role: name, from: "generated" });
    }
  }
  const sql = renderAccessSql(plan, passwords, { adminIsSuperuser: me[0]?.super === true, existingRoles: existing });
  await admin.query("BEGIN");
  try {
    if (createExtension) await admin.query("CREATE EXTENSION IF NOT EXISTS timescaledb");
    for (const statement of [...sql.cluster, ...sql.database]) await admin.query(statement);
    await admin.query("COMMIT");
  } catch (err) {
    await admin.query("ROLLBACK").catch(() => undefined);
    // A statement may hold a password (CREATE ROLE ... PASSWORD): say which role, never the statement.
    throw new Error(`db roles: applying the access plan for ${options.database} failed: ${(err as Error).message}`, { cause: undefined });
  }
  // As the stack's admin hook does (components/ExtensionAdmin.ts): only the owner may schedule TimescaleDB jobs.
  const jobApi = options.timescaledb ? await restrictJobApi(admin, plan.owner) : undefined;
  return {
    plan,
    createdExtension: createExtension,
    created: names.filter((n) => !existing.has(n)),
    updated: names.filter((n) => existing.has(n)),
    passwords: report,
    ...(jobApi ? { jobApi } : {}),
  };
}

/**
 * Gives `<database>_<role>` a password for a .env (`tsdb env --role` on a server of your own): the one in
 * TSDB_<ROLE>_PASSWORD, else a new generated one, which replaces the old (so .env files written before for that
 * role stop working: said by the CLI). Throws when the role does not exist, naming the command that creates it.
 */
export async function issuePassword(admin: Client, database: string, role: LoginRole, env: NodeJS.ProcessEnv): Promise<{ user: string; password: string; from: "environment" | "generated" }> {
  const user = `${database}_${role}`;
  const { rows } = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [user]);
  if (rows.length === 0) throw new Error(`role ${user} does not exist; create the roles first: tsdb db roles --url <admin URL of ${database}>`);
  const given = env[passwordVariable(role)];
  const password = given || generatePassword();
  try {
    await admin.query(`ALTER ROLE ${admin.escapeIdentifier(user)} PASSWORD ${admin.escapeLiteral(password)}`);
  } catch (err) {
    throw new Error(`cannot set the password of ${user}: ${(err as Error).message}; connect as the admin that created the roles (tsdb db roles)`, { cause: undefined });
  }
  return { user, password, from: given ? "environment" : "generated" };
}
