/**
 * All `pg` access goes through these helpers (after node-postgres and graphile-migrate): one client per
 * unit of work, always closed; transactions that roll back on any error; session advisory locks that are
 * always released. `pg` is loaded lazily so that modules importing this one can be captured by Pulumi's
 * dynamic-provider serializer without dragging the driver into the closure.
 */
import type { Client, ClientConfig } from "pg";
import { assertDirectSession } from "./pooler";
import { explainTlsError, sslOptions, urlClientConfig } from "./tls";

/** Where to connect: a `postgresql://` URL or node-postgres client settings. */
export type Connection = string | ClientConfig;

/** Connection settings as stored in stack outputs and passed to hooks. */
export interface ConnectionInfo {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** libpq sslmode: disable | allow | prefer | require | verify-ca | verify-full */
  sslmode: string;
  /** PEM of the CA that issued the server's certificate, for sslmode verify-ca / verify-full (lib/tls.ts). */
  sslrootcert?: string;
}

/** node-postgres settings for a `ConnectionInfo`, mapping libpq's sslmode (and the CA) to `ssl` (lib/tls.ts). */
export function clientConfig(info: ConnectionInfo, overrides: Partial<ClientConfig> = {}): ClientConfig {
  const ssl = sslOptions({ sslmode: info.sslmode, sslrootcert: info.sslrootcert, host: info.host });
  return {
    host: info.host,
    port: info.port,
    database: info.database,
    user: info.user,
    password: info.password,
    ssl,
    ...overrides,
  };
}

/** A `postgresql://` URL for a `ConnectionInfo`, with user and password percent-encoded. */
export function connectionUrl(info: ConnectionInfo): string {
  const auth = `${encodeURIComponent(info.user)}:${encodeURIComponent(info.password)}`;
  return `postgresql://${auth}@${info.host}:${info.port}/${encodeURIComponent(info.database)}?sslmode=${encodeURIComponent(info.sslmode)}`;
}

/** Opens one client, runs `fn`, and always closes the client. */
export async function withClient<T>(connection: Connection, fn: (client: Client) => Promise<T>): Promise<T> {
  const pg = (await import("pg")).default;
  const config: ClientConfig =
    typeof connection === "string"
      ? urlClientConfig(connection)
      : // A ConnectionInfo passed as settings: its sslmode means nothing to node-postgres, so map it here.
        "sslmode" in connection
        ? clientConfig(connection as ConnectionInfo)
        : connection;
  const client = new pg.Client({ application_name: "tsdb-stack", ...config });
  await connectExplained(client);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `client.connect()`, with a TLS failure (wrong CA, wrong host name) turned into one line saying so. */
export async function connectExplained(client: Client): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    const c = client as unknown as { host?: string; port?: number; ssl?: unknown };
    const caGiven = typeof c.ssl === "object" && c.ssl !== null && "ca" in c.ssl;
    throw explainTlsError(err, `${c.host}:${c.port}`, caGiven) ?? err;
  }
}

/** Runs `fn` inside BEGIN/COMMIT on `client`; any error rolls back and is re-thrown. */
export async function withTransaction<T>(client: Client, fn: (client: Client) => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/**
 * Holds the session advisory lock `key` on `client` while `fn` runs, waiting for it if another session
 * holds it. The lock is released even when `fn` throws. Refuses a pooled connection, where a session lock
 * would not hold (lib/pooler.ts).
 */
export async function withAdvisoryLock<T>(client: Client, key: bigint, fn: () => Promise<T>): Promise<T> {
  await assertDirectSession(client, "Migrations");
  await client.query("SELECT pg_advisory_lock($1::bigint)", [key.toString()]);
  try {
    return await fn();
  } finally {
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [key.toString()]).catch(() => undefined);
  }
}
