/**
 * Managed services (issue 12): what the stack needs to treat Timescale Cloud, Azure Database for PostgreSQL
 * or a DBA-run cluster like its own container. The URLs other apps get (app and read-only through a pooler
 * when there is one, read-only on a replica when there is one; migrations always direct) and the CA
 * certificate a setting names. See docs/OPERATIONS.md, "Outgrowing one machine".
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type ConnectionInfo, connectionUrl } from "./db";
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
  const url = (info: ConnectionInfo, at?: Endpoint): string => {
    const base = connectionUrl({ ...info, ...(at ?? {}) });
    return input.sslrootcertFile && info.sslmode !== "disable" ? `${base}&sslrootcert=${encodeURIComponent(input.sslrootcertFile)}` : base;
  };
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
