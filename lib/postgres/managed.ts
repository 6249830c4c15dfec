/**
 * Managed services: what the stack needs to treat Timescale Cloud, Azure Database for PostgreSQL
 * or a DBA-run cluster like its own container. The URLs other apps get (app and read-only through a pooler
 * when there is one, read-only on a replica when there is one; migrations always direct) and the CA
 * certificate a setting names. See docs/OPERATIONS.md, "Outgrowing one machine".
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type ConnectionInfo, connectionUrl, connectionWith, withSslRootCert } from "./connectionInfo";
import { pemText } from "./tls";

/** A host and port to connect to. */
export interface Endpoint {
  host: string;
  port: number;
}

/** The login roles' direct connections, and where the pooler and replica are, if any. */
export interface DatabaseUrlsInput {
  migrator: ConnectionInfo;
  app: ConnectionInfo;
  readonly: ConnectionInfo;
  /** PgBouncer (transaction mode) in front of the server: the app and read-only URLs go through it. */
  pooler?: Endpoint;
  /** A streaming replica: the read-only role gets a `replica` URL on it. */
  replica?: Endpoint;
  /** The CA certificate file, for `sslrootcert` in the URLs (psql and libpq-style drivers read a file). */
  sslrootcertFile?: string;
}

/** The `urls` of the `database` output: app/readonly through the pooler, migrator always direct. */
export interface DatabaseUrls {
  migrator: string;
  app: string;
  readonly: string;
  /** The read-only role on the replica (only with a replica). */
  replica?: string;
}

/** URLs for other apps (see {@link DatabaseUrls}); `sslrootcert` names the CA file when one is set. */
export function databaseUrls(input: DatabaseUrlsInput): DatabaseUrls {
  const url = (info: ConnectionInfo, at?: Endpoint): string => withSslRootCert(connectionUrl(connectionWith(info, at)), input.sslrootcertFile);
  return {
    migrator: url(input.migrator),
    app: url(input.app, input.pooler),
    readonly: url(input.readonly, input.pooler),
    ...(input.replica ? { replica: url(input.readonly, input.replica) } : {}),
  };
}

/** The CA certificate as PEM (for the hooks) and as a file (for the provider, psql and URLs). */
export interface RootCert {
  pem: string;
  file: string;
}

/**
 * Reads `tsdb:sslRootCert`: a PEM file path (relative to `projectDir`) or the PEM text itself. Given text, it
 * is written to `.tsdb/tls/<stack>-root.crt` (mode 0600 from creation) because the postgresql provider and
 * psql take a file. Undefined when the setting is empty. Errors name the setting.
 */
export function resolveRootCert(setting: string | undefined, projectDir: string, stack: string): RootCert | undefined {
  if (!setting) return undefined;
  const inline = pemText(setting);
  if (inline) {
    const dir = path.join(projectDir, ".tsdb", "tls");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${stack}-root.crt`);
    fs.writeFileSync(file, inline, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return { pem: inline, file };
  }
  const file = path.resolve(projectDir, setting);
  let pem: string;
  try {
    pem = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`[tsdb:sslRootCert] cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); set it to the CA certificate file or its PEM text.`, {
      cause: err,
    });
  }
  if (!pemText(pem)) throw new Error(`[tsdb:sslRootCert] ${file} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line).`);
  return { pem, file };
}

/** What `pulumi up` will ask of the admin role on an external server. */
export interface AdminNeeds {
  database: string;
  /** tsdb:existingDatabase: the database is used, not created. */
  existingDatabase: boolean;
  /** tsdb:timescaledb: the extension must exist in the database, or be created. */
  timescaledb: boolean;
}

/** Anything `client.query` (pg's Client, a test engine). */
interface Queryable {
  query<R extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * What the connected admin lacks for `pulumi up`, one line each naming the privilege and why (empty when it has
 * enough). Managed services give CREATEROLE without SUPERUSER or CREATEDB, which is enough for an existing
 * database with the extension installed; the checks say what to set or ask for otherwise.
 */
export async function adminPrivilegeProblems(client: Queryable, needs: AdminNeeds): Promise<string[]> {
  const { rows } = await client.query<{ user: string; super: boolean; createrole: boolean; createdb: boolean }>(
    `SELECT current_user AS user, rolsuper AS super, rolcreaterole AS createrole, rolcreatedb AS createdb
       FROM pg_roles WHERE rolname = current_user`,
  );
  const me = rows[0]!;
  if (me.super) return [];
  const problems: string[] = [];
  if (!me.createrole) {
    problems.push(`${me.user} lacks CREATEROLE, which creating the ${needs.database}_owner/_migrator/_app/_readonly roles needs; use the service's admin role (e.g. tsdbadmin) or grant it CREATEROLE.`);
  }
  if (!needs.existingDatabase && !me.createdb) {
    problems.push(`${me.user} lacks CREATEDB, which creating database ${needs.database} needs; managed services give one database: set tsdb:existingDatabase true and tsdb:database to its name (e.g. tsdb).`);
  }
  if (needs.timescaledb) {
    const installed = needs.existingDatabase
      ? await client.query<{ present: boolean }>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS present")
      : { rows: [{ present: false }] };
    if (!installed.rows[0]?.present) {
      problems.push(
        `${me.user} is not a superuser, which CREATE EXTENSION timescaledb needs (it is not a trusted extension); have the service or your DBA install it in ${needs.database}, or set tsdb:timescaledb false.`,
      );
    }
  }
  return problems;
}

/**
 * Throws one line when the admin can neither create nor drop databases, which `action` needs (restore drops
 * and recreates the database; a managed service's admin has no CREATEDB).
 */
export async function requireCreatedb(client: Queryable, action: string): Promise<void> {
  const { rows } = await client.query<{ user: string; ok: boolean }>(
    "SELECT current_user AS user, rolsuper OR rolcreatedb AS ok FROM pg_roles WHERE rolname = current_user",
  );
  if (!rows[0]?.ok) {
    throw new Error(
      `${action} needs CREATEDB (it creates the database anew), which ${rows[0]?.user ?? "the admin"} lacks, as on managed services; restore there with the service's own backups (point-in-time recovery), or give --url an admin with CREATEDB.`,
    );
  }
}
