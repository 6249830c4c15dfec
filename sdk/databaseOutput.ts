/**
 * The `database` stack output: the one definition of its shape. index.ts exports it (typed against
 * {@link DatabaseOutputInputs}), the CLIs read it (lib/ops/stackOutputs.ts, `.env` export) and other Pulumi
 * programs read it (sdk/TsdbStackReference.ts), all through {@link databaseOutputProblems}.
 *
 * No imports except Pulumi's types, so another project can vendor sdk/ as it is.
 */
import type * as pulumi from "@pulumi/pulumi";

/** Login roles the stack exports URLs for. */
export const TSDB_ROLES = ["migrator", "app", "readonly"] as const;
/** One of {@link TSDB_ROLES}. */
export type TsdbRole = (typeof TSDB_ROLES)[number];

/** Image and versions the server runs. */
export interface TsdbVersions {
  /** The TimescaleDB image in docker mode; null for an external server. */
  image: string | null;
  postgresMajor: number;
  /** null when TimescaleDB is off (vanilla PostgreSQL) or its version is unknown. */
  timescaledb: string | null;
}

/** A host and port (a connection pooler or a read replica). */
export interface TsdbEndpoint {
  host: string;
  port: number;
}

/** The `database` output of a tsdb stack. Everything but `urls` is plain; `urls` carries passwords. */
export interface TsdbDatabaseOutput {
  mode: "docker" | "external";
  /** Host other apps on this machine connect to (bare IPv6, no brackets). */
  host: string;
  port: number;
  database: string;
  /** libpq sslmode clients should use. */
  sslmode: string;
  /** Login role name per role. */
  users: Record<TsdbRole, string>;
  /**
   * `postgresql://` URL per role, with the password (secret); IPv6 hosts in brackets. app and readonly go
   * through the pooler when the stack has one (migrator always direct); `replica` is the read-only role on the
   * read replica, only when the stack has one.
   */
  urls: Record<TsdbRole, string> & { replica?: string };
  /** External mode: the connection pooler (PgBouncer, transaction mode), or null; absent on older stacks. */
  pooler?: TsdbEndpoint | null;
  /** External mode: the read replica, or null; absent on older stacks. */
  replica?: TsdbEndpoint | null;
  /** pgAdmin's URL, only when the stack runs pgAdmin. */
  pgadminUrl?: string;
  versions: TsdbVersions;
}

/** Every field of {@link TsdbDatabaseOutput}; anything else in an output is not part of the contract. */
export const DATABASE_OUTPUT_FIELDS = ["mode", "host", "port", "database", "sslmode", "users", "urls", "pooler", "replica", "pgadminUrl", "versions"] as const satisfies readonly (keyof TsdbDatabaseOutput)[];

/** A value whose fields (at any depth) may still be Outputs, as a Pulumi program exports it. */
export type DeepInput<T> = T extends object ? pulumi.Input<T> | { [K in keyof T]: DeepInput<T[K]> } : pulumi.Input<T>;

/** What index.ts exports as `database`. */
export type DatabaseOutputInputs = { [K in keyof TsdbDatabaseOutput]: DeepInput<TsdbDatabaseOutput[K]> };

const isString = (v: unknown): v is string => typeof v === "string" && v !== "";
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function isPostgresUrl(v: unknown): boolean {
  if (typeof v !== "string") return false;
  try {
    const u = new URL(v);
    return u.protocol === "postgresql:" || u.protocol === "postgres:";
  } catch {
    return false;
  }
}

/**
 * Every way `value` differs from {@link TsdbDatabaseOutput}, each as `<path> (<what is expected>)`,
 * e.g. `urls.app (a postgresql:// URL)`; empty when it matches.
 */
export function databaseOutputProblems(value: unknown): string[] {
  if (!isObject(value)) return ["database (an object)"];
  const problems: string[] = [];
  const v = value;
  for (const field of Object.keys(v)) {
    if (!(DATABASE_OUTPUT_FIELDS as readonly string[]).includes(field)) problems.push(`${field} (not part of the contract: ${DATABASE_OUTPUT_FIELDS.join(", ")})`);
  }
  if (v.mode !== "docker" && v.mode !== "external") problems.push('mode ("docker" or "external")');
  if (!isString(v.host)) problems.push("host (string)");
  if (typeof v.port !== "number" || !Number.isInteger(v.port) || v.port < 1 || v.port > 65535) problems.push("port (number)");
  if (!isString(v.database)) problems.push("database (string)");
  if (!isString(v.sslmode)) problems.push("sslmode (string)");
  for (const group of ["users", "urls"] as const) {
    const entries = v[group];
    if (!isObject(entries)) {
      problems.push(`${group} (an object with ${TSDB_ROLES.join(", ")})`);
      continue;
    }
    for (const role of TSDB_ROLES) {
      if (group === "users" && !isString(entries[role])) problems.push(`users.${role} (string)`);
      if (group === "urls" && !isPostgresUrl(entries[role])) problems.push(`urls.${role} (a postgresql:// URL)`);
    }
    if (group === "urls" && entries.replica !== undefined && !isPostgresUrl(entries.replica)) problems.push("urls.replica (a postgresql:// URL, or absent)");
  }
  for (const field of ["pooler", "replica"] as const) {
    const endpoint = v[field];
    if (endpoint === undefined || endpoint === null) continue;
    if (!isObject(endpoint) || !isString(endpoint.host) || typeof endpoint.port !== "number") problems.push(`${field} ({ host, port }, null or absent)`);
  }
  if (v.pgadminUrl !== undefined && !isString(v.pgadminUrl)) problems.push("pgadminUrl (string, or absent)");
  const versions = v.versions;
  if (!isObject(versions)) problems.push("versions (an object)");
  else {
    if (versions.image !== null && !isString(versions.image)) problems.push("versions.image (string or null)");
    if (typeof versions.postgresMajor !== "number") problems.push("versions.postgresMajor (number)");
    if (versions.timescaledb !== null && !isString(versions.timescaledb)) problems.push("versions.timescaledb (string or null)");
  }
  return problems;
}

/** `value` as a {@link TsdbDatabaseOutput}; otherwise an error naming the stack and every field at fault. */
export function validateDatabaseOutput(value: unknown, stack: string): TsdbDatabaseOutput {
  const problems = databaseOutputProblems(value);
  if (problems.length > 0) {
    throw new Error(`Stack ${stack}: output "database" lacks ${problems.join(", ")}; is it a tsdb stack, deployed with \`pulumi up\`?`);
  }
  return value as TsdbDatabaseOutput;
}
