/**
 * All `pg` access goes through these helpers (after node-postgres and graphile-migrate): one client per
 * unit of work, always closed; transactions that roll back on any error; session advisory locks that are
 * always released. `pg` is loaded lazily so that modules importing this one can be captured by Pulumi's
 * dynamic-provider serializer without dragging the driver into the closure.
 */
import type { Client, ClientConfig } from "pg";
import type { ConnectionInfo } from "./connection";
import { type ResolvedConnection, resolveConnection } from "./postgres/connectionString";
import { explainTlsError, sslFallbackOptions, sslOptions, tlsRefused } from "./tls";

// The connection contract and every URL (IPv6 in brackets) are defined once, in lib/connection.ts. Type-only
// here: this module is captured by value into the migrations hook and should not drag more modules along.
export type { ConnectionInfo } from "./connection";

/**
 * Where to connect: a connection string as libpq reads it (a `postgresql://` URL or `key=value` pairs, with the
 * PG* variables for what it leaves out: lib/postgres/connectionString.ts), or client settings.
 */
export type Connection = string | ClientConfig;

/** node-postgres settings, plus what libpq would do when the first attempt is refused (see {@link openClient}). */
export interface TsdbClientConfig extends ClientConfig {
  /** `ssl` for a second attempt after the server refused the first's (sslmode prefer and allow). */
  sslFallback?: ClientConfig["ssl"];
  /** The settings came from a connection string: failure advice names what to put in it. */
  fromConnectionString?: boolean;
}

/** node-postgres settings for a `ConnectionInfo`, mapping libpq's sslmode (and the CA) to `ssl` (lib/tls.ts). */
export function clientConfig(info: ConnectionInfo, overrides: Partial<ClientConfig> = {}): TsdbClientConfig {
  const target = { sslmode: info.sslmode, sslrootcert: info.sslrootcert, host: info.host };
  const fallback = sslFallbackOptions(target);
  const resolved = info as Partial<ResolvedConnection>;
  return {
    host: info.host,
    port: info.port,
    database: info.database,
    user: info.user,
    password: info.password,
    ssl: sslOptions(target),
    ...(fallback === undefined ? {} : { sslFallback: fallback }),
    ...(resolved.applicationName ? { application_name: resolved.applicationName } : {}),
    ...(resolved.fromConnectionString ? { fromConnectionString: true } : {}),
    ...overrides,
  };
}

/** Client settings for `connection`: a string is read as libpq reads it; a ConnectionInfo gets its sslmode mapped. */
export function connectionConfig(connection: Connection | ConnectionInfo): TsdbClientConfig {
  if (typeof connection === "string") return clientConfig(resolveConnection(connection));
  // A ConnectionInfo passed as settings: its sslmode means nothing to node-postgres, so map it here.
  return "sslmode" in connection ? clientConfig(connection as ConnectionInfo) : connection;
}

/**
 * The server went away under a command (restart, `pg_terminate_backend`, network): `during` names what was
 * interrupted and `committed` what of it is in the database, so a CLI can print one line and a hook one error.
 * A plain Error with fields, not a subclass: Pulumi's closure serializer turns classes into functions calling
 * `Error.call(this)`, which loses the message of an Error subclass inside the migrations hook.
 */
export interface ConnectionLostError extends Error {
  connectionLost: true;
  during: string;
  committed: string;
}

/** A ConnectionLostError: `connection lost during <during>; <committed>`. */
export function connectionLost(during: string, committed = "nothing was committed", cause?: unknown): ConnectionLostError {
  const err = new Error(`connection lost during ${during}; ${committed}`, { cause }) as ConnectionLostError;
  err.name = "ConnectionLostError";
  err.connectionLost = true;
  err.during = during;
  err.committed = committed;
  return err;
}

/** True for an error made by `connectionLost` (it already says what was interrupted). */
export function isConnectionLostError(err: unknown): err is ConnectionLostError {
  return (err as Partial<ConnectionLostError> | undefined)?.connectionLost === true;
}

/**
 * SQLSTATEs of a session the server ended: admin shutdown or pg_terminate_backend (57P01), crash shutdown
 * (57P02), connection failure / does not exist / transaction resolution unknown (08006, 08003, 08007).
 * Not the connect-time ones (57P03 starting up, 08001, 08004): those are "could not connect", said as is.
 */
const LOST_CODES = /^(57P0[12]|0800[367])$/;
/**
 * Socket errors of a connection that ended under a command (ECONNREFUSED is a failed connect, not a loss).
 * A pattern, not a Set: Pulumi's closure serializer copies a captured Set as a plain object holding
 * Set.prototype.has with no set behind it, so `has` threw "Method Set.prototype.has called on incompatible
 * receiver" inside the migrations hook and hid every SQL error (test/providers/hooks-fresh-host.test.ts).
 */
const LOST_SOCKET_CODES = /^(ECONNRESET|EPIPE)$/;
const LOST_MESSAGES = /Connection terminated|not queryable|terminating connection|server closed the connection/i;

/** True when `err` (or its cause) means the connection to the server was lost, not that a statement failed. */
export function isConnectionLost(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (isConnectionLostError(e)) return true;
    if (typeof e.code === "string" && (LOST_CODES.test(e.code) || LOST_SOCKET_CODES.test(e.code))) return true;
    if (typeof e.message === "string" && LOST_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/**
 * The one line a CLI prints for `err`: a lost connection (here, or in pg_dump/pg_restore output) as
 * `connection lost during <during>; <committed>`; anything else as its message on one line.
 */
export function failureLine(err: unknown, during: string, committed = "nothing was committed"): string {
  if (isConnectionLostError(err)) return err.message;
  if (isConnectionLost(err)) return connectionLost(during, committed).message;
  return String(err instanceof Error ? err.message : err).replace(/\s*\n\s*/g, " ");
}

/**
 * Keeps a dropped connection from crashing the process: node-postgres emits 'error' on the client when the
 * server ends the session (restart, `pg_terminate_backend`), and an 'error' event with no listener is thrown
 * by Node as "Unhandled 'error' event". The pending query is rejected with the same error, so callers still
 * see it there; this listener only swallows the duplicate event.
 */
export function guardConnectionErrors(client: Client): void {
  client.on("error", () => undefined);
}

/** Opens one client, runs `fn`, and always closes the client. */
export async function withClient<T>(connection: Connection, fn: (client: Client) => Promise<T>): Promise<T> {
  const pg = (await import("pg")).default;
  const client = await openClient(pg, { application_name: "tsdb-stack", ...connectionConfig(connection) });
  try {
    return await fn(client);
  } finally {
    // After a lost connection `end` has nothing to close; its error must not replace the one from `fn`.
    await client.end().catch(() => undefined);
  }
}

/**
 * A connected client for `config`, as libpq connects: with sslmode prefer, TLS first and plain text when the
 * server refuses TLS; with allow, the other way round (`sslFallback`). Errors are explained as by
 * {@link connectExplained}. `pg` is passed in: the migrations hook requires it where it runs.
 */
export async function openClient(pg: typeof import("pg"), config: TsdbClientConfig): Promise<Client> {
  const { sslFallback, fromConnectionString, ...first } = config;
  const attempt = async (settings: ClientConfig): Promise<Client> => {
    const client = new pg.Client(settings);
    guardConnectionErrors(client);
    await connectExplained(client, fromConnectionString === true);
    return client;
  };
  try {
    return await attempt(first);
  } catch (err) {
    if (sslFallback === undefined || !tlsRefused((err as { cause?: unknown }).cause ?? err, first.ssl)) throw err;
    return attempt({ ...first, ssl: sslFallback });
  }
}

/** `client.connect()`, with a TLS failure (wrong CA, wrong host name) turned into one line saying so. */
export async function connectExplained(client: Client, fromConnectionString = false): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    const c = client as unknown as { host?: string; port?: number; ssl?: unknown };
    const caGiven = typeof c.ssl === "object" && c.ssl !== null && "ca" in c.ssl;
    throw explainTlsError(err, `${c.host}:${c.port}`, caGiven, fromConnectionString) ?? err;
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

