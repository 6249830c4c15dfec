/**
 * All `pg` access goes through these helpers (after node-postgres and graphile-migrate): one client per
 * unit of work, always closed; transactions that roll back on any error; session advisory locks that are
 * always released. `pg` is loaded lazily so that modules importing this one can be captured by Pulumi's
 * dynamic-provider serializer without dragging the driver into the closure.
 */
import type { Client, ClientConfig } from "pg";
import type { ConnectionInfo } from "./connection";

// The connection contract and every URL (IPv6 in brackets) are defined once, in lib/connection.ts. Type-only
// here: this module is captured by value into the migrations hook and should not drag more modules along.
export type { ConnectionInfo } from "./connection";

/** Where to connect: a `postgresql://` URL or node-postgres client settings. */
export type Connection = string | ClientConfig;

/** node-postgres settings for a `ConnectionInfo`, mapping libpq's sslmode to `ssl`. */
export function clientConfig(info: ConnectionInfo, overrides: Partial<ClientConfig> = {}): ClientConfig {
  const ssl =
    info.sslmode === "disable" || info.sslmode === "allow" || info.sslmode === "prefer"
      ? false
      : { rejectUnauthorized: info.sslmode === "verify-ca" || info.sslmode === "verify-full" };
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

/** Opens one client, runs `fn`, and always closes the client. */
export async function withClient<T>(connection: Connection, fn: (client: Client) => Promise<T>): Promise<T> {
  const pg = (await import("pg")).default;
  const config: ClientConfig = typeof connection === "string" ? { connectionString: connection } : connection;
  const client = new pg.Client({ application_name: "tsdb-stack", ...config });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
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
 * holds it. The lock is released even when `fn` throws.
 */
export async function withAdvisoryLock<T>(client: Client, key: bigint, fn: () => Promise<T>): Promise<T> {
  await client.query("SELECT pg_advisory_lock($1::bigint)", [key.toString()]);
  try {
    return await fn();
  } finally {
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [key.toString()]).catch(() => undefined);
  }
}
